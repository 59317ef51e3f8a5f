"""``hybrid-agent pii scan``: read lines on stdin, report and redact the PII in each.

With ``--json`` every input line gives one JSON object on stdout::

    {"text": ..., "redacted": ..., "entities": [{"type": ..., "start": ..., "end": ..., "score": ...}]}

Offsets index the input line (without its newline).  Without ``--json`` the redacted
line is printed, followed by one indented line per entity.
Exit codes: 0 ok, 2 bad arguments (for example ``--mode pseudonym`` without a key).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``pii`` (with ``scan``) to the ``hybrid-agent`` sub-commands."""
    p = subparsers.add_parser("pii", help="PII gate tools (scan text from stdin)")
    sub = p.add_subparsers(dest="pii_command", required=True)
    s = sub.add_parser(
        "scan",
        help="detect and redact PII in each line of stdin",
        description="Detect and redact PII (written and spoken forms) in each line of stdin.",
    )
    s.add_argument("--json", action="store_true", help="one JSON object per input line")
    s.add_argument(
        "--mode",
        action="append",
        default=[],
        metavar="[TYPE=]MODE",
        help="redaction mode placeholder|last4|pseudonym|keep, for all types or one TYPE (repeatable), "
        "e.g. --mode CREDIT_CARD=last4",
    )
    s.add_argument(
        "--key-env",
        default="HYBRID_AGENT_PSEUDONYM_KEY",
        metavar="VAR",
        help="environment variable holding the pseudonym key (mode pseudonym); default %(default)s",
    )
    s.set_defaults(func=_cmd_scan)


def _policy(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from hybrid_agent.pii.redact import MODES, Pseudonymizer, RedactionPolicy

    default = "placeholder"
    modes: dict[str, str] = {}
    for item in args.mode:
        typ, _, mode = item.rpartition("=")
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r} (use {', '.join(MODES)})")
        if typ:
            modes[typ.upper()] = mode
        else:
            default = mode
    pseudo = None
    if "pseudonym" in (default, *modes.values()):
        key = os.environ.get(args.key_env, "")
        if len(key.encode()) < 16:
            raise ValueError(f"mode pseudonym needs a key of at least 16 bytes in ${args.key_env}")
        pseudo = Pseudonymizer(key.encode())
    return RedactionPolicy(default=default, modes=modes, pseudonymizer=pseudo)  # type: ignore[arg-type]


def _cmd_scan(args: argparse.Namespace) -> int:
    from hybrid_agent.pii import get_analyzer, redact

    try:
        policy = _policy(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    analyzer = get_analyzer()
    out = sys.stdout
    for raw in sys.stdin:
        line = raw.rstrip("\r\n")
        entities = analyzer.analyze(line)
        redacted = redact(line, entities, policy)
        if args.json:
            obj = {"text": line, "redacted": redacted, "entities": [e.to_dict() for e in entities]}
            out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        else:
            out.write(redacted + "\n")
            for e in entities:
                out.write(f"  {e.type} [{e.start}:{e.end}] score={e.score:.2f}\n")
        out.flush()
    return 0
