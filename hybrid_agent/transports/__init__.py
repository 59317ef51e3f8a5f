"""Caller-side protocols, each converted to and from Realtime events around one CallSession."""
