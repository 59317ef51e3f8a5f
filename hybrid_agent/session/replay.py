"""What an upstream reconnect needs: the conversation so far as text items, and what the caller
sent while the new socket was being opened.

A part of the call session of its own (the way ``websockets`` splits its protocol): it
has its own state and bounds, and ``CallSession`` only tells it what happened.

Bounds, because every per-call buffer has one:
- the conversation log keeps the newest ``MAX_ITEMS`` items and at most ``MAX_TEXT_CHARS``
  characters of their text (older items are dropped, counted in ``dropped_items``: a model
  that reconnects after hours remembers the recent part of the call);
- while reconnecting, caller audio is held up to ``RECONNECT_AUDIO_BUFFER_MS`` (beyond that
  dropped and counted in ``dropped_audio_ms``) and other caller events up to
  ``MAX_QUEUED_EVENTS``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

REPLAY_ITEM_PREFIX = "item_bridge_replay_"
RECONNECT_AUDIO_BUFFER_MS = 10_000
MAX_QUEUED_EVENTS = 1_000
MAX_ITEMS = 500
MAX_TEXT_CHARS = 2_000_000


def _size(item: dict[str, Any]) -> int:
    n = len(str(item.get("arguments") or "")) + len(str(item.get("output") or ""))
    for part in item.get("content") or []:
        if isinstance(part, dict):
            n += len(str(part.get("text") or ""))
    return n


class ConversationLog:
    """The call's conversation as replayable text items (user and assistant messages, function
    calls and their outputs), newest kept within the bounds."""

    def __init__(self, max_items: int = MAX_ITEMS, max_chars: int = MAX_TEXT_CHARS) -> None:
        self.max_items = max_items
        self.max_chars = max_chars
        self._items: deque[dict[str, Any]] = deque()
        self._chars = 0
        self._by_item: dict[str, dict[str, Any]] = {}
        self.dropped_items = 0
        self._replayed = 0

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._items)

    def add(self, item: dict[str, Any], item_id: str | None = None) -> None:
        self._items.append(item)
        self._chars += _size(item)
        if item_id is not None:
            self._by_item[item_id] = item
        while len(self._items) > self.max_items or (self._chars > self.max_chars and len(self._items) > 1):
            old = self._items.popleft()
            self._chars -= _size(old)
            self.dropped_items += 1
            for key, value in list(self._by_item.items()):
                if value is old:
                    del self._by_item[key]
                    break

    def heard(self, item_id: str, text: str) -> None:
        """An answer was cut short: after a reconnect the model remembers what the caller heard."""
        item = self._by_item.get(item_id)
        if item is not None:
            self._chars += len(text) - _size(item)
            item["content"] = [{"type": "output_text", "text": text}]

    def replay_events(self) -> list[dict[str, Any]]:
        """``conversation.item.create`` events that rebuild the conversation on a new socket, in order."""
        out: list[dict[str, Any]] = []
        previous: str | None = None
        for item in self._items:
            self._replayed += 1
            replay = {**item, "id": f"{REPLAY_ITEM_PREFIX}{self._replayed}"}
            event: dict[str, Any] = {
                "type": "conversation.item.create",
                "event_id": f"event_bridge_replay_item_{self._replayed}",
                "item": replay,
            }
            if previous is not None:
                event["previous_item_id"] = previous
            previous = replay["id"]
            out.append(event)
        return out


class ReconnectQueue:
    """Caller events that arrive while the upstream is being reopened, held within bounds."""

    def __init__(self, max_audio_ms: float = RECONNECT_AUDIO_BUFFER_MS, max_events: int = MAX_QUEUED_EVENTS) -> None:
        self.max_audio_ms = max_audio_ms
        self.max_events = max_events
        self._events: list[dict[str, Any]] = []
        self._audio_ms = 0.0
        self._others = 0
        self.dropped_audio_ms = 0.0
        self.dropped_events = 0

    def hold(self, event: dict[str, Any], audio_ms: float = 0.0) -> None:
        """Hold ``event`` (``audio_ms``: its duration, for ``input_audio_buffer.append``)."""
        if audio_ms:
            if self._audio_ms + audio_ms > self.max_audio_ms:
                self.dropped_audio_ms += audio_ms
                return
            self._audio_ms += audio_ms
        elif self._others >= self.max_events:
            self.dropped_events += 1
            return
        else:
            self._others += 1
        self._events.append(event)

    @property
    def held_audio_ms(self) -> float:
        return self._audio_ms

    def drain(self) -> list[dict[str, Any]]:
        events, self._events = self._events, []
        self._audio_ms = 0.0
        self._others = 0
        return events


#: hidden items remembered (the newest; a later item names a recent one as its predecessor)
MAX_HIDDEN_ITEMS = 256
_ITEM_ECHOES = frozenset({"conversation.item.added", "conversation.item.done", "conversation.item.created"})


class HiddenItems:
    """Items the client never sees (server tool calls and outputs, the bridge's notes, replayed
    history): an item after one of them names it as ``previous_item_id``, an id the client does
    not know, so that field is rewritten to the last item the client did see."""

    def __init__(self) -> None:
        self._before: dict[str, str | None] = {}  # hidden item id -> the visible item before it

    def hide(self, event: dict[str, Any]) -> None:
        item = event.get("item")
        if event.get("type") not in _ITEM_ECHOES or not isinstance(item, dict) or not item.get("id"):
            return
        prev = event.get("previous_item_id")
        self._before[str(item["id"])] = self._visible(prev if isinstance(prev, str) else None)
        while len(self._before) > MAX_HIDDEN_ITEMS:
            self._before.pop(next(iter(self._before)))

    def _visible(self, item_id: str | None) -> str | None:
        return self._before.get(item_id, item_id) if item_id is not None else None

    def rewrite(self, event: dict[str, Any]) -> bool:
        """Point ``previous_item_id`` past hidden items (in place); True when it changed."""
        prev = event.get("previous_item_id")
        if event.get("type") not in _ITEM_ECHOES or not isinstance(prev, str) or prev not in self._before:
            return False
        event["previous_item_id"] = self._before[prev]
        return True
