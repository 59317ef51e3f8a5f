"""Tool calls the client runs itself, held until the ``tool_call`` decision.

In the enforcing modes a function call of a tool the client declared must not reach the client
before the pack decided it: a denied call would otherwise run on the client's side anyway.  So
the call's events (``output_item.added``, the argument deltas, ``arguments.done``, the item
echoes) are held from the moment the model starts it, and so is the ``response.done`` that lists
it.  Allowed: they go to the client in their original order and the client runs the tool as it
would without the bridge.  Refused: the client never sees the call; the session hands it to the
tool orchestrator, which answers the model with the decision (as for a server tool).  A sans-I/O
part of the call session; what it holds is bounded per call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: events held for one call (a model streams a few dozen argument deltas; a hostile one is cut off)
MAX_EVENTS_PER_CALL = 512
#: calls awaiting a decision at once
MAX_PENDING = 16

_ITEM_EVENTS = frozenset({"conversation.item.added", "conversation.item.done", "conversation.item.created",
                          "response.output_item.done"})
_ARGUMENT_EVENTS = frozenset({"response.function_call_arguments.delta", "response.function_call_arguments.done"})

Held = tuple[dict[str, Any], "str | None"]


@dataclass(slots=True)
class HeldCall:
    call_id: str
    item_id: str
    name: str
    response_id: str
    events: list[Held] = field(default_factory=list)
    dropped: int = 0


@dataclass
class ClientToolHold:
    pending: dict[str, HeldCall] = field(default_factory=dict)  # call_id -> call awaiting its decision
    _by_item: dict[str, str] = field(default_factory=dict)  # item_id -> call_id
    _done: dict[str, Held] = field(default_factory=dict)  # response id -> its held response.done
    overflowed: int = 0

    def on_upstream(self, event: dict[str, Any], raw: str | None, server_tool: bool) -> bool:
        """True: held (the client does not get it now).  ``server_tool``: the orchestrator's, not ours."""
        kind = event["type"]
        item = event.get("item") if isinstance(event.get("item"), dict) else None
        if kind == "response.output_item.added" and item and item.get("type") == "function_call" and not server_tool:
            if len(self.pending) >= MAX_PENDING:
                self.overflowed += 1
                return False  # beyond the bound the call is relayed undecided (and counted), never dropped silently
            call = HeldCall(str(item.get("call_id") or item.get("id")), str(item.get("id")), str(item.get("name") or ""),
                            str(event.get("response_id") or ""))
            self.pending[call.call_id] = call
            self._by_item[call.item_id] = call.call_id
            call.events.append((event, raw))
            return True
        if kind in _ITEM_EVENTS and item:
            call_id = self._by_item.get(str(item.get("id")))
        elif kind in _ARGUMENT_EVENTS:
            call_id = str(event.get("call_id")) if str(event.get("call_id")) in self.pending else self._by_item.get(str(event.get("item_id")))
        elif kind == "response.done":
            rid = str((event.get("response") or {}).get("id") or "")
            if any(c.response_id == rid for c in self.pending.values()):
                self._done[rid] = (event, raw)
                return True
            return False
        else:
            return False
        call = self.pending.get(call_id or "")
        if call is None:
            return False
        if len(call.events) < MAX_EVENTS_PER_CALL:
            call.events.append((event, raw))
        else:
            call.dropped += 1  # a done event still comes last; a hostile stream of deltas is cut
            if kind.endswith(".done"):
                call.events.append((event, raw))
        return True

    def is_pending(self, call_id: str) -> bool:
        return call_id in self.pending

    def decided(self, call_id: str) -> tuple[HeldCall | None, Held | None]:
        """The decision is in: the call's held events, and its response's ``response.done`` when no
        other call of that response still waits (both to be released or dropped by the caller)."""
        call = self.pending.pop(call_id, None)
        if call is None:
            return None, None
        self._by_item.pop(call.item_id, None)
        done = None
        if not any(c.response_id == call.response_id for c in self.pending.values()):
            done = self._done.pop(call.response_id, None)
        return call, done
