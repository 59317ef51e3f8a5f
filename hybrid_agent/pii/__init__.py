"""PII gate: Presidio plus spoken-form detection, redaction and pseudonyms.

Plain synchronous code with no I/O; the sans-I/O call session calls it.  See ``docs/pii.md``.

    from hybrid_agent.pii import get_analyzer, redact, RedactionPolicy, Pseudonymizer, StreamingScanner

    entities = get_analyzer().analyze("my card is four one one one ...")
    redact(text, entities, RedactionPolicy(modes={"CREDIT_CARD": "last4"}))
"""

from hybrid_agent.pii.analyzer import DEFAULT_THRESHOLDS, ENTITY_TYPES, PiiAnalyzer, PiiEntity, get_analyzer
from hybrid_agent.pii.normalize import Normalized, normalize
from hybrid_agent.pii.redact import Pseudonymizer, RedactionPolicy, canonical_value, redact
from hybrid_agent.pii.streaming import StreamingScanner

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ENTITY_TYPES",
    "Normalized",
    "PiiAnalyzer",
    "PiiEntity",
    "Pseudonymizer",
    "RedactionPolicy",
    "StreamingScanner",
    "canonical_value",
    "get_analyzer",
    "normalize",
    "redact",
]
