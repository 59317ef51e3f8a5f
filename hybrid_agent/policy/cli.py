"""``hybrid-agent policy {schema,lint,test,explain,replay}``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from hybrid_agent.policy.source import Issue


def _safe(fn: Any) -> Any:
    """No tracebacks for a closed pipe (``... | head``)."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except BrokenPipeError:
            try:
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep interpreter shutdown quiet
            except OSError:
                pass
            return 0
        except UnicodeDecodeError as exc:
            print(f"error: a file is not valid UTF-8 (invalid byte at offset {exc.start})", file=sys.stderr)
            return 2
        except RecursionError:
            print("error: input nested too deeply", file=sys.stderr)
            return 2

    wrapper.__name__ = getattr(fn, "__name__", "cmd")
    return wrapper


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("policy", help="author, lint, test, explain and replay policy packs")
    sub = p.add_subparsers(dest="policy_command", required=True)

    s = sub.add_parser("schema", help="print the JSON Schema of pack files (for editors)")
    s.add_argument("--kind", choices=["all", "pack", "rules", "tests", "input"], default="all",
                   help="one file kind (pack.yaml, rules/*.yaml, tests/*.yaml, explain input) or all as $defs")
    s.set_defaults(func=_safe(cmd_schema))

    s = sub.add_parser("lint", help="check a pack: schema, CEL, duplicate ids, never-matching rules, unknown tools")
    s.add_argument("pack", help="pack folder (e.g. policies/retail-banking)")
    s.add_argument("--json", action="store_true", help="issues as JSON")
    s.add_argument("--strict", action="store_true", help="warnings fail too")
    s.set_defaults(func=_safe(cmd_lint))

    s = sub.add_parser("test", help="run the pack's tests (tests/*.yaml)")
    s.add_argument("pack")
    s.add_argument("-k", dest="match", help="only tests whose name contains this")
    s.add_argument("-v", "--verbose", dest="test_verbose", action="store_true", help="one line per test")
    s.set_defaults(func=_safe(cmd_test))

    s = sub.add_parser("explain", help="the decision for one input and why")
    s.add_argument("pack")
    s.add_argument("--input", required=True, metavar="FILE|-", help="JSON object with stage and context fields ('-' for stdin)")
    s.add_argument("--json", action="store_true", help="one JSON object (effect, rule_ids, pack_version, rules, ...)")
    s.set_defaults(func=_safe(cmd_explain))

    s = sub.add_parser("replay", help="re-evaluate recorded calls with this pack; list decisions that would change")
    s.add_argument("pack")
    s.add_argument("--db", metavar="URL", help="audit database (SQLAlchemy URL); env HYBRID_AGENT_DATABASE_URL")
    s.add_argument("--since", help="only calls started since: ISO date/time, epoch seconds, or a duration like 7d, 12h, 30m")
    s.add_argument("--limit", type=int, default=10000, help="at most this many calls (newest first)")
    s.add_argument("--all", dest="show_all", action="store_true", help="list every re-evaluated event, not only changes")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_safe(cmd_replay))


def _print_issues(issues: list[Issue], out: TextIO) -> None:
    for i in issues:
        out.write(str(i) + "\n")


def _load_or_report(path: str, *, with_tests: bool) -> Any:
    from hybrid_agent.policy.loader import PackError, load_pack

    try:
        return load_pack(path, with_tests=with_tests)
    except PackError as exc:
        errors = [i for i in exc.issues if i.level == "error"] or exc.issues
        _print_issues(errors, sys.stderr)
        print(f"error: pack {path} has {len(errors)} error(s); run: hybrid-agent policy lint {path}", file=sys.stderr)
        return None


# ------------------------------------------------------------------------------------------ schema
def cmd_schema(args: argparse.Namespace) -> int:
    from hybrid_agent.policy.schema import json_schema, json_schema_for

    doc = json_schema() if args.kind == "all" else json_schema_for(args.kind)
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


# ------------------------------------------------------------------------------------------ lint
def cmd_lint(args: argparse.Namespace) -> int:
    from hybrid_agent.policy.lint import lint

    rep = lint(args.pack)
    failed = bool(rep.errors) or (args.strict and bool(rep.warnings))
    if args.json:
        pack = rep.load.pack
        json.dump({
            "ok": not failed,
            "pack": rep.load.manifest.name if rep.load.manifest else None,
            "pack_version": pack.version if pack else None,
            "issues": [i.to_json() for i in rep.issues],
        }, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 1 if failed else 0
    _print_issues(rep.issues, sys.stdout)
    n_rules = len(rep.load.rules)
    n_tests = len(rep.load.tests)
    summary = f"{len(rep.errors)} error(s), {len(rep.warnings)} warning(s)"
    if failed:
        print(f"{args.pack}: FAILED: {summary}")
        return 1
    version = rep.load.pack.version if rep.load.pack else "?"
    print(f"{args.pack}: ok ({n_rules} rules, {n_tests} tests, version {version}; {summary})")
    return 0


# ------------------------------------------------------------------------------------------ test
def cmd_test(args: argparse.Namespace) -> int:
    from hybrid_agent.policy.testing import report, timed_run

    pack = _load_or_report(args.pack, with_tests=True)
    if pack is None:
        return 2
    results, elapsed = timed_run(pack, match=args.match)
    header = (
        " test session starts ".center(72, "=")
        + f"\npack: {pack.name} {pack.manifest.version} (version {pack.version}), {len(pack.rules)} rules\n"
        + f"collected {len(results)} items\n"
    )
    return report(results, elapsed, sys.stdout, verbose=args.test_verbose, header=header)


# ------------------------------------------------------------------------------------------ explain
def _read_input(spec: str) -> tuple[Any, str | None]:
    try:
        if spec == "-":
            buf = getattr(sys.stdin, "buffer", None)
            raw = buf.read() if buf is not None else sys.stdin.read().encode("utf-8", "surrogatepass")
        else:
            raw = Path(spec).read_bytes()
    except OSError as exc:
        return None, f"cannot read input {spec}: {exc.strerror or exc}"
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, f"input {spec}: not UTF-8 (invalid byte at offset {exc.start})"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"input {spec}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
    except RecursionError:
        return None, f"input {spec}: JSON nested too deeply"


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "-"
    return json.dumps(v) if not isinstance(v, str) else repr(v)


def cmd_explain(args: argparse.Namespace) -> int:
    from hybrid_agent.policy.schema import PolicyInput
    from hybrid_agent.policy.source import format_loc

    pack = _load_or_report(args.pack, with_tests=False)
    if pack is None:
        return 2
    data, err = _read_input(args.input)
    if err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not isinstance(data, dict):
        print("error: input must be a JSON object with 'stage' and context fields", file=sys.stderr)
        return 2
    try:
        inp = PolicyInput.model_validate(data)
        ex = pack.explain(inp)
    except RecursionError:
        print("error: input nested too deeply", file=sys.stderr)
        return 2
    except ValidationError as exc:
        for e in exc.errors(include_url=False):
            loc = format_loc(tuple(e["loc"]))
            msg = "unknown field" if e["type"] == "extra_forbidden" else e["msg"]
            print(f"error: input {loc}: {msg}", file=sys.stderr)
        return 2
    d = ex.decision
    if args.json:
        json.dump(ex.to_json(), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    out = sys.stdout
    out.write(f"decision: {d.effect}" + (" (default: no rule matched)" if d.default else "") + "\n")
    out.write(f"pack: {d.pack} {pack.manifest.version} (version {d.pack_version})  stage: {d.stage}\n")
    if d.rule_ids:
        out.write(f"deciding rules: {', '.join(d.rule_ids)}\n")
    for m in d.messages:
        out.write(f"  message: {m}\n")
    for u in d.utterances:
        out.write(f"  say: {u}\n")
    if d.obligations:
        out.write(f"also matched: {', '.join(d.obligations)}\n")
    if d.disclosures:
        out.write(f"disclosures required: {', '.join(d.disclosures)}\n")
    if d.level:
        out.write(f"verification required: {d.level}\n")
    out.write(f"\nrules at stage {d.stage} ({len(ex.traces)}):\n")
    for t in ex.traces:
        mark = "MATCH" if t.matched else "     "
        parts = []
        if t.tools is not None:
            parts.append(f"tools={_fmt(t.tools)}")
        if t.phrases is not None:
            parts.append(f"phrases={_fmt(t.phrases)}")
        if t.history_phrases is not None:
            parts.append(f"history_phrases={_fmt(t.history_phrases)}")
        if t.regex is not None:
            parts.append(f"regex={_fmt(t.regex)}")
        if t.condition is not None:
            parts.append(f"condition={_fmt(t.condition)}")
        elif t.tools is False and pack.rule(t.rule_id) is not None and pack.rule(t.rule_id).program is not None:
            parts.append("condition=(not evaluated: other tools)")
        if t.error:
            parts.append(f"error: {t.error} -> fails closed ({t.effect})" if t.matched else f"error: {t.error}")
        out.write(f"  {mark} {t.rule_id:<44} {t.effect:<18} {' '.join(parts) or '(no matchers: always)'}  [{t.file}:{t.line}]\n")
    return 0


# ------------------------------------------------------------------------------------------ replay
def cmd_replay(args: argparse.Namespace) -> int:
    from hybrid_agent.policy import replay as rp

    pack = _load_or_report(args.pack, with_tests=False)
    if pack is None:
        return 2
    since = None
    if args.since:
        try:
            since = rp.parse_since(args.since)
        except ValueError as exc:
            print(f"error: --since: {exc}", file=sys.stderr)
            return 2
    try:
        calls = rp.read_calls_from_db(args.db, since=since, limit=args.limit)
        report = rp.replay(pack, calls)
    except rp.ReplayUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(report.to_json(include_all=args.show_all), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        rp.print_report(report, sys.stdout, show_all=args.show_all)
    return 0
