"""Loading a pack folder: ``pack.yaml``, ``rules/*.yaml``, ``tests/*.yaml``.

Loading validates (pydantic), compiles every CEL condition, phrase and regex once, and
reports every problem as an :class:`Issue` with ``file:line``.  It is the only place
that reads files; evaluation afterwards is pure.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from hybrid_agent.policy.clips import ClipAudio, ClipError, read_clips
from hybrid_agent.policy.engine import CompileError, CompiledRule, Pack, compile_rule
from hybrid_agent.policy.schema import PackManifest, PackTest, PackTestFile, Rule, RuleFile
from hybrid_agent.policy.source import Issue, YamlDoc, YamlError, load_yaml, validation_issues

YAML_SUFFIXES = (".yaml", ".yml")


class PackError(Exception):
    """The pack cannot be used; ``issues`` says why (each one line with ``file:line``)."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        errors = [i for i in issues if i.level == "error"]
        super().__init__(str(errors[0]) if errors else "invalid pack")


@dataclass
class LoadResult:
    pack: Pack | None
    root: str = ""
    issues: list[Issue] = field(default_factory=list)
    docs: dict[str, YamlDoc] = field(default_factory=dict)
    manifest: PackManifest | None = None
    rules: list[CompiledRule] = field(default_factory=list)
    tests: list[tuple[str, int | None, PackTest]] = field(default_factory=list)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "error"]


def _display(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return rel if not rel.startswith("..") else str(path)


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in YAML_SUFFIXES)


def content_hash(root: Path) -> str:
    """sha256 over ``pack.yaml``, ``rules/*.yaml`` and ``clips/*`` (names and bytes), first 16 hex digits.

    Tests are not part of it: adding a test case does not change what the pack decides or says.
    """
    h = hashlib.sha256()
    clips = root / "clips"
    files = [root / "pack.yaml"] + _yaml_files(root / "rules") + (sorted(p for p in clips.iterdir() if p.is_file()) if clips.is_dir() else [])
    for p in files:
        if p.exists():
            h.update(p.relative_to(root).as_posix().encode() + b"\0")
            h.update(p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _check_duplicates(doc: YamlDoc, issues: list[Issue]) -> None:
    for key, line in doc.duplicate_keys:
        issues.append(Issue(doc.path, line, f"{key}: duplicate key (the later value would silently win)"))


def load(root: str | Path, *, with_tests: bool = True) -> LoadResult:
    """Load and compile a pack; never raises for problems in the pack (they are issues)."""
    root = Path(root)
    res = LoadResult(pack=None, root=_display(root))
    issues = res.issues
    if not root.is_dir():
        issues.append(Issue(str(root), None, "not a policy pack folder (expected pack.yaml, rules/, tests/)"))
        return res
    manifest_path = root / "pack.yaml"
    if not manifest_path.exists():
        issues.append(Issue(_display(manifest_path), None, "missing pack.yaml"))
        return res

    manifest: PackManifest | None = None
    try:
        doc = load_yaml(manifest_path, _display(manifest_path))
        res.docs[doc.path] = doc
        _check_duplicates(doc, issues)
        try:
            manifest = PackManifest.model_validate(doc.data if doc.data is not None else {})
        except ValidationError as exc:
            issues.extend(validation_issues(doc, exc))
    except YamlError as exc:
        issues.append(exc.issue)
    clips: dict[str, ClipAudio] = {}
    if manifest is not None:
        try:
            clips = read_clips(root, manifest.bridge_speech)
        except ClipError as exc:
            issues.append(Issue(_display(manifest_path), doc.line_of(("bridge_speech",)), str(exc)))

    rules: list[CompiledRule] = []
    seen: dict[str, str] = {}
    rule_files = _yaml_files(root / "rules")
    rules_dir = root / "rules"
    if rules_dir.is_dir():
        for p in sorted(rules_dir.iterdir()):
            if p in rule_files:
                continue
            if p.suffix.lower() in YAML_SUFFIXES:
                issues.append(Issue(_display(p), None, f"rule file is ignored: rename it to {p.stem}.yaml (suffixes are case-sensitive)"))
            else:
                issues.append(Issue(_display(p), None, "not a rule file (rules/*.yaml): it is ignored; move it out of rules/", level="warning"))
    if not rule_files:
        issues.append(Issue(_display(rules_dir), None, "no rule files (rules/*.yaml): a pack without rules would allow everything"))
    for path in rule_files:
        try:
            doc = load_yaml(path, _display(path))
        except YamlError as exc:
            issues.append(exc.issue)
            continue
        res.docs[doc.path] = doc
        _check_duplicates(doc, issues)
        data = doc.data
        if data is None:
            issues.append(Issue(doc.path, 1, "empty rule file (expected 'rules: [...]')"))
            continue
        if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
            try:
                RuleFile.model_validate(data)
            except ValidationError as exc:
                issues.extend(validation_issues(doc, exc))
            continue
        # validate rule by rule so one bad rule does not hide the others
        for key in data:
            if key != "rules":
                issues.append(Issue(doc.path, doc.line_of((key,)), f"unknown field {key!r}"))
        for i, raw in enumerate(data["rules"]):
            try:
                rule = Rule.model_validate(raw)
            except ValidationError as exc:
                issues.extend(validation_issues(doc, exc, prefix=("rules", i)))
                continue
            line = doc.line_of(("rules", i))
            if rule.id in seen:
                issues.append(Issue(doc.path, doc.line_of(("rules", i, "id")), f"duplicate rule id {rule.id!r} (first defined at {seen[rule.id]})", rule_id=rule.id))
                continue
            seen[rule.id] = f"{doc.path}:{line}"
            if manifest is None:
                continue
            try:
                rules.append(compile_rule(rule, doc.path, line, manifest))
            except CompileError as exc:
                issues.append(Issue(doc.path, doc.line_of(("rules", i, exc.field_name)), f"rules[{i}].{exc.field_name}: {exc}", rule_id=rule.id))

    if rule_files and not seen and not any(i.level == "error" for i in issues):
        issues.append(Issue(_display(rules_dir), None, "the rule files define no rules: a pack without rules would allow everything"))

    tests: list[tuple[str, int | None, PackTest]] = []
    if with_tests:
        for path in _yaml_files(root / "tests"):
            try:
                doc = load_yaml(path, _display(path))
            except YamlError as exc:
                issues.append(exc.issue)
                continue
            res.docs[doc.path] = doc
            _check_duplicates(doc, issues)
            try:
                tf = PackTestFile.model_validate(doc.data if doc.data is not None else {})
            except ValidationError as exc:
                issues.extend(validation_issues(doc, exc))
                continue
            for i, case in enumerate(tf.tests):
                tests.append((doc.path, doc.line_of(("tests", i)), case))

    res.manifest, res.rules, res.tests = manifest, rules, tests
    if manifest is not None and not any(i.level == "error" for i in issues):
        res.pack = Pack(root=root, manifest=manifest, rules=rules, version=content_hash(root), tests=tests, clips=clips)
    return res


def load_pack(root: str | Path, *, with_tests: bool = False) -> Pack:
    """Load a pack for evaluation; :class:`PackError` if lint finds any error (schema, CEL, unknown tools...)."""
    from hybrid_agent.policy.lint import lint_result

    rep = lint_result(load(root, with_tests=with_tests))
    if rep.errors or rep.load.pack is None:
        raise PackError(rep.errors or rep.issues or [Issue(str(root), None, "invalid pack")])
    return rep.load.pack
