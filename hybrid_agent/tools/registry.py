"""Server tools: the functions the bridge itself runs, declared to the model, invisible to the client.

A :class:`Tool` pairs an async function with a pydantic model of its arguments.  The
:class:`ToolRegistry` turns those models into Realtime ``session.tools`` declarations and
validates the JSON arguments the model sends (``response.function_call_arguments.done``)
before the policy gate and the runner see them.  Validation never raises: it returns either
a :class:`ValidatedCall` or a :class:`ToolArgumentError` whose :meth:`~ToolArgumentError.as_output`
is a JSON string the model can read and recover from.  Error messages never carry the raw
argument values (they may be PII); they name fields and what was expected.

No sockets, no clock, no knowledge of the call session: the session decides *when* to
validate and run; this module only knows *what* a tool is.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

#: the largest ``arguments`` string accepted from the model, in UTF-8 bytes
MAX_ARGUMENT_BYTES = 64 * 1024
#: field locations and messages in error outputs are cut to this many characters
_MAX_TEXT = 200
_MAX_FIELDS = 20


@dataclass(frozen=True)
class ToolContext:
    """What a tool may know about the call that runs it (the session builds it; tools must not keep it).

    ``call_id`` scopes per-call state in a backend (for example who was verified on this call);
    ``verification_level`` is the level the policy context holds, for information only: whether a
    call is allowed is the policy gate's decision, taken before the tool runs.
    """

    call_id: str
    verification_level: str = "none"
    metadata: Mapping[str, str] = field(default_factory=dict)


ToolResult = dict[str, Any] | str
ToolFunc = Callable[[Any, ToolContext], Awaitable[ToolResult]]


@dataclass(frozen=True)
class Tool:
    """One server tool.  ``args_model`` must forbid extra fields, so a misspelt argument is an error."""

    name: str
    description: str
    args_model: type[BaseModel]
    func: ToolFunc
    timeout_s: float = 5.0
    regulated: bool = False
    verifies_identity: bool = False
    #: arguments the caller enters on the keypad (argument -> card | security_code | digits): never
    #: declared to the model, filled in by the bridge's keypad capture (``session.keypad``) in memory only
    keypad: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or not all(c.isalnum() or c in "_-" for c in self.name) or len(self.name) > 64:
            raise ValueError(f"tool name {self.name!r}: 1-64 letters, digits, _ or -")
        if not (isinstance(self.args_model, type) and issubclass(self.args_model, BaseModel)):
            raise TypeError(f"tool {self.name}: args_model must be a pydantic BaseModel subclass")
        if self.args_model.model_config.get("extra") != "forbid":
            raise ValueError(f"tool {self.name}: args_model must set model_config extra='forbid'")
        if not self.timeout_s > 0:
            raise ValueError(f"tool {self.name}: timeout_s must be positive")
        unknown = set(self.keypad) - set(self.args_model.model_fields)
        if unknown:
            raise ValueError(f"tool {self.name}: keypad arguments {sorted(unknown)} are not among its arguments")

    def declaration(self) -> dict[str, Any]:
        """The Realtime GA ``session.tools`` entry (``RealtimeFunctionTool``)."""
        parameters = parameters_schema(self.args_model)
        for arg in self.keypad:  # the model never sees (or asks for) what the caller keys in
            parameters["properties"].pop(arg, None)
            if isinstance(parameters.get("required"), list):
                parameters["required"] = [r for r in parameters["required"] if r != arg]
        return {"type": "function", "name": self.name, "description": self.description, "parameters": parameters}


@dataclass(frozen=True)
class FieldError:
    loc: str
    msg: str

    def as_dict(self) -> dict[str, str]:
        return {"loc": self.loc, "msg": self.msg}


ArgumentErrorType = Literal["unknown_tool", "invalid_json", "arguments_too_large", "invalid_arguments"]


@dataclass(frozen=True)
class ToolArgumentError:
    """Why a call was not run, in a shape the model can act on (and the audit can record)."""

    type: ArgumentErrorType
    message: str
    tool: str
    fields: tuple[FieldError, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message, "tool": self.tool}
        if self.fields:
            error["fields"] = [f.as_dict() for f in self.fields]
        return {"error": error}

    def as_output(self) -> str:
        """The ``function_call_output`` text for the model."""
        return json.dumps(self.as_dict(), ensure_ascii=False)


@dataclass(frozen=True)
class ValidatedCall:
    """A call whose arguments passed the tool's model.

    ``args`` is the model instance the tool receives; ``raw`` is the JSON object exactly as the
    model sent it (what the policy context's ``args`` should be: ``has(args.x)`` means "was sent").
    """

    tool: Tool
    args: BaseModel
    raw: dict[str, Any]

    @property
    def name(self) -> str:
        return self.tool.name


class ToolRegistry:
    """The server tools of one deployment (or one demo backend), by name."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool) -> Tool:
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        return tool

    def register(
        self,
        name: str | None = None,
        *,
        args: type[BaseModel],
        description: str | None = None,
        timeout_s: float = 5.0,
        regulated: bool = False,
        verifies_identity: bool = False,
    ) -> Callable[[ToolFunc], ToolFunc]:
        """Decorator: ``@registry.register(args=BalanceArgs)`` over ``async def get_balance(args, ctx)``.

        The name defaults to the function's name, the description to its docstring.
        """

        def deco(func: ToolFunc) -> ToolFunc:
            self.add(
                Tool(
                    name=name or func.__name__,  # type: ignore[attr-defined]
                    description=description if description is not None else (func.__doc__ or "").strip(),
                    args_model=args,
                    func=func,
                    timeout_s=timeout_s,
                    regulated=regulated,
                    verifies_identity=verifies_identity,
                )
            )
            return func

        return deco

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def keypad_fields(self) -> dict[str, dict[str, str]]:
        """tool -> {argument: kind} for the tools with keypad arguments."""
        return {t.name: dict(t.keypad) for t in self._tools.values() if t.keypad}

    def declarations(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """``session.tools`` entries for ``names`` (all tools when None); an unknown name is a KeyError."""
        chosen = self._tools.values() if names is None else [self._tools[n] for n in names]
        return [t.declaration() for t in chosen]

    def validate(self, name: str, arguments_json: str) -> ValidatedCall | ToolArgumentError:
        """Parse and validate the model's arguments for ``name``; never raises, never echoes values."""
        tool = self._tools.get(name)
        safe_name = _clip(name)
        if tool is None:
            return ToolArgumentError(
                "unknown_tool",
                f"There is no tool named {safe_name!r}. Available tools: {', '.join(self._tools) or 'none'}.",
                safe_name,
            )
        parsed = parse_arguments(arguments_json)
        if isinstance(parsed, tuple):
            kind, message = parsed
            return ToolArgumentError(kind, message, tool.name)
        try:
            args = tool.args_model.model_validate(parsed)
        except ValidationError as exc:
            fields = _field_errors(exc, parsed)
            return ToolArgumentError(
                "invalid_arguments",
                f"The arguments for {tool.name} do not match its parameters: correct the listed fields and call it again.",
                tool.name,
                fields,
            )
        return ValidatedCall(tool, args, parsed)


def parse_arguments(arguments_json: str) -> dict[str, Any] | tuple[ArgumentErrorType, str]:
    """The arguments as a JSON object, or ``(error type, message)``.  Empty text counts as ``{}``."""
    if not isinstance(arguments_json, str):
        return "invalid_json", "The arguments must be a JSON object in a string."
    if len(arguments_json) > MAX_ARGUMENT_BYTES or len(arguments_json.encode("utf-8", "surrogatepass")) > MAX_ARGUMENT_BYTES:
        return "arguments_too_large", f"The arguments are larger than {MAX_ARGUMENT_BYTES} bytes; send shorter values."
    if not arguments_json.strip():
        return {}
    try:
        value = json.loads(arguments_json, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        return "invalid_json", f"The arguments are not valid JSON (line {exc.lineno}, column {exc.colno}); send one JSON object."
    except (ValueError, RecursionError):  # NaN/Infinity, integers too long to convert, nesting too deep
        return "invalid_json", "The arguments are not acceptable JSON; send one JSON object of plain values."
    if not isinstance(value, dict):
        return "invalid_json", "The arguments must be a JSON object (named parameters), not a list or a single value."
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError("non-finite number")


def _field_errors(exc: ValidationError, sent: Mapping[str, Any]) -> tuple[FieldError, ...]:
    """Pydantic's errors without their ``input`` (and with any sent string scrubbed from the messages)."""
    secrets = sorted({s for s in _strings(sent) if len(s) >= 3}, key=len, reverse=True)
    out: list[FieldError] = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(arguments)"
        msg = str(err.get("msg", "invalid value"))
        if err.get("type") == "extra_forbidden":
            msg = "Unknown parameter: remove it (only the declared parameters are accepted)."
        for s in secrets:
            if s in msg:
                msg = msg.replace(s, "…")
            if s in loc:
                loc = loc.replace(s, "…")
        out.append(FieldError(_clip(loc, 64), _clip(msg)))
        if len(out) >= _MAX_FIELDS:
            break
    return tuple(out)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _clip(text: str, limit: int = _MAX_TEXT) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- JSON schema for the declarations -------------------------------------------------------------

_DROP = ("title",)


def parameters_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema, self-contained: ``$ref``/``$defs`` inlined, titles dropped, and
    ``Optional[X] = None`` written as plain ``X`` (not required) so the model is not invited to send null."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})
    out = _clean(_inline(schema, defs, ()), is_schema=True)
    out.setdefault("type", "object")
    out.setdefault("properties", {})
    out["additionalProperties"] = False
    return out


def _inline(node: Any, defs: Mapping[str, Any], seen: tuple[str, ...]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            key = ref.removeprefix("#/$defs/")
            if key in seen:
                raise ValueError(f"recursive argument model ({key}) cannot be declared without $ref")
            target = copy.deepcopy(defs[key])
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return _inline({**target, **rest}, defs, (*seen, key))
        return {k: _inline(v, defs, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, defs, seen) for v in node]
    return node


def _clean(node: Any, *, is_schema: bool) -> Any:
    """Drop titles in schema positions (never a property that happens to be called ``title``)."""
    if isinstance(node, list):
        return [_clean(v, is_schema=is_schema) for v in node]
    if not isinstance(node, dict):
        return node
    if not is_schema:  # a map of name -> schema (properties, patternProperties)
        return {k: _clean(v, is_schema=True) for k, v in node.items()}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key in ("properties", "patternProperties"):
            out[key] = _clean(value, is_schema=False)
        elif key in ("default", "examples", "const", "enum"):
            out[key] = value
        else:
            out[key] = _clean(value, is_schema=True)
    any_of = out.get("anyOf")
    if isinstance(any_of, list) and len(any_of) == 2 and {"type": "null"} in any_of and out.get("default", 0) is None:
        (inner,) = [s for s in any_of if s != {"type": "null"}]
        rest = {k: v for k, v in out.items() if k not in ("anyOf", "default")}
        out = {**inner, **rest}
    return out
