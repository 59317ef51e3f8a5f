"""Property tests: effect combination is order-independent, deny-overrides, monotonic; evaluation is deterministic."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from hybrid_agent.policy import EFFECT_PRECEDENCE, PolicyInput, combine, load_pack
from hybrid_agent.policy.schema import EFFECT_RANK

EFFECTS = [e.value for e in EFFECT_PRECEDENCE]
effects = st.sampled_from(EFFECTS)
matches = st.lists(st.tuples(st.from_regex(r"[a-z]{1,3}\.[a-z]{1,3}", fullmatch=True), effects), max_size=12, unique_by=lambda m: m[0])
BANK = load_pack(Path(__file__).resolve().parents[1] / "policies" / "retail-banking")


@given(matches, effects)
def test_no_match_gives_default(ms: list[tuple[str, str]], default: str) -> None:
    effect, ids = combine([], default)
    assert effect == default and ids == ()


@given(matches, effects, st.randoms())
def test_order_independent(ms: list[tuple[str, str]], default: str, rnd: object) -> None:
    shuffled = list(ms)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    a, ida = combine(ms, default)
    b, idb = combine(shuffled, default)
    assert a == b and sorted(ida) == sorted(idb)


@given(matches.filter(bool), effects)
def test_strongest_wins_and_is_a_matched_effect(ms: list[tuple[str, str]], default: str) -> None:
    effect, ids = combine(ms, default)
    assert effect in {e for _, e in ms}
    assert all(EFFECT_RANK[effect] >= EFFECT_RANK[e] for _, e in ms)
    assert ids and all(e == effect for rid, e in ms if rid in ids)
    if any(e == "deny" for _, e in ms):
        assert effect == "deny"
    if effect == "allow":
        assert all(e == "allow" for _, e in ms)


@given(matches, st.tuples(st.text(min_size=1, max_size=3), effects), effects)
def test_monotonic(ms: list[tuple[str, str]], extra: tuple[str, str], default: str) -> None:
    """Adding a matched rule never weakens a non-default decision."""
    before, _ = combine(ms, default)
    after, _ = combine(ms + [extra], default)
    if ms:
        assert EFFECT_RANK[after] >= EFFECT_RANK[before]
    else:
        assert after == extra[1]


texts = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "Zs")), max_size=80)
inputs = st.builds(
    lambda stage, text, tool, amount, level, disc, confirmed: PolicyInput.model_validate({
        "stage": stage, "text": text, "tool": tool, "confirmed": confirmed,
        "args": {"from_account": "a", "to_account": "b", "amount": amount} if tool == "transfer_funds" else {},
        "session": {"verification_level": level, "disclosures": ["recording_notice"] if disc else []},
    }),
    st.sampled_from(["session_start", "user_text", "assistant_text", "tool_call", "tool_result"]),
    texts,
    st.sampled_from(["", "verify_identity", "get_balance", "transfer_funds", "block_card", "other"]),
    st.one_of(st.integers(-10, 10**6), st.floats(-10, 1e6, allow_nan=False), st.text(max_size=3), st.none()),
    st.sampled_from(["none", "basic", "strong"]),
    st.booleans(),
    st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(inputs)
def test_evaluation_total_and_deterministic(inp: PolicyInput) -> None:
    """Every input gets a decision (never an exception), the same one every time, never allow on an error."""
    d1 = BANK.evaluate(inp)
    d2 = BANK.evaluate(inp)
    assert d1 == d2
    assert d1.pack_version == BANK.version
    if d1.errors:
        assert d1.effect != "allow"
    if d1.default:
        assert d1.effect == BANK.manifest.default_effect and not d1.rule_ids
    ex = BANK.explain(inp)
    assert ex.decision == d1
    assert {t.rule_id for t in ex.traces if t.matched} == {m.rule_id for m in d1.matched}
