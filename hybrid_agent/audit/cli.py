"""``hybrid-agent db ...`` and ``hybrid-agent audit ...``: migrations and the compliance officer's queries.

Why this module is long: one subcommand per compliance query (calls, show, violations, search, export, verify, gate, close-interrupted) with its text rendering; each is small, splitting by command would scatter the shared rendering helpers.

Exit codes: 0 ok; 1 the answer is "no" (unknown call id, ``verify`` found a problem);
2 the database cannot be used (bad URL, unreachable, schema needs ``db upgrade``).
Every query prints a readable table by default and JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, TextIO

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from hybrid_agent.audit.records import GATE_ACTIONS
from hybrid_agent.audit.store import (
    AuditStoreError,
    DatabaseUnavailable,
    UnknownCall,
    check_schema,
    connect,
    display_url,
    make_engine,
)

# ---------------------------------------------------------------------------- helpers
_REL = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(value: str) -> float:
    """Epoch seconds from ``2026-01-31``, ``2026-01-31T10:00:00Z``, ``1767225600`` or a relative ``7d``/``12h``/``30m``."""
    v = value.strip()
    m = _REL.match(v)
    if m:
        return time.time() - float(m.group(1)) * _UNITS[m.group(2)]
    try:
        return float(v)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {value!r} (use 2026-01-31, 2026-01-31T10:00Z, epoch seconds or 7d/12h/30m)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def fmt_time(epoch: Any) -> str:
    if epoch is None:
        return "-"
    try:
        return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    except (TypeError, ValueError, OverflowError, OSError):
        return f"?{epoch!r}"  # not a time: shown as stored (verify reports the row)


def fmt_secs(ms: Any, spec: str = ".1f") -> str:
    """Milliseconds as seconds; a value that is not a number (odd stored type) is shown as stored."""
    if type(ms) not in (int, float):
        return "-" if ms is None else f"?{ms!r}"
    return f"{ms / 1000:{spec}}s"


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw]?)$")


def parse_duration(value: str) -> float:
    """Seconds from ``300``, ``90s``, ``5m``, ``2h``, ``1d`` (a bare number is seconds)."""
    m = _DURATION.match(value.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {value!r} (use 300, 90s, 5m, 2h or 1d)")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value!r}")
    return n


def _clip(value: Any, width: int = 60) -> str:
    s = "-" if value is None else str(value).replace("\n", " ")
    return s if len(s) <= width else s[: width - 1] + "…"


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], out: TextIO, width: int = 60) -> None:
    """Columns are (key, header); values are clipped to ``width``."""
    cells = [[_clip(r.get(k), width) for k, _ in columns] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (_, h) in enumerate(columns)]
    out.write("  ".join(h.ljust(w) for (_, h), w in zip(columns, widths)).rstrip() + "\n")
    for c in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(c, widths)).rstrip() + "\n")


def _json_default(o: Any) -> Any:
    return str(o)


def dump_json(obj: Any, out: TextIO) -> None:
    json.dump(obj, out, indent=2, ensure_ascii=False, default=_json_default)
    out.write("\n")


def _database_url(args: argparse.Namespace) -> str:
    from hybrid_agent.settings import load_settings

    return load_settings(database_url=getattr(args, "db", None)).database_url


@contextmanager
def open_db(args: argparse.Namespace) -> Iterator[Connection]:
    """A connection to an existing, up-to-date audit database (else an ``AuditStoreError``)."""
    engine = make_engine(_database_url(args), must_exist=True)
    try:
        with connect(engine) as conn:
            check_schema(conn)
            yield conn
    finally:
        engine.dispose()


def _run(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn store errors into one line on stderr and an exit code (no tracebacks)."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except UnknownCall as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except AuditStoreError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except DBAPIError as exc:
            orig = getattr(exc, "orig", None) or exc
            first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
            print(f"error: audit database error: {first}", file=sys.stderr)
            return 2
        except BrokenPipeError:  # `... | head`
            return 0

    return wrapper


# ---------------------------------------------------------------------------- commands
def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from hybrid_agent.audit.store import upgrade

    url = _database_url(args)
    rev = upgrade(url)
    print(f"audit database {display_url(url)} is at revision {rev}")
    return 0


def cmd_db_roles(args: argparse.Namespace) -> int:
    from hybrid_agent.audit.roles import apply_roles, roles_script

    run = apply_roles if args.apply else roles_script
    sys.stdout.write(run(_database_url(args), args.bridge_role, args.auditor_role))
    return 0


def cmd_calls(args: argparse.Namespace) -> int:
    from hybrid_agent.audit.queries import list_calls

    with open_db(args) as conn:
        rows = list_calls(
            conn, since=args.since, until=args.until, channel=args.channel, outcome=args.outcome,
            policy_version=args.policy_version, has_violation=args.has_violation, has_errors=args.has_errors,
            config_refused=args.config_refused, blocked=args.blocked, slow=args.slow, limit=args.limit,
        )
    if args.json:
        dump_json(rows, sys.stdout)
        return 0
    for r in rows:
        r["started"] = fmt_time(r["started_at"])
        r["duration"] = fmt_secs(r["duration_ms"])
        r["outcome"] = r["outcome"] or "(open)"
        r["flags"] = " ".join(f for f, on in (("CONFIG REFUSED", r["config_refused"]), (f"SLOW x{r['slow']}", r["slow"])) if on)
        r["ttfa"] = "-" if r["ttfa_p50_ms"] is None else f"{r['ttfa_p50_ms']:.0f}/{r['ttfa_max_ms'] or 0:.0f} ms"
    print_table(rows, [("call_id", "CALL"), ("started", "STARTED"), ("channel", "CHANNEL"), ("outcome", "OUTCOME"),
                       ("duration", "DURATION"), ("turns", "TURNS"), ("ttfa", "TTFA P50/MAX"), ("violations", "VIOLATIONS"),
                       ("blocked", "BLOCKED"), ("errors", "ERRORS"),
                       ("flags", "FLAGS"), ("policy_version", "POLICY"), ("caller_pseudonym", "CALLER")], sys.stdout, width=44)
    refused = sum(1 for r in rows if r["config_refused"])
    note = f"; {refused} with a refused session.update (configuration not applied)" if refused else ""
    print(f"({len(rows)} calls{note}{'; --limit reached' if len(rows) == args.limit else ''})")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from hybrid_agent.audit.queries import show_call

    with open_db(args) as conn:
        call = show_call(conn, args.call_id)
    price_call(call)
    if args.json:
        dump_json(call, sys.stdout)
        return 0
    for line in render_call(call, all_decisions=args.all):
        print(line)
    return 0


def price_call(call: dict[str, Any]) -> None:
    """Each response's cost at the price table (``cost_usd``, None for a model it has no price for),
    on its answer's turn too, and the call's total (``cost_usd``)."""
    from hybrid_agent.cost.estimate import price_response
    from hybrid_agent.cost.prices import PriceFileError, load_prices
    from hybrid_agent.settings import load_settings

    try:
        prices = load_prices(load_settings().prices_file)
    except PriceFileError as exc:
        print(f"warning: {exc}; costs use the default prices", file=sys.stderr)
        prices = load_prices(None)
    model = str(call["call"].get("model") or "")
    by_seq = {}
    for r in call.get("responses", []):
        r["cost_usd"] = price_response(r, model, prices)
        by_seq[r["seq"]] = r["cost_usd"]
    for group in (call.get("turns", []), call.get("timeline", [])):
        for t in group:
            if t.get("kind", "turn") == "turn":
                t["cost_usd"] = by_seq.get(t.get("response_seq"))
    priced = [r["cost_usd"] for r in call.get("responses", []) if r["cost_usd"] is not None]
    call["cost_usd"] = round(sum(priced), 6) if priced else None
    call["prices_as_of"] = prices.as_of


def _turn_timing(e: dict[str, Any]) -> str:
    parts = []
    if e.get("ttfa_ms") is not None:
        parts.append(f"first audio {e['ttfa_ms']:.0f} ms")
    if e.get("cost_usd") is not None:
        parts.append(f"${e['cost_usd']:.4f}")
    if e.get("over_budget"):
        parts.append(f"SLOW: {e['over_budget'].replace(',', ', ')} over budget")
    return f"  [{'; '.join(parts)}]" if parts else ""


def _default_allow(e: dict[str, Any]) -> bool:
    return e["kind"] == "decision" and e.get("effect") == "allow" and str(e.get("rule_id") or "").startswith("default:")


def render_call(call: dict[str, Any], *, all_decisions: bool = False) -> list[str]:
    """The call for people; decisions that only say "nothing matched, allowed" are counted, not
    listed, unless ``all_decisions``."""
    c = call["call"]
    lines = [
        f"call {c['id']}  started {fmt_time(c.get('started_at'))}  channel {c.get('channel', '-')}  "
        f"model {c.get('model', '-')}  upstream {c.get('upstream', '-')}",
        f"  policy {c.get('policy_pack') or '-'} @ {c.get('policy_version') or '-'}  gate {c.get('gate_mode') or '-'}  "
        f"caller {c.get('caller_pseudonym') or '-'}",
    ]
    if call.get("config_refused"):
        lines.append("  !! CONFIGURATION REFUSED: a session.update was refused; the session ran without the requested configuration")
    hidden = 0
    for e in call["timeline"]:
        if not all_decisions and _default_allow(e):
            hidden += 1
            continue
        at = fmt_secs(e["at_ms"], "7.1f").rjust(8)
        if e["kind"] == "turn":
            text = e["text"] if e["text"] is not None else f"({e['status']})"
            lines.append(f"{at}  #{e['seq']!s:<3} {e['role']!s:<9} {text}{_turn_timing(e)}")
            if e["interrupted"]:
                lines.append(f"{'':8}       interrupted: caller heard {fmt_secs(e['audio_end_ms'])} of "
                             f"{fmt_secs(e['audio_ms'] or 0)}: \"{e['heard_text']}\"")
        elif e["kind"] == "tool_call":
            res = e["result"]
            latency = "?" if res is None or res["latency_ms"] is None else f"{res['latency_ms']:.0f}"
            outcome = "(no result)" if res is None else f"{res['status']}: {_clip(res['output'], 80)} ({latency} ms)"
            lines.append(f"{at}       tool      {e['name']}({_clip(e['arguments'], 80)}) -> {outcome}")
        elif e["kind"] == "decision":
            flag = "  VIOLATION" if e["violation"] else ""
            lines.append(f"{at}       decision  {e['stage']}: rule {e['rule_id']} -> {e['effect']} "
                         f"(policy {e['policy_version']}){flag}" + (f": {e['message']}" if e["message"] else ""))
        elif e["kind"] == "disclosure":
            lines.append(f"{at}       disclosure {e['disclosure_id']} ({e['status']}): {_clip(e['text'], 80)}")
        elif e["kind"] == "event":
            lines.append(f"{at}       {render_event(e)}")
        elif e["kind"] == "gate":
            lines.append(f"{at}       {render_gate(e)}")
    end = call["ended"]
    lines.append(f"  call ended: {end['outcome']} after {fmt_secs(end['at_ms'])}" if end else "  call has not ended (no end recorded)")
    if call.get("responses"):
        from hybrid_agent.audit.queries import percentile

        ttfas = sorted(r["ttfa_ms"] for r in call["responses"] if isinstance(r.get("ttfa_ms"), (int, float)))
        cost = f"${call['cost_usd']:.4f} (prices as of {call.get('prices_as_of')})" if call.get("cost_usd") is not None else "no price for this model"
        timing = f"first audio p50 {percentile(ttfas, 50):.0f} ms, max {ttfas[-1]:.0f} ms" if ttfas else "no audio answer"
        slow = f"; {call['slow']} over budget" if call.get("slow") else ""
        lines.append(f"  {len(call['responses'])} responses: {timing}{slow}; cost {cost}")
    if hidden:
        lines.append(f"  ({hidden} decisions where no rule matched and the pack's default allowed: --all lists them)")
    return lines


_EVENT_LABELS = {"upstream": "ERROR upstream", "bridge": "ERROR bridge"}


def render_event(e: dict[str, Any]) -> str:
    """One call event: ``REFUSED session.update (session.model): The model ... [invalid_value, by upstream]``.

    ``e`` is a timeline entry (the event's code in ``code``) or an ``events`` row (in ``kind``)."""
    code = e["code"] if "code" in e else e.get("kind")
    what = e.get("event_type") or "client event"
    if e.get("param"):
        what += f" ({e['param']})"
    msg = f": {_clip(e['message'], 160)}" if e.get("message") else ""
    ident = f", event {e['client_event_id']}" if e.get("client_event_id") else ""
    if e.get("source") in ("upstream_refused", "bridge_refused"):
        by = "upstream" if e["source"] == "upstream_refused" else "bridge"
        return f"REFUSED {what}{msg} [{code}, by {by}{ident}]"
    label = "NOTE bridge" if e.get("notice") else _EVENT_LABELS.get(e.get("source") or "", f"EVENT {e.get('source')}")
    about = f" {what}" if e.get("event_type") else ""
    return f"{label} {code}{about}{msg}" + (f" [event {e['client_event_id']}]" if ident else "")


def _ms(v: Any) -> str:
    """Milliseconds as ``850 ms``; a value that is not a number (odd stored type) is shown as stored."""
    if type(v) not in (int, float):
        return "-" if v is None else f"?{v!r}"
    return f"{v:.0f} ms"


def gate_details(e: dict[str, Any]) -> list[str]:
    """What a gate action did, in words: ``held 850 ms``, ``asked 5000 ms``, ``clamped to 1240 ms``,
    ``ok in 12 ms``, ``effect block_speech``, and its (redacted) text quoted."""
    parts: list[str] = []
    action = e.get("action")
    if e.get("requested_ms") is not None:
        parts.append(f"asked {_ms(e['requested_ms'])}")
    if e.get("audio_end_ms") is not None:
        verb = {"truncate_clamped": "clamped to", "truncate_refused": "kept at"}.get(action or "", "at")
        parts.append(f"{verb} {_ms(e['audio_end_ms'])}")
    elif action == "truncate_refused":
        parts.append("refused")
    if e.get("held_ms") is not None:
        parts.append(f"held {_ms(e['held_ms'])}")
    if e.get("leaked_ms") is not None:
        parts.append(f"leaked {_ms(e['leaked_ms'])}")
    status, latency = e.get("status"), e.get("latency_ms")
    if status is not None and latency is not None:
        parts.append(f"{status} in {_ms(latency)}")
    elif status is not None:
        parts.append(str(status))
    elif latency is not None:
        parts.append(f"took {_ms(latency)}")
    if e.get("effect"):
        parts.append(f"effect {e['effect']}")
    if e.get("text") is not None:
        parts.append(f"\"{_clip(e['text'], 120)}\"")
    return parts


def render_gate(e: dict[str, Any]) -> str:
    """One gate action: ``GATE speech_blocked [hold] rule banking.speech.card_number: held 850 ms, leaked 0 ms``,
    ``GATE truncate_clamped: asked 5000 ms, clamped to 1240 ms``, ``GATE tool_run get_balance: ok in 12 ms``."""
    head = f"GATE {e.get('action')}"
    if e.get("mode"):
        head += f" [{e['mode']}]"
    if e.get("tool"):
        head += f" {e['tool']}"
    if e.get("rule_id"):
        head += f" rule {e['rule_id']}"
    parts = gate_details(e)
    return head + (": " + ", ".join(parts) if parts else "")


def cmd_close_interrupted(args: argparse.Namespace) -> int:
    from hybrid_agent.audit.store import close_interrupted_calls

    records = close_interrupted_calls(
        _database_url(args), older_than_s=args.older_than, started_before=args.started_before, dry_run=args.dry_run,
    )
    if args.json:
        dump_json([{"call_id": r.call_id, "at_ms": r.at_ms, "outcome": r.outcome} for r in records], sys.stdout)
        return 0
    verb = "would record" if args.dry_run else "recorded"
    for r in records:
        print(f"{r.call_id}  interrupted after {fmt_secs(r.at_ms)}")
    print(f"({verb} {len(records)} calls as interrupted)")
    return 0


def cmd_violations(args: argparse.Namespace) -> int:
    from hybrid_agent.audit.queries import list_violations

    with open_db(args) as conn:
        rows = list_violations(conn, rule=args.rule, since=args.since, limit=args.limit)
    if args.json:
        dump_json(rows, sys.stdout)
        return 0
    for r in rows:
        r["call_started"] = fmt_time(r["call_started_at"])
        r["at"] = fmt_secs(r["at_ms"])
    print_table(rows, [("call_id", "CALL"), ("call_started", "CALL STARTED"), ("at", "AT"), ("stage", "STAGE"),
                       ("rule_id", "RULE"), ("effect", "EFFECT"), ("policy_version", "POLICY"), ("message", "MESSAGE")],
                sys.stdout, width=40)
    print(f"({len(rows)} violations{'; --limit reached' if len(rows) == args.limit else ''})")
    return 0


def _fmt_stat(name: str, stat: dict[str, Any] | None) -> str | None:
    if not stat:
        return None
    return f"{name} p50 {_ms(stat['p50'])} / p99 {_ms(stat['p99'])} (n={stat['n']})"


def cmd_gate(args: argparse.Namespace) -> int:
    from hybrid_agent.audit.queries import gate_stats, list_gate_actions

    with open_db(args) as conn:
        rows = list_gate_actions(conn, action=args.action, since=args.since, call_id=args.call, limit=args.limit)
        stats = None if args.json else gate_stats(conn, action=args.action, since=args.since, call_id=args.call)
    if args.json:
        dump_json(rows, sys.stdout)
        return 0
    for r in rows:
        r["call_started"] = fmt_time(r["call_started_at"])
        r["at"] = fmt_secs(r["at_ms"])
        r["what"] = r["tool"] or r["rule_id"] or r["item_id"]
        r["detail"] = ", ".join(gate_details(r))
    print_table(rows, [("call_id", "CALL"), ("call_started", "CALL STARTED"), ("at", "AT"), ("action", "ACTION"),
                       ("mode", "MODE"), ("what", "RULE/TOOL/ITEM"), ("detail", "DETAIL")], sys.stdout, width=60)
    notes = [n for n in (_fmt_stat("held", stats["held_ms"]), _fmt_stat("leaked", stats["leaked_ms"])) if n] if stats else []
    limit = "; --limit reached" if len(rows) == args.limit else ""
    print(f"({len(rows)} gate actions{limit}" + "".join(f"; {n}" for n in notes) + ")")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from hybrid_agent.audit.queries import search_text

    with open_db(args) as conn:
        rows = search_text(conn, args.text, limit=args.limit)
    if args.json:
        dump_json(rows, sys.stdout)
        return 0
    for r in rows:
        r["at"] = fmt_secs(r["started_ms"])
        if r.get("heard"):
            r["role"] = "assistant (heard)"
    print_table(rows, [("call_id", "CALL"), ("seq", "SEQ"), ("at", "AT"), ("role", "ROLE"), ("text", "TEXT")], sys.stdout, width=80)
    print(f"({len(rows)} matches)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Open the database first; write to a temporary file next to ``-o`` and rename it on success,
    so a wrong URL or a failure halfway never truncates or half-writes a previous export."""
    import os
    import tempfile

    from hybrid_agent.audit.queries import CSV_HEADER, csv_row, export_rows

    n = 0
    with open_db(args) as conn:
        tmp: str | None = None
        try:
            if args.output:
                target = os.path.abspath(args.output)
                fd, tmp = tempfile.mkstemp(prefix=os.path.basename(target) + ".", suffix=".tmp", dir=os.path.dirname(target))
                out: TextIO = os.fdopen(fd, "w", encoding="utf-8", newline="")
            else:
                out = sys.stdout
            with out if args.output else contextlib.nullcontext(out):
                if args.format == "csv":
                    w = csv.writer(out)
                    w.writerow(CSV_HEADER)
                    for rec in export_rows(conn, since=args.since):
                        w.writerow(csv_row(rec))
                        n += 1
                else:
                    for rec in export_rows(conn, since=args.since):
                        out.write(json.dumps(rec, ensure_ascii=False, default=_json_default) + "\n")
                        n += 1
                if args.output:
                    out.flush()
                    os.fsync(out.fileno())
            if tmp is not None:
                os.replace(tmp, target)
                tmp = None
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):
                raise
            where = args.output or "stdout"
            print(f"error: cannot write the export to {where}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
    if args.output:
        print(f"exported {n} records to {args.output}", file=sys.stderr)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from hybrid_agent.audit.queries import verify_chain

    anchor = None
    if args.anchor:
        seq, _, h = args.anchor.partition(":")
        if not seq.isdigit() or len(h) != 64:
            print("error: --anchor must be SEQ:HASH (as printed by a previous verify)", file=sys.stderr)
            return 2
        anchor = (int(seq), h)
    with open_db(args) as conn:
        res = verify_chain(conn, anchor=anchor)
    if args.json:
        dump_json(res.to_json(), sys.stdout)
        return 0 if res.ok else 1
    if res.ok:
        print(f"ok: {res.checked} records, chain intact; head {res.head_seq}:{res.head_hash}")
        if anchor:
            print(f"anchor {anchor[0]}:{anchor[1][:16]}… found in the chain")
        return 0
    print(f"FAILED: {res.problem_count} problem(s) in {res.checked} ledger entries; first broken link:")
    if res.problems:
        print("  " + res.problems[0].line().replace("\n", "\n  "))
    if res.anchor_ok is False:
        print(f"  anchor {anchor[0]}:{anchor[1][:16]}… is not in the chain (chain rewritten or truncated)" if anchor else "")
    for p in res.problems[1:10]:
        print("  also: " + p.line().splitlines()[0])
    if res.problem_count > 10:
        print(f"  ... and {res.problem_count - 10} more (--json for all, up to 100)")
    return 1


def cmd_generate(args: argparse.Namespace) -> int:
    from hybrid_agent.audit.generate import generate

    stats = generate(
        _database_url(args), calls=args.calls, turns_per_call=args.turns_per_call, seed=args.seed,
        batch_size=args.batch_size, spool_path=args.spool, progress=not args.json,
    )
    if args.json:
        dump_json(stats, sys.stdout)
    else:
        print(f"generated {stats['calls']} calls, {stats['turns']} turns, {stats['records']} records in {stats['seconds']:.1f}s "
              f"({stats['turns_per_s']:.0f} turns/s, {stats['records_per_s']:.0f} records/s)")
    return 0


# ---------------------------------------------------------------------------- parser
def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", help="audit database (sqlite:///FILE or postgresql://...); env HYBRID_AGENT_DATABASE_URL")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``db`` and ``audit`` to the main ``hybrid-agent`` parser."""
    db = subparsers.add_parser("db", help="audit database migrations")
    dbsub = db.add_subparsers(dest="db_command", required=True)
    p = dbsub.add_parser("upgrade", help="create or migrate the audit schema to this code's version")
    _add_db(p)
    p.set_defaults(func=_run(cmd_db_upgrade))
    p = dbsub.add_parser("roles", help="print (or --apply) least-privilege PostgreSQL roles for the bridge and the auditor")
    p.add_argument("--apply", action="store_true",
                   help="run the SQL (as a superuser, or the tables' owner with CREATEROLE) and verify it")
    p.add_argument("--bridge-role", dest="bridge_role", default="hybrid_agent_bridge", metavar="NAME",
                   help="the bridge's role: INSERT, and SELECT only on what the writer reads (default hybrid_agent_bridge)")
    p.add_argument("--auditor-role", dest="auditor_role", default="hybrid_agent_auditor", metavar="NAME",
                   help="the compliance CLI's role: SELECT only (default hybrid_agent_auditor)")
    _add_db(p)
    p.set_defaults(func=_run(cmd_db_roles))

    audit = subparsers.add_parser("audit", help="query and verify the audit trail")
    asub = audit.add_subparsers(dest="audit_command", required=True)

    p = asub.add_parser("calls", help="list calls, newest first")
    p.add_argument("--since", type=parse_time, help="calls started at/after (2026-01-31, ISO time, epoch, or 7d/12h)")
    p.add_argument("--until", type=parse_time, help="calls started before")
    p.add_argument("--channel")
    p.add_argument("--outcome", help="completed | client_closed | upstream_closed | upstream_unavailable | error | interrupted | shutdown | idle | open (not ended)")
    p.add_argument("--policy-version", dest="policy_version")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--has-violation", dest="has_violation", action="store_const", const=True, default=None)
    g.add_argument("--no-violation", dest="has_violation", action="store_const", const=False)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--has-errors", dest="has_errors", action="store_const", const=True, default=None,
                   help="only calls with call events (upstream errors, refused client events, bridge facts)")
    g.add_argument("--no-errors", dest="has_errors", action="store_const", const=False)
    p.add_argument("--config-refused", dest="config_refused", action="store_const", const=True, default=None,
                   help="only calls where a session.update was refused")
    p.add_argument("--blocked", dest="blocked", action="store_const", const=True, default=None,
                   help="only calls where the gate blocked speech (a speech_blocked gate action)")
    p.add_argument("--slow", dest="slow", action="store_const", const=True, default=None,
                   help="only calls with a response over a latency budget (HYBRID_AGENT_LATENCY_BUDGETS)")
    p.add_argument("--limit", type=positive_int, default=50)
    p.add_argument("--json", action="store_true")
    _add_db(p)
    p.set_defaults(func=_run(cmd_calls))

    p = asub.add_parser("show", help="one call turn by turn: said, heard, tools, decisions, disclosures, events, gate actions")
    p.add_argument("call_id", metavar="CALL_ID")
    p.add_argument("--json", action="store_true")
    p.add_argument("--all", action="store_true", help="also list the decisions where no rule matched (default allow)")
    _add_db(p)
    p.set_defaults(func=_run(cmd_show))

    p = asub.add_parser("close-interrupted", help="record calls a crashed bridge left open as ended: interrupted")
    p.add_argument("--older-than", dest="older_than", type=parse_duration, default=300.0, metavar="DURATION",
                   help="only calls whose last record is older than this (default 5m; 0 = no limit, only with no bridge running)")
    p.add_argument("--started-before", dest="started_before", type=parse_time, metavar="T", help="only calls started before T")
    p.add_argument("--dry-run", dest="dry_run", action="store_true", help="list the calls, record nothing")
    p.add_argument("--json", action="store_true")
    _add_db(p)
    p.set_defaults(func=_run(cmd_close_interrupted))

    p = asub.add_parser("violations", help="policy decisions that are violations, newest call first")
    p.add_argument("--rule", help="only this rule id")
    p.add_argument("--since", type=parse_time, help="in calls started at/after")
    p.add_argument("--limit", type=positive_int, default=100)
    p.add_argument("--json", action="store_true")
    _add_db(p)
    p.set_defaults(func=_run(cmd_violations))

    p = asub.add_parser("gate", help="what the gate did (held, blocked, clamped, ran tools, escalated), newest call first")
    p.add_argument("--action", help="only this action: " + " | ".join(GATE_ACTIONS))
    p.add_argument("--since", type=parse_time, help="in calls started at/after")
    p.add_argument("--call", metavar="CALL_ID", help="only this call")
    p.add_argument("--limit", type=positive_int, default=100)
    p.add_argument("--json", action="store_true")
    _add_db(p)
    p.set_defaults(func=_run(cmd_gate))

    p = asub.add_parser("search", help="find turns by (redacted) text")
    p.add_argument("text")
    p.add_argument("--limit", type=positive_int, default=100)
    p.add_argument("--json", action="store_true")
    _add_db(p)
    p.set_defaults(func=_run(cmd_search))

    p = asub.add_parser("export", help="stream every record in chain order (constant memory)")
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    p.add_argument("--since", type=parse_time, help="records of calls started at/after")
    p.add_argument("--output", "-o", help="file (default stdout)")
    _add_db(p)
    p.set_defaults(func=_run(cmd_export))

    p = asub.add_parser("verify", help="recompute the hash chain; exit 1 naming the first broken link")
    p.add_argument("--anchor", metavar="SEQ:HASH", help="a head printed by an earlier verify, kept outside the database")
    p.add_argument("--json", action="store_true")
    _add_db(p)
    p.set_defaults(func=_run(cmd_verify))

    from hybrid_agent.cost.cli import register as register_cost

    register_cost(asub, _add_db, _run, parse_time)

    p = asub.add_parser("generate", help="write realistic synthetic calls through the record API (demos, tests, benchmarks)")
    p.add_argument("--calls", type=int, required=True)
    p.add_argument("--turns-per-call", dest="turns_per_call", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--batch-size", dest="batch_size", type=int, default=1000)
    p.add_argument("--spool", help="spool file for the writer (default: a temporary file)")
    p.add_argument("--json", action="store_true")
    _add_db(p)
    p.set_defaults(func=_run(cmd_generate))


__all__ = ["register", "parse_time", "parse_duration", "price_call", "render_call", "render_event", "render_gate", "DatabaseUnavailable"]
