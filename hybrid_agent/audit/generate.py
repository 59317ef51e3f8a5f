"""Realistic synthetic calls written through the record API and the batched writer.

Used by ``hybrid-agent audit generate`` (demos, the 1M-turn benchmark database)
and by tests.  Deterministic for a seed: call ids are ``gen-<seed>-<n>``, so
running it twice with the same seed adds nothing (ids are idempotent).

A generated call: a recording disclosure, alternating user/assistant turns
(banking small talk with redaction placeholders), some assistant turns cut by
barge-in (with the heard prefix), tool calls with policy decisions and results,
occasional violations (denied tool calls, blocked speech), and an end.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hybrid_agent.audit.records import (
    AuditRecord,
    CallEnded,
    CallStarted,
    DisclosureRecord,
    PolicyDecisionRecord,
    ToolCallRecord,
    ToolResultRecord,
    TurnInterrupted,
    TurnRecord,
)

CHANNELS = ("twilio", "web", "sip", "realtime")
OUTCOMES = ("completed",) * 17 + ("client_closed", "upstream_closed", "error")
POLICY_VERSIONS = ("3f9a2c1e", "7be01d44", "c0ffee42")
USER_LINES = (
    "Hi, I'd like to check the balance on my account ending [ACCOUNT_LAST4].",
    "Can you tell me if my last payment to [ORG] went through?",
    "I think there's a charge I don't recognise from yesterday.",
    "My name is [PERSON], I was calling about my mortgage.",
    "Could you move [AMOUNT] from savings to my current account?",
    "What's the interest rate on the fixed saver at the moment?",
    "I lost my card, can you block it please?",
    "Yes, that's right.",
    "No, the other account.",
    "Can I speak to a person?",
    "Thanks, that's all for today.",
)
ASSISTANT_LINES = (
    "Of course. Before I can help, I need to verify your identity. Could you confirm your date of birth?",
    "Thank you. Your current balance is [AMOUNT], and your last payment cleared on [DATE].",
    "I can see the charge. I've flagged it for review and you'll hear from our fraud team within two working days.",
    "The fixed saver currently pays [RATE] AER. Rates can change; this is not financial advice.",
    "I've blocked the card ending [ACCOUNT_LAST4]. A replacement will arrive in three to five working days.",
    "I'm transferring you to a colleague now. Please hold.",
    "Is there anything else I can help you with today?",
    "I'm sorry, I can't share details of that account without further verification.",
)
TOOLS = (
    ("get_balance", '{"account": "[ACCOUNT_ID]"}', '{"balance": "[AMOUNT]", "currency": "GBP"}'),
    ("list_transactions", '{"account": "[ACCOUNT_ID]", "days": 7}', '{"count": 12}'),
    ("block_card", '{"card": "[CARD_LAST4]", "reason": "lost"}', '{"blocked": true}'),
    ("transfer_funds", '{"from": "[ACCOUNT_ID]", "to": "[ACCOUNT_ID]", "amount": "[AMOUNT]"}', '{"status": "pending"}'),
    ("handoff_human", '{"queue": "general"}', '{"ticket": "[TICKET]"}'),
)
DISCLOSURE = "This call is recorded for quality and compliance. You are speaking with an automated assistant."


def synth_call(rng: random.Random, call_id: str, started_at: float, turns: int) -> Iterator[AuditRecord]:
    """The records of one synthetic call, in the order a session would emit them."""
    version = rng.choice(POLICY_VERSIONS)
    yield CallStarted(
        call_id=call_id, started_at=started_at, channel=rng.choice(CHANNELS), model="gpt-realtime",
        upstream=rng.choice(("openai", "azure")), caller_id=f"+44 7700 9{rng.randrange(10**5):05d}",
        account_id=f"ACC{rng.randrange(10**8):08d}", policy_pack="bank-default", policy_version=version,
        gate_mode=rng.choice(("monitor", "hold")),
    )
    yield DisclosureRecord(call_id, "recording_notice", DISCLOSURE, at_ms=0.0, turn_seq=0, rule_id="disclose.recording", redacted=True)
    t = 200.0
    decision_seq = 0
    for seq in range(turns):
        role = "user" if seq % 2 == 0 else "assistant"
        dur = rng.uniform(900, 6000)
        text = rng.choice(USER_LINES if role == "user" else ASSISTANT_LINES)
        if role == "user":
            yield TurnRecord(call_id, seq, "user", f"item_u{seq}", text, "completed", t, t + dur, audio_ms=dur, redacted=True)
            yield PolicyDecisionRecord(call_id, decision_seq, "user_text", "pii.redact", "redact", version, t + dur + 5,
                                       policy_pack="bank-default", subject_id=f"{call_id}/turn/{seq}", input_digest=f"{rng.getrandbits(64):016x}")
            decision_seq += 1
            if rng.random() < 0.3:
                name, args, out = rng.choice(TOOLS)
                tc = f"call_{seq}"
                at = t + dur + 40
                yield ToolCallRecord(call_id, tc, name, args, at, response_id=f"resp_{seq}", redacted=True)
                denied = rng.random() < 0.06
                yield PolicyDecisionRecord(call_id, decision_seq, "tool_call", f"tool.{name}", "deny" if denied else "allow",
                                           version, at + 1, policy_pack="bank-default", subject_id=f"{call_id}/tool/{tc}",
                                           input_digest=f"{rng.getrandbits(64):016x}",
                                           message=f"{name} needs step-up verification" if denied else None)
                decision_seq += 1
                yield ToolResultRecord(call_id, tc, '{"error": "denied by policy"}' if denied else out,
                                       at + rng.uniform(30, 400), redacted=True, status="denied" if denied else "ok")
        else:
            interrupted = rng.random() < 0.12
            blocked = not interrupted and rng.random() < 0.02
            status = "cancelled" if interrupted else "completed"
            yield TurnRecord(call_id, seq, "assistant", f"item_a{seq}", text, status, t, t + dur, audio_ms=dur,
                             response_id=f"resp_{seq}", redacted=True)
            yield PolicyDecisionRecord(call_id, decision_seq, "assistant_text", "speech.no_advice" if blocked else "speech.ok",
                                       "block_speech" if blocked else "allow", version, t + 50, policy_pack="bank-default",
                                       subject_id=f"{call_id}/turn/{seq}", message="financial advice" if blocked else None)
            decision_seq += 1
            if interrupted:
                cut = rng.uniform(0.2, 0.8)
                words = text.split()
                heard = " ".join(words[: max(1, int(len(words) * cut))])
                yield TurnInterrupted(call_id, seq, f"item_a{seq}", dur * cut, heard, t + dur * cut + 30, redacted=True)
        t += dur + rng.uniform(200, 1500)
    yield CallEnded(call_id, t, rng.choice(OUTCOMES))


def generate(
    database_url: str,
    *,
    calls: int,
    turns_per_call: int = 10,
    seed: int = 1,
    batch_size: int = 1000,
    spool_path: str | Path | None = None,
    progress: bool = False,
    start_time: float | None = None,
) -> dict[str, Any]:
    """Write ``calls`` synthetic calls through :class:`AuditWriter`; returns throughput figures."""
    from hybrid_agent.audit.writer import AuditWriter

    rng = random.Random(seed)
    tmpdir = None
    if spool_path is None:
        tmpdir = tempfile.TemporaryDirectory(prefix="audit-gen-")
        spool_path = Path(tmpdir.name) / "generate.spool"
    writer = AuditWriter(database_url, spool_path=spool_path, batch_size=batch_size, flush_interval_s=0.05,
                         max_queue=max(50_000, batch_size * 20), pseudonym_key=f"generate-{seed}")
    base = start_time if start_time is not None else time.time() - calls * 30.0
    n_records = n_turns = 0
    t0 = time.perf_counter()
    writer.start_sync()
    try:
        for i in range(calls):
            for rec in synth_call(rng, f"gen-{seed}-{i:08d}", base + i * 30.0, turns_per_call):
                writer.enqueue(rec)
                n_records += 1
                if isinstance(rec, TurnRecord):
                    n_turns += 1
            while writer.queued > batch_size * 8:  # back-pressure: this is a batch job, not the audio path
                time.sleep(0.002)
            if progress and i and i % 10_000 == 0:
                el = time.perf_counter() - t0
                print(f"  {i} calls, {n_turns} turns, {n_turns / el:.0f} turns/s", file=sys.stderr, flush=True)
        writer.flush_sync()
    finally:
        writer.close_sync()
        if tmpdir is not None:
            tmpdir.cleanup()
    secs = time.perf_counter() - t0
    if writer.stats["spooled"]:
        print(f"warning: {writer.stats['spooled']} records were spooled (database unavailable?)", file=sys.stderr)
    return {
        "calls": calls, "turns": n_turns, "records": n_records, "seconds": secs,
        "turns_per_s": n_turns / secs if secs else 0.0, "records_per_s": n_records / secs if secs else 0.0,
        **{f"writer_{k}": v for k, v in writer.stats.items()},
    }
