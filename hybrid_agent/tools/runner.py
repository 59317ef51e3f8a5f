"""Run one validated server tool call with a deadline and turn whatever happens into a :class:`ToolOutcome`.

The outcome's ``output`` is always a JSON text, ready to be the ``function_call_output`` item
the bridge sends upstream, and always bounded in size.  Failures are described, never leaked:
an exception inside a tool becomes its type name and a generic message (its text may hold
PII); only a :class:`ToolError`, which the tool author raises on purpose, carries a message
to the model.  A call that misses its deadline is cancelled and its late result discarded,
and the outcome says whether the cancellation was confirmed, so the audit can record a tool
that may still be running somewhere.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from hybrid_agent.tools.registry import Tool, ToolArgumentError, ToolContext, ValidatedCall

#: the largest output sent to the model, in UTF-8 bytes; larger outputs are replaced by a truncation object
MAX_OUTPUT_BYTES = 64 * 1024
#: how long a timed-out tool gets to acknowledge its cancellation before it is abandoned
CANCEL_GRACE_S = 0.25

Status = Literal["ok", "error", "timeout"]
LateResult = Literal["cancelled", "abandoned"]

# Tasks abandoned after a timeout, kept referenced so they are not garbage-collected mid-flight.
_ABANDONED: set[asyncio.Task[Any]] = set()


class ToolError(Exception):
    """Raised by a tool for an expected failure the model should hear about ("insufficient_funds").

    ``code`` and ``message`` go to the model verbatim, so they must not contain PII; ``extra``
    adds top-level fields to the output (e.g. a demo backend's label).
    """

    def __init__(self, code: str, message: str, *, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.extra = dict(extra or {})


@dataclass(frozen=True)
class ToolOutcome:
    """What happened to one call.

    ``status``: ``ok`` (the tool returned a result), ``error`` (bad arguments, a ToolError, a
    crash or an unusable result; ``error_kind`` says which) or ``timeout``.  ``output`` is the JSON
    text for the model.  On a timeout ``late_result`` is ``cancelled`` (the tool stopped) or
    ``abandoned`` (it ignored the cancellation; it may still finish, and its result is discarded).
    ``truncated`` is true when the output was cut to the size bound.
    """

    tool: str
    status: Status
    output: str
    latency_ms: float
    error_kind: str | None = None
    late_result: LateResult | None = None
    truncated: bool = False
    exception_type: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def outcome_for_argument_error(error: ToolArgumentError) -> ToolOutcome:
    """A call refused at validation, as an outcome (so the session has one shape to send and audit)."""
    return ToolOutcome(tool=error.tool, status="error", output=error.as_output(), latency_ms=0.0, error_kind=error.type)


async def run_call(call: ValidatedCall, context: ToolContext, timeout_s: float | None = None) -> ToolOutcome:
    """:func:`run_tool` for a :class:`ValidatedCall` from :meth:`ToolRegistry.validate`."""
    return await run_tool(call.tool, call.args, context, timeout_s)


async def run_tool(tool: Tool, args: BaseModel, context: ToolContext, timeout_s: float | None = None) -> ToolOutcome:
    """Run ``tool`` once with ``args`` (already validated); never raises except for the caller's own cancellation."""
    limit = tool.timeout_s if timeout_s is None else timeout_s
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000.0, 3)

    task: asyncio.Task[Any] = asyncio.ensure_future(_invoke(tool, args, context))
    try:
        done, _ = await asyncio.wait({task}, timeout=limit)
    except asyncio.CancelledError:
        task.cancel()
        _abandon(task)
        raise
    if not done:
        late = await _cancel(task)
        output = _error_output(
            "timeout", f"{tool.name} did not answer within {limit:g} seconds; its result, if any, will not be used."
        )
        return ToolOutcome(tool.name, "timeout", output, elapsed(), error_kind="timeout", late_result=late)

    if task.cancelled():  # the tool was cancelled from inside (not by us): a failure, not our cancellation
        output = _error_output("tool_failed", f"{tool.name} was cancelled before it finished.")
        return ToolOutcome(tool.name, "error", output, elapsed(), error_kind="tool_failed", exception_type="CancelledError")
    exc = task.exception()
    if isinstance(exc, ToolError):
        output = _error_output(exc.code, exc.message, extra=exc.extra)
        output, truncated = bound_output(output)
        return ToolOutcome(tool.name, "error", output, elapsed(), error_kind=exc.code, truncated=truncated)
    if exc is not None:
        output = _error_output(
            "tool_failed", f"{tool.name} failed unexpectedly ({type(exc).__name__}); no details are available."
        )
        return ToolOutcome(tool.name, "error", output, elapsed(), error_kind="tool_failed", exception_type=type(exc).__name__)

    result = task.result()
    serialized = serialize_result(result)
    if serialized is None:
        output = _error_output("bad_output", f"{tool.name} returned a result that cannot be sent to the model.")
        return ToolOutcome(tool.name, "error", output, elapsed(), error_kind="bad_output")
    output, truncated = bound_output(serialized)
    kind = _error_kind(result)
    status: Status = "error" if kind else "ok"
    return ToolOutcome(tool.name, status, output, elapsed(), error_kind=kind, truncated=truncated)


async def _invoke(tool: Tool, args: BaseModel, context: ToolContext) -> Any:
    return await tool.func(args, context)


async def _cancel(task: asyncio.Task[Any]) -> LateResult:
    """Cancel a late task; wait briefly for it to stop, else abandon it (its result is never read)."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=CANCEL_GRACE_S)
    if done:
        if not task.cancelled():
            task.exception()  # it swallowed the cancellation and finished anyway: retrieve and drop
            return "abandoned"
        return "cancelled"
    _abandon(task)
    return "abandoned"


def _abandon(task: asyncio.Task[Any]) -> None:
    _ABANDONED.add(task)

    def _forget(t: asyncio.Task[Any]) -> None:
        _ABANDONED.discard(t)
        if not t.cancelled():
            t.exception()  # mark retrieved; the late result or error is deliberately dropped

    task.add_done_callback(_forget)


def serialize_result(result: Any) -> str | None:
    """A dict as JSON text (no NaN, non-ASCII kept); a str as it is when it is JSON, else as ``{"result": str}``;
    anything else is None (so the model always receives JSON)."""
    if isinstance(result, str):
        try:
            json.loads(result, parse_constant=_reject_constant)
            return result
        except (ValueError, RecursionError):
            return json.dumps({"result": result}, ensure_ascii=False)
    if isinstance(result, dict):
        try:
            return json.dumps(result, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            return None
    return None


def _reject_constant(name: str) -> Any:
    raise ValueError("non-finite number")


def bound_output(output: str, limit: int = MAX_OUTPUT_BYTES) -> tuple[str, bool]:
    """``output`` if it fits in ``limit`` bytes, else a JSON object with the start of it and a marker."""
    size = len(output.encode("utf-8", "surrogatepass"))
    if size <= limit:
        return output, False
    keep = limit - 256
    while keep > 0:
        partial = output.encode("utf-8", "surrogatepass")[:keep].decode("utf-8", "ignore")
        text = json.dumps(
            {"truncated": True, "original_bytes": size, "note": "The output was too large and was cut.", "partial": partial},
            ensure_ascii=False,
        )
        if len(text.encode("utf-8", "surrogatepass")) <= limit:
            return text, True
        keep //= 2
    return json.dumps({"truncated": True, "original_bytes": size}), True


def _error_kind(result: Any) -> str | None:
    """A dict result with a top-level ``error`` is a failure the tool reported itself."""
    if isinstance(result, dict) and result.get("error"):
        err = result["error"]
        kind = err.get("type") if isinstance(err, dict) else None
        return str(kind)[:64] if isinstance(kind, str) and kind else "tool_error"
    return None


def _error_output(kind: str, message: str, *, extra: Mapping[str, Any] | None = None) -> str:
    body: dict[str, Any] = {"error": {"type": kind, "message": message}}
    for key, value in (extra or {}).items():
        body.setdefault(key, value)
    try:
        return json.dumps(body, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return json.dumps({"error": {"type": kind, "message": message}}, ensure_ascii=False)
