"""The bridge server: one ASGI app (Starlette on uvicorn, WebSockets by the ``websockets`` sans-I/O engine)."""
