"""The peer benchmark's child processes (``bench/peers.py``): one script per framework, run in its own venv."""
