"""Audit trail: typed records the session layer emits (the store lands with the audit issue)."""
