"""Which required disclosures the caller has heard.

A disclosure counts as given when an assistant turn spoke its script word for word
(the policy session does the matching on finished turns); when the caller cut that
answer short before the script was heard, it is missing again.  Its own part of the
call session, with its own state: assistant item -> the disclosures that item spoke.
"""

from __future__ import annotations

from hybrid_agent.audit.records import DisclosureRecord
from hybrid_agent.policy.live import PolicySession
from hybrid_agent.policy.text import normalize_text

#: assistant items remembered for unhearing (the newest; an answer cut short is a recent one)
MAX_TRACKED_ITEMS = 256


class DisclosureTracker:
    def __init__(self, call_id: str, policy: PolicySession) -> None:
        self.call_id = call_id
        self.policy = policy
        self._by_item: dict[str, list[str]] = {}

    def turn_finished(self, role: str, text: str, item_id: str, seq: int, at_ms: float) -> list[DisclosureRecord]:
        """A finished turn: the disclosures it gave for the first time."""
        out: list[DisclosureRecord] = []
        for disclosure_id in self.policy.note_turn(role, text):
            self._by_item.setdefault(item_id, []).append(disclosure_id)
            while len(self._by_item) > MAX_TRACKED_ITEMS:
                self._by_item.pop(next(iter(self._by_item)))
            out.append(self._record(disclosure_id, at_ms, "given", seq))
        return out

    def heard(self, item_id: str, heard: str, seq: int, at_ms: float) -> list[DisclosureRecord]:
        """An answer cut short at ``heard``: its disclosures the caller did not hear are missing again."""
        said = normalize_text(heard)
        out: list[DisclosureRecord] = []
        for disclosure_id in self._by_item.get(item_id, []):
            script = self.policy.disclosure_texts[disclosure_id]
            if normalize_text(script) in said:
                continue
            if disclosure_id in self.policy.disclosures:
                self.policy.disclosures.remove(disclosure_id)
            out.append(self._record(disclosure_id, at_ms, "missing", seq))
        return out

    def _record(self, disclosure_id: str, at_ms: float, status: str, seq: int) -> DisclosureRecord:
        return DisclosureRecord(
            call_id=self.call_id,
            disclosure_id=disclosure_id,
            text=self.policy.disclosure_texts[disclosure_id],
            at_ms=at_ms,
            status=status,
            turn_seq=seq,
            redacted=True,  # the pack's own script, not caller text
        )
