"""YAML files with line numbers: every value's location, so errors say ``file:line``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

Loc = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Issue:
    """One lint finding; ``str(issue)`` is one line: ``file:line: error: message``."""

    file: str
    line: int | None
    message: str
    level: Literal["error", "warning"] = "error"
    rule_id: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.level}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "level": self.level, "message": self.message, "rule_id": self.rule_id}


@dataclass
class YamlDoc:
    """A parsed YAML file and the 1-based line of each path (``("rules", 3, "effect")``)."""

    path: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)
    duplicate_keys: list[tuple[str, int]] = field(default_factory=list)

    def line_of(self, loc: Loc) -> int | None:
        """The line of ``loc`` or of its closest ancestor that has one."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), 1)


class YamlError(Exception):
    def __init__(self, issue: Issue) -> None:
        super().__init__(str(issue))
        self.issue = issue


def _walk(node: yaml.Node, loc: Loc, doc: YamlDoc) -> None:
    doc.lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            if key in seen:
                doc.duplicate_keys.append((".".join(map(str, loc + (key,))), key_node.start_mark.line + 1))
            seen.add(key)
            doc.lines[loc + (key,)] = key_node.start_mark.line + 1
            # nested values locate at their own start (block mappings/lists start on the next line)
            child_loc = loc + (key,)
            if isinstance(value_node, (yaml.MappingNode, yaml.SequenceNode)):
                _walk_children(value_node, child_loc, doc)
    elif isinstance(node, yaml.SequenceNode):
        _walk_children(node, loc, doc)


def _walk_children(node: yaml.Node, loc: Loc, doc: YamlDoc) -> None:
    if isinstance(node, yaml.MappingNode):
        _walk(node, loc, doc)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            doc.lines[loc + (i,)] = item.start_mark.line + 1
            if isinstance(item, (yaml.MappingNode, yaml.SequenceNode)):
                _walk_children(item, loc + (i,), doc)


def load_yaml(path: Path, display: str | None = None) -> YamlDoc:
    """Parse one YAML file; syntax errors raise :class:`YamlError` with the location."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlError(Issue(name, None, f"cannot read: {exc}")) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(filter(None, [exc.context, exc.problem])) or "invalid YAML"
        if exc.context_mark is not None and exc.problem_mark is not None and "stream end" in (exc.problem or ""):
            mark = exc.context_mark  # an unclosed bracket/quote: point at where it was opened
            problem += f" (unclosed at end of file, line {exc.problem_mark.line + 1})"
        line = mark.line + 1 if mark else None
        raise YamlError(Issue(name, line, f"YAML syntax error: {problem}")) from None
    except yaml.YAMLError as exc:
        raise YamlError(Issue(name, None, f"YAML error: {exc}")) from None
    finally:
        loader.dispose()
    doc = YamlDoc(name, data)
    if node is not None:
        doc.lines[()] = node.start_mark.line + 1
        _walk_children(node, (), doc)
    return doc


def format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def validation_issues(doc: YamlDoc, exc: ValidationError, *, prefix: Loc = ()) -> list[Issue]:
    """One issue per pydantic error, located at the offending key's line."""
    issues = []
    for err in exc.errors(include_url=False):
        # pydantic puts union/tagged branches and "function-after" markers in loc; keep real keys
        loc = prefix + tuple(p for p in err["loc"] if isinstance(p, int) or not str(p).startswith(("function-", "list[", "dict[")))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = f"unknown field {loc[-1]!r}" if loc else "unknown field"
            where = format_loc(loc[:-1])
        else:
            where = format_loc(loc)
            if err["type"] == "missing":
                msg = f"missing required field {loc[-1]!r}" if loc else "missing required field"
                where = format_loc(loc[:-1])
            elif "input" in err and err["type"] in ("enum", "literal_error"):
                msg = f"{msg} (got {err['input']!r})"
        line = doc.line_of(loc)
        issues.append(Issue(doc.path, line, f"{where}: {msg}" if where else msg))
    return issues
