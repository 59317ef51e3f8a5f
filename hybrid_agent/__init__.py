"""hybrid-agent: a Realtime speech-to-speech bridge with a text middle layer."""

__version__ = "0.1.0"
