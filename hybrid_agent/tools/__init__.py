"""Server tools: functions the bridge runs itself, declared to the model and invisible to the client.

A plain library (no sockets, no call session)::

    from hybrid_agent.tools import ToolContext, registry_for_pack, run_call

    registry = registry_for_pack("retail-banking")            # the DEMO bank; a deployment registers its own
    session_tools = registry.declarations()                     # -> session.update {"tools": [...]}
    checked = registry.validate(name, arguments_json)           # ValidatedCall | ToolArgumentError
    if isinstance(checked, ToolArgumentError):
        output = checked.as_output()                            # function_call_output for the model
    else:
        outcome = await run_call(checked, ToolContext(call_id))  # ToolOutcome: ok | error | timeout

See ``docs/tools.md`` for the output shapes and the demo backends.
"""

from __future__ import annotations

from hybrid_agent.tools.demo_bank import DemoBank, demo_bank_registry
from hybrid_agent.tools.demo_clinic import DemoClinic, demo_clinic_registry
from hybrid_agent.tools.registry import (
    MAX_ARGUMENT_BYTES,
    FieldError,
    Tool,
    ToolArgumentError,
    ToolContext,
    ToolRegistry,
    ValidatedCall,
    parameters_schema,
)
from hybrid_agent.tools.runner import MAX_OUTPUT_BYTES, ToolError, ToolOutcome, outcome_for_argument_error, run_call, run_tool

#: the demo wiring: pack name -> the registry factory of its DEMO backend (fresh state per call of the factory)
DEMO_BACKENDS = {"retail-banking": demo_bank_registry, "healthcare": demo_clinic_registry}


def registry_for_pack(pack_name: str) -> ToolRegistry | None:
    """A fresh DEMO backend's registry for a shipped pack ("retail-banking", "healthcare"), else None.

    This is demo wiring only: the tools run against in-memory fake data.  A deployment builds
    its own :class:`ToolRegistry` over its real systems, with the same tool and argument names
    as its pack's ``tools:``.
    """
    factory = DEMO_BACKENDS.get(pack_name)
    return factory() if factory is not None else None


__all__ = [
    "DEMO_BACKENDS",
    "MAX_ARGUMENT_BYTES",
    "MAX_OUTPUT_BYTES",
    "DemoBank",
    "DemoClinic",
    "FieldError",
    "Tool",
    "ToolArgumentError",
    "ToolContext",
    "ToolError",
    "ToolOutcome",
    "ToolRegistry",
    "ValidatedCall",
    "demo_bank_registry",
    "demo_clinic_registry",
    "outcome_for_argument_error",
    "parameters_schema",
    "registry_for_pack",
    "run_call",
    "run_tool",
]
