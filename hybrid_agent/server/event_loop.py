"""The event loop ``serve`` runs on: uvloop where it is installed, else asyncio's own.

uvloop (libuv under asyncio's API) makes the socket reads and writes that dominate the bridge's
CPU cheaper; the relay benchmark has both side by side (docs/performance.md).  The demo and the
tests keep asyncio's loop: their timings are not the product's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class EventLoopUnavailable(RuntimeError):
    """The configured event loop cannot be used; the message is one line for a person."""


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """``None`` for asyncio's default loop; ``choice`` is ``auto``, ``uvloop`` or ``asyncio``."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise EventLoopUnavailable("HYBRID_AGENT_EVENT_LOOP=uvloop but uvloop is not installed (pip install uvloop)") from None
        return None
    return uvloop.new_event_loop


def run(coro: Coroutine[Any, Any, T], choice: str) -> T:
    try:
        factory = loop_factory(choice)
    except EventLoopUnavailable:
        coro.close()  # never started: no "never awaited" warning on top of the error
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)
