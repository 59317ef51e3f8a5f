"""Policy engine and rule packs: YAML rules with CEL conditions, compiled once, evaluated purely.

Typical use from the (sans-I/O) call session::

    from hybrid_agent.policy import PolicyInput, load_pack

    pack = load_pack("policies/retail-banking")          # once, at startup (reads files)
    decision = pack.evaluate(PolicyInput(stage="tool_call", tool="get_balance", args={}))
    if decision.effect != "allow": ...

``Pack.evaluate`` is synchronous, does no I/O and always returns a :class:`Decision`.
See ``docs/policy.md`` for the rule format, the context and how effects combine.
"""

from hybrid_agent.policy.engine import Decision, Explanation, Match, Pack, combine
from hybrid_agent.policy.loader import PackError, load, load_pack
from hybrid_agent.policy.schema import (
    EFFECT_PRECEDENCE,
    Effect,
    GateSettings,
    PolicyInput,
    SessionInput,
    SessionSettings,
    Stage,
)
from hybrid_agent.policy.session_config import bridge_session_update
from hybrid_agent.policy.source import Issue

__all__ = [
    "EFFECT_PRECEDENCE",
    "Decision",
    "Effect",
    "Explanation",
    "GateSettings",
    "Issue",
    "Match",
    "Pack",
    "PackError",
    "PolicyInput",
    "SessionInput",
    "SessionSettings",
    "Stage",
    "bridge_session_update",
    "combine",
    "load",
    "load_pack",
]
