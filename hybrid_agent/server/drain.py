"""The calls a bridge process is serving: its limit (``HYBRID_AGENT_MAX_CALLS``) and its drain on
SIGTERM (rolling deploys).

``serve`` on SIGTERM: stop taking calls (new ones are refused with 503, ``/readyz`` answers 503
``draining`` so a load balancer takes the instance out), let the calls in progress finish up to
``HYBRID_AGENT_DRAIN_S``, then end the rest cleanly (the caller is told why and the socket closes
with 1001; the audit records the outcome ``shutdown``), flush the audit and exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

log = logging.getLogger(__name__)


class EndableCall(Protocol):
    async def shutdown(self, reason: str) -> None: ...


class ActiveCalls:
    """The calls in progress in this process (registered by the transport while a call runs)."""

    def __init__(self) -> None:
        self._calls: set[EndableCall] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.draining = False
        self.connections = 0  # call sockets open, counted from the handshake (a call connecting upstream counts)

    def admit(self, limit: int) -> str | None:
        """One more call socket, or why not: ``"draining"``, or ``"at_capacity"`` when ``limit``
        (0: none) are open already.  An admitted socket is given back with :meth:`release`."""
        if self.draining:
            return "draining"
        if limit and self.connections >= limit:
            return "at_capacity"
        self.connections += 1
        return None

    def release(self) -> None:
        self.connections -= 1

    def __len__(self) -> int:
        return len(self._calls)

    def add(self, call: EndableCall) -> None:
        self._calls.add(call)
        self._idle.clear()

    def discard(self, call: EndableCall) -> None:
        self._calls.discard(call)
        if not self._calls:
            self._idle.set()

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no call is in progress, at most ``timeout_s``; True when none is."""
        if timeout_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout_s)
        return not self._calls

    async def drain(self, deadline_s: float, reason: str = "the bridge is restarting", goodbye_s: float = 0.0) -> int:
        """Take no new calls, wait up to ``deadline_s`` for the calls in progress, end the rest.
        ``goodbye_s``: how long the pack's spoken goodbye lasts; the calls left are ended that much
        before the deadline, so the goodbye ends by it.  Returns how many calls had to be ended."""
        self.draining = True
        log.warning("draining: %d call(s) in progress, ending what is left in %.0f s", len(self), deadline_s)
        if await self.wait_idle(max(0.0, deadline_s - goodbye_s)):
            return 0
        left = list(self._calls)
        log.warning("drain deadline: ending %d call(s)", len(left))
        await asyncio.gather(*(call.shutdown(reason) for call in left), return_exceptions=True)
        await self.wait_idle(goodbye_s + 5.0)  # the goodbyes end, their pumps finish, their last records are queued
        return len(left)
