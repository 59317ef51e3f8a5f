"""One upstream Realtime connection as the call runner uses it: opened by the SDK, carried raw.

The ``openai`` SDK opens the connection (URL, headers, key, Azure's deployment and API
version: everything that differs between targets), and the bridge keeps using it for that.
After the handshake the bridge only moves finished JSON text both ways, so it sends and
receives on the SDK's underlying ``websockets`` connection: the SDK's ``send_raw`` goes
through a send queue, a task-id lookup and a receipt per event (6 % of the bridge's CPU
under load), which buy reconnect buffering the bridge does not use (an upstream drop is
the call session's business: it replays the call on a new connection).
"""

from __future__ import annotations

from typing import Any

from websockets.asyncio.client import ClientConnection


class UpstreamLink:
    """``send_raw`` / ``recv_bytes`` / ``close`` on the websockets connection under an SDK connection."""

    def __init__(self, sdk_connection: Any) -> None:
        self.sdk = sdk_connection
        ws = getattr(sdk_connection, "_connection", None)
        # an SDK release that keeps its socket elsewhere still works, through its own wrapper
        self.ws: ClientConnection | None = ws if isinstance(ws, ClientConnection) else None

    @property
    def extensions(self) -> list[str]:
        """The WebSocket extensions the upstream handshake negotiated (none: compression is off)."""
        if self.ws is None:
            return []
        return [ext.name for ext in self.ws.protocol.extensions]

    async def send_raw(self, text: str) -> None:
        if self.ws is not None:
            await self.ws.send(text)
        else:
            await self.sdk.send_raw(text)

    async def recv_bytes(self) -> bytes:
        if self.ws is not None:
            return await self.ws.recv(decode=False)
        return await self.sdk.recv_bytes()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.sdk.close(code=code, reason=reason)
