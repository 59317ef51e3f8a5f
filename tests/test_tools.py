"""Server tools: registry validation, the runner's outcomes, the demo backends, and agreement with the packs.

Why this module is long: the registry's validation, every outcome of a run (ok, timeout, error,
unusable or oversize output, cancellation) and each demo backend share one set of fixture tools.
"""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openai.types.realtime import RealtimeFunctionTool
from pydantic import BaseModel, ConfigDict, Field

from hybrid_agent.policy import load_pack
from hybrid_agent.protocol.events import unknown_parameters, validate_client_event
from hybrid_agent.tools import (
    MAX_ARGUMENT_BYTES,
    MAX_OUTPUT_BYTES,
    DemoBank,
    DemoClinic,
    Tool,
    ToolArgumentError,
    ToolContext,
    ToolError,
    ToolRegistry,
    ValidatedCall,
    demo_bank_registry,
    demo_clinic_registry,
    outcome_for_argument_error,
    registry_for_pack,
    run_call,
    run_tool,
)
from hybrid_agent.tools import runner as runner_mod

POLICIES = Path(__file__).resolve().parents[1] / "policies"
CTX = ToolContext(call_id="call-1")


class EchoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    amount: float = Field(gt=0)
    note: str = Field(max_length=20)


class NoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


def make_registry() -> ToolRegistry:
    reg = ToolRegistry()

    @reg.register(args=EchoArgs)
    async def echo(args: EchoArgs, ctx: ToolContext) -> dict[str, Any]:
        """Echo the amount."""
        return {"amount": args.amount, "call": ctx.call_id}

    return reg


def validated(reg: ToolRegistry, name: str, args: dict[str, Any]) -> ValidatedCall:
    checked = reg.validate(name, json.dumps(args))
    assert isinstance(checked, ValidatedCall), checked
    return checked


# --- registry ------------------------------------------------------------------------------------------


def test_register_by_decorator_and_method() -> None:
    reg = make_registry()
    assert reg.names() == ["echo"]
    tool = reg.get("echo")
    assert tool is not None and tool.description == "Echo the amount." and tool.timeout_s == 5.0

    async def other(args: NoArgs, ctx: ToolContext) -> str:
        return "{}"

    reg.add(Tool("other", "x", NoArgs, other))
    assert reg.names() == ["echo", "other"] and "other" in reg and len(reg) == 2
    with pytest.raises(ValueError):
        reg.add(Tool("other", "x", NoArgs, other))


def test_args_model_must_forbid_extra() -> None:
    class Loose(BaseModel):
        x: int = 0

    async def f(args: Loose, ctx: ToolContext) -> str:
        return ""

    with pytest.raises(ValueError, match="extra='forbid'"):
        Tool("loose", "", Loose, f)


def test_validation_ok_keeps_raw_arguments() -> None:
    call = validated(make_registry(), "echo", {"amount": 5, "note": "hi"})
    assert call.name == "echo" and isinstance(call.args, EchoArgs) and call.raw == {"amount": 5, "note": "hi"}


def test_validation_errors_are_structured_and_never_echo_values() -> None:
    secret = "Jane Doe 07700 900123"
    err = make_registry().validate("echo", json.dumps({"amount": "12 Acacia Avenue", "note": secret, "ssn_guess": secret}))
    assert isinstance(err, ToolArgumentError) and err.type == "invalid_arguments"
    out = json.loads(err.as_output())
    assert out["error"]["type"] == "invalid_arguments" and out["error"]["tool"] == "echo"
    locs = {f["loc"] for f in out["error"]["fields"]}
    assert locs == {"amount", "note", "ssn_guess"}
    text = err.as_output()
    for value in (secret, "Acacia", "07700", "Jane"):
        assert value not in text
    assert outcome_for_argument_error(err).status == "error"
    assert outcome_for_argument_error(err).error_kind == "invalid_arguments"


def test_missing_field_and_constraint_messages() -> None:
    err = make_registry().validate("echo", '{"amount": -3}')
    assert isinstance(err, ToolArgumentError)
    fields = {f.loc: f.msg for f in err.fields}
    assert set(fields) == {"amount", "note"} and "greater than 0" in fields["amount"]


def test_unknown_tool() -> None:
    err = make_registry().validate("drop_tables", "{}")
    assert isinstance(err, ToolArgumentError) and err.type == "unknown_tool"
    assert json.loads(err.as_output())["error"]["type"] == "unknown_tool"
    assert "echo" in err.message


@pytest.mark.parametrize(
    "text,kind",
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_json"),
        ('"a string"', "invalid_json"),
        ('{"amount": NaN, "note": "x"}', "invalid_json"),
        ("[" * 5000 + "]" * 5000, "invalid_json"),
        ('{"amount": ' + "9" * 5000 + ', "note": "x"}', "invalid_json"),
    ],
)
def test_bad_json(text: str, kind: str) -> None:
    err = make_registry().validate("echo", text)
    assert isinstance(err, ToolArgumentError) and err.type == kind
    assert "not json" not in err.as_output()


def test_empty_arguments_mean_no_arguments() -> None:
    async def f(args: NoArgs, ctx: ToolContext) -> str:
        return "{}"

    reg = ToolRegistry([Tool("noop", "", NoArgs, f)])
    assert isinstance(reg.validate("noop", ""), ValidatedCall)


def test_oversize_arguments_refused() -> None:
    big = json.dumps({"amount": 1, "note": "x" * MAX_ARGUMENT_BYTES})
    err = make_registry().validate("echo", big)
    assert isinstance(err, ToolArgumentError) and err.type == "arguments_too_large"
    assert "xxxx" not in err.as_output()
    # multi-byte characters count as bytes, not characters
    wide = json.dumps({"note": "é" * (MAX_ARGUMENT_BYTES // 2)}, ensure_ascii=False)
    assert len(wide) < MAX_ARGUMENT_BYTES
    err = make_registry().validate("echo", wide)
    assert isinstance(err, ToolArgumentError) and err.type == "arguments_too_large"


def test_declarations_validate_against_the_sdk() -> None:
    for reg in (make_registry(), demo_bank_registry(), demo_clinic_registry()):
        decls = reg.declarations()
        assert len(decls) == len(reg)
        for decl in decls:
            model = RealtimeFunctionTool.model_validate(decl)
            assert not model.model_extra and set(model.model_fields_set) == set(decl)
            assert model.type == "function" and model.name == decl["name"]
            params = decl["parameters"]
            assert params["type"] == "object" and params["additionalProperties"] is False
            dumped = json.dumps(params)
            assert "$ref" not in dumped and "$defs" not in dumped and '"title"' not in dumped and "anyOf" not in dumped
        event = {"type": "session.update", "session": {"type": "realtime", "tools": decls}}
        parsed = validate_client_event(event)
        assert unknown_parameters(parsed) == []
    assert [d["name"] for d in demo_bank_registry().declarations(["get_balance"])] == ["get_balance"]


def test_nested_models_are_inlined() -> None:
    class Inner(BaseModel):
        model_config = ConfigDict(extra="forbid")
        title: str

    class Outer(BaseModel):
        model_config = ConfigDict(extra="forbid")
        items: list[Inner]
        maybe: Inner | None = None

    async def f(args: Outer, ctx: ToolContext) -> str:
        return ""

    params = Tool("nested", "", Outer, f).declaration()["parameters"]
    assert "$ref" not in json.dumps(params) and "$defs" not in params
    assert params["properties"]["items"]["items"]["properties"]["title"] == {"type": "string"}
    assert params["properties"]["maybe"]["type"] == "object"


# --- runner --------------------------------------------------------------------------------------------


async def test_run_ok_serializes_dict() -> None:
    reg = make_registry()
    outcome = await run_call(validated(reg, "echo", {"amount": 2.5, "note": "é"}), CTX)
    assert outcome.status == "ok" and outcome.ok and outcome.error_kind is None
    assert json.loads(outcome.output) == {"amount": 2.5, "call": "call-1"}
    assert outcome.latency_ms >= 0


async def test_timeout_is_an_outcome_and_the_late_result_is_discarded() -> None:
    finished: list[str] = []

    async def slow(args: NoArgs, ctx: ToolContext) -> dict[str, Any]:
        await asyncio.sleep(30)
        finished.append("late")
        return {"late": True}

    tool = Tool("slow", "", NoArgs, slow, timeout_s=0.05)
    started = time.perf_counter()
    outcome = await run_tool(tool, NoArgs(), CTX)
    assert time.perf_counter() - started < 5  # generous: the point is that it did not wait 30 s
    assert outcome.status == "timeout" and outcome.error_kind == "timeout" and outcome.late_result == "cancelled"
    assert json.loads(outcome.output)["error"]["type"] == "timeout"
    await asyncio.sleep(0.05)
    assert finished == []


async def test_timeout_of_a_tool_that_ignores_cancellation_is_abandoned() -> None:
    finished: list[str] = []
    release = asyncio.Event()

    async def stubborn(args: NoArgs, ctx: ToolContext) -> dict[str, Any]:
        while True:
            try:
                await release.wait()
                finished.append("done")
                return {"late": "result"}
            except asyncio.CancelledError:
                continue  # refuses to stop

    tool = Tool("stubborn", "", NoArgs, stubborn, timeout_s=0.02)
    outcome = await run_tool(tool, NoArgs(), CTX, timeout_s=0.02)
    assert outcome.status == "timeout" and outcome.late_result == "abandoned"
    assert "late" not in json.loads(outcome.output)
    release.set()
    for _ in range(50):
        if finished:
            break
        await asyncio.sleep(0.01)
    assert finished == ["done"] and not runner_mod._ABANDONED  # it finished; nothing kept, nothing used


async def test_per_call_timeout_override() -> None:
    async def quick(args: NoArgs, ctx: ToolContext) -> str:
        await asyncio.sleep(0.01)
        return '{"ok": true}'

    tool = Tool("quick", "", NoArgs, quick, timeout_s=0.001)
    assert (await run_tool(tool, NoArgs(), CTX, timeout_s=5)).status == "ok"


async def test_exception_is_an_error_outcome_without_its_message() -> None:
    async def boom(args: NoArgs, ctx: ToolContext) -> dict[str, Any]:
        raise KeyError("customer Jane Doe, 12 Acacia Avenue")

    outcome = await run_tool(Tool("boom", "", NoArgs, boom), NoArgs(), CTX)
    assert outcome.status == "error" and outcome.error_kind == "tool_failed" and outcome.exception_type == "KeyError"
    assert "Jane" not in outcome.output and "Acacia" not in outcome.output
    body = json.loads(outcome.output)
    assert body["error"]["type"] == "tool_failed" and "KeyError" in body["error"]["message"]


async def test_tool_error_and_reported_errors() -> None:
    async def refuse(args: NoArgs, ctx: ToolContext) -> dict[str, Any]:
        raise ToolError("insufficient_funds", "Not enough money.", extra={"demo": True})

    async def report(args: NoArgs, ctx: ToolContext) -> dict[str, Any]:
        return {"error": {"type": "busy", "message": "try later"}}

    outcome = await run_tool(Tool("refuse", "", NoArgs, refuse), NoArgs(), CTX)
    assert outcome.status == "error" and outcome.error_kind == "insufficient_funds"
    assert json.loads(outcome.output) == {"error": {"type": "insufficient_funds", "message": "Not enough money."}, "demo": True}
    outcome = await run_tool(Tool("report", "", NoArgs, report), NoArgs(), CTX)
    assert outcome.status == "error" and outcome.error_kind == "busy"


async def test_string_results_are_sent_as_json() -> None:
    async def plain(args: NoArgs, ctx: ToolContext) -> str:
        return "done, thanks"

    async def json_text(args: NoArgs, ctx: ToolContext) -> str:
        return '{"a": 1}'

    assert json.loads((await run_tool(Tool("p", "", NoArgs, plain), NoArgs(), CTX)).output) == {"result": "done, thanks"}
    assert (await run_tool(Tool("j", "", NoArgs, json_text), NoArgs(), CTX)).output == '{"a": 1}'


async def test_unusable_results_are_errors() -> None:
    async def bad(args: NoArgs, ctx: ToolContext) -> Any:
        return {"when": object()}

    async def nan(args: NoArgs, ctx: ToolContext) -> Any:
        return {"x": float("nan")}

    async def wrong_type(args: NoArgs, ctx: ToolContext) -> Any:
        return 42

    for func in (bad, nan, wrong_type):
        outcome = await run_tool(Tool("bad", "", NoArgs, func), NoArgs(), CTX)
        assert outcome.status == "error" and outcome.error_kind == "bad_output", func


async def test_output_is_bounded() -> None:
    async def huge(args: NoArgs, ctx: ToolContext) -> dict[str, Any]:
        return {"rows": ["é" * 100] * 2000}

    outcome = await run_tool(Tool("huge", "", NoArgs, huge), NoArgs(), CTX)
    assert outcome.status == "ok" and outcome.truncated
    assert len(outcome.output.encode()) <= MAX_OUTPUT_BYTES
    body = json.loads(outcome.output)
    assert body["truncated"] is True and body["original_bytes"] > MAX_OUTPUT_BYTES and body["partial"].startswith('{"rows"')


async def test_callers_cancellation_propagates() -> None:
    async def slow(args: NoArgs, ctx: ToolContext) -> str:
        await asyncio.sleep(30)
        return ""

    task = asyncio.ensure_future(run_tool(Tool("slow", "", NoArgs, slow), NoArgs(), CTX))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# --- demo bank -----------------------------------------------------------------------------------------


async def call(reg: ToolRegistry, name: str, ctx: ToolContext = CTX, **args: Any) -> tuple[str, dict[str, Any]]:
    checked = reg.validate(name, json.dumps(args))
    if isinstance(checked, ToolArgumentError):
        return "invalid", json.loads(checked.as_output())
    outcome = await run_call(checked, ctx)
    return outcome.status, json.loads(outcome.output)


async def test_demo_bank_verify_balance_transfer() -> None:
    bank = DemoBank()
    reg = demo_bank_registry(bank)
    status, out = await call(reg, "get_balance", account_id="DEMO-ACC-0001-CUR")
    assert status == "error" and out["error"]["type"] == "not_verified" and out["demo"] is True

    status, out = await call(reg, "verify_identity", customer_id="DEMO-CUST-0001", date_of_birth="1980-03-03", postcode="zz99 1aa")
    assert status == "ok" and out["verified"] is True and out["verification_level"] == "basic" and out["demo"] is True

    status, out = await call(reg, "get_balance", account_id="demo-acc-0001-cur")
    assert status == "ok" and out["balance"] == 1234.56 and out["currency"] == "GBP" and "demo" in out["backend"].lower()

    status, out = await call(
        reg, "transfer_funds", from_account="DEMO-ACC-0001-CUR", to_account="DEMO-ACC-0002-CUR", amount=200.5, currency="GBP", reference="rent"
    )
    assert status == "ok" and out["status"] == "completed" and out["new_balance"] == 1034.06
    assert out["transfer_id"].startswith("DEMO-TX-")
    assert bank.balance("DEMO-ACC-0001-CUR") == Decimal("1034.06") and bank.balance("DEMO-ACC-0002-CUR") == Decimal("450.50")

    status, out = await call(reg, "transfer_funds", from_account="DEMO-ACC-0001-CUR", to_account="DEMO-ACC-0002-CUR", amount=5000)
    assert status == "error" and out["error"]["type"] == "insufficient_funds"
    assert bank.balance("DEMO-ACC-0001-CUR") == Decimal("1034.06") and len(bank.transfers) == 1


async def test_demo_bank_own_rules() -> None:
    reg = demo_bank_registry(DemoBank())
    await call(reg, "verify_identity", customer_id="DEMO-CUST-0001", passcode_digits="246810")
    cases = [
        ({"account_id": "DEMO-ACC-0002-CUR"}, "get_balance", "account_not_found"),  # someone else's account
        ({"account_id": "NOPE"}, "get_balance", "account_not_found"),
        ({"from_account": "DEMO-ACC-0001-CUR", "to_account": "EXT-999", "amount": 5}, "transfer_funds", "payee_not_found"),
        ({"from_account": "DEMO-ACC-0001-CUR", "to_account": "demo-acc-0001-cur", "amount": 5}, "transfer_funds", "same_account"),
        (
            {"from_account": "DEMO-ACC-0001-CUR", "to_account": "DEMO-ACC-0001-SAV", "amount": 5, "currency": "EUR"},
            "transfer_funds",
            "unsupported_currency",
        ),
        ({"from_account": "DEMO-ACC-0001-CUR", "to_account": "DEMO-ACC-0001-SAV", "amount": 0.001}, "transfer_funds", "invalid_amount"),
        ({"card_last4": "1881", "reason": "lost"}, "block_card", "card_not_found"),
    ]
    for args, name, kind in cases:
        status, out = await call(reg, name, **args)
        assert (status, out["error"]["type"]) == ("error", kind), (name, args)
    status, out = await call(reg, "transfer_funds", from_account="DEMO-ACC-0001-CUR", to_account="DEMO-ACC-0001-SAV", amount="5")
    assert status == "invalid" and out["error"]["fields"][0]["loc"] == "amount"
    status, out = await call(reg, "block_card", card_last4="4242", reason="lost")
    assert status == "ok" and out["blocked"] is True and out["already_blocked"] is False
    status, out = await call(reg, "block_card", card_last4="4242", reason="lost")
    assert out["already_blocked"] is True


async def test_demo_bank_verification_levels() -> None:
    reg = demo_bank_registry(DemoBank())

    async def level(ctx: ToolContext, **args: Any) -> str:
        status, out = await call(reg, "verify_identity", ctx, **args)
        assert status == "ok", out
        return out["verification_level"]

    c = ToolContext("levels")
    assert await level(c, customer_id="DEMO-CUST-0001", passcode_digits="2 4 6 8 1 0") == "strong"
    assert await level(c, customer_id="DEMO-CUST-0001", date_of_birth="3 March 1980", postcode="ZZ99 1AA") == "basic"
    assert await level(c, customer_id="DEMO-CUST-0001", date_of_birth="1980-03-03") == "none"  # not enough
    assert await level(c, customer_id="DEMO-CUST-0001", date_of_birth="1980-03-03", postcode="ZZ99 1AA", passcode_digits="1") == "none"
    assert await level(c, customer_id="DEMO-CUST-9999", date_of_birth="1980-03-03", postcode="ZZ99 1AA") == "none"
    assert await level(c, customer_id="DEMO-CUST-0001", date_of_birth="", postcode="", passcode_digits="246810") == "strong"
    # three failed attempts on one call (a success does not reset them): the bank refuses further checks on it
    assert await level(c, customer_id="DEMO-CUST-0001", postcode="AB1 2CD") == "none"
    status, out = await call(reg, "verify_identity", c, customer_id="DEMO-CUST-0001", passcode_digits="246810")
    assert status == "error" and out["error"]["type"] == "too_many_attempts"
    assert await level(ToolContext("other-call"), customer_id="DEMO-CUST-0002", passcode_digits="135791") == "strong"


async def test_demo_bank_state_not_shared() -> None:
    a, b = DemoBank(), DemoBank()
    reg_a, reg_b = demo_bank_registry(a), demo_bank_registry(b)
    await call(reg_a, "verify_identity", customer_id="DEMO-CUST-0001", passcode_digits="246810")
    status, _ = await call(reg_a, "transfer_funds", from_account="DEMO-ACC-0001-CUR", to_account="DEMO-ACC-0001-SAV", amount=100)
    assert status == "ok"
    assert a.balance("DEMO-ACC-0001-CUR") == Decimal("1134.56") and b.balance("DEMO-ACC-0001-CUR") == Decimal("1234.56")
    status, out = await call(reg_b, "get_balance", account_id="DEMO-ACC-0001-CUR")  # verified on a, not on b
    assert out["error"]["type"] == "not_verified"
    status, out = await call(reg_a, "get_balance", ToolContext("call-2"), account_id="DEMO-ACC-0001-CUR")  # nor on another call
    assert out["error"]["type"] == "not_verified"


async def test_demo_bank_latency_meets_timeout() -> None:
    reg = demo_bank_registry(DemoBank(latency_s=5))
    checked = reg.validate("get_balance", '{"account_id": "DEMO-ACC-0001-CUR"}')
    assert isinstance(checked, ValidatedCall)
    assert (await run_call(checked, CTX, timeout_s=0.02)).status == "timeout"


# --- demo clinic ---------------------------------------------------------------------------------------


async def test_demo_clinic_flow() -> None:
    clinic = DemoClinic()
    reg = demo_clinic_registry(clinic)
    status, out = await call(reg, "get_appointments", patient_id="DEMO-PAT-0001")
    assert out["error"]["type"] == "not_verified"
    status, out = await call(reg, "verify_identity", patient_id="DEMO-PAT-0001", date_of_birth="1969-07-20")
    assert out["verification_level"] == "basic" and out["demo"] is True
    status, out = await call(reg, "verify_identity", patient_id="DEMO-PAT-0001", date_of_birth="20/07/1969", postcode="ZZ99 3CC")
    assert out["verification_level"] == "strong"
    status, out = await call(reg, "get_appointments", patient_id="DEMO-PAT-0001")
    assert status == "ok" and [a["appointment_id"] for a in out["appointments"]] == ["DEMO-APPT-0001"]
    status, out = await call(reg, "get_appointments", patient_id="DEMO-PAT-0002")
    assert out["error"]["type"] == "patient_mismatch"
    status, out = await call(reg, "book_appointment", patient_id="DEMO-PAT-0001", clinician="dr demo example", slot="2030-01-15T09:00")
    assert status == "ok" and out["booked"] is True
    status, out = await call(reg, "book_appointment", patient_id="DEMO-PAT-0001", clinician="Dr Demo Example", slot="2030-01-15T09:00")
    assert out["error"]["type"] == "slot_unavailable" and "2030-01-15T09:30" in out["available_slots"]
    status, out = await call(reg, "get_test_results", patient_id="DEMO-PAT-0001", test="Blood")
    assert status == "ok" and out["status"] == "ready" and "DEMO" in out["summary"]
    status, out = await call(reg, "request_refill", patient_id="DEMO-PAT-0001", medication="amoxicillin")
    assert status == "ok" and out["medication"] == "Amoxicillin 500mg" and out["refill_id"].startswith("DEMO-RX-")
    status, out = await call(reg, "request_refill", patient_id="DEMO-PAT-0001", medication="morphine")
    assert out["error"]["type"] == "not_on_repeat_list"
    assert len(DemoClinic().appointments) == 1 and len(clinic.appointments) == 2  # state per instance


async def test_demo_clinic_wrong_answer_is_none() -> None:
    reg = demo_clinic_registry()
    status, out = await call(reg, "verify_identity", patient_id="DEMO-PAT-0001", date_of_birth="1969-07-20", postcode="AB1 2CD")
    assert status == "ok" and out["verified"] is False and out["verification_level"] == "none"
    status, out = await call(reg, "verify_identity", patient_id="DEMO-PAT-0001", postcode="ZZ99 3CC")
    assert out["verification_level"] == "none" and "needed" in out


# --- agreement with the packs ----------------------------------------------------------------------------

_COMPATIBLE = {"string": {"string"}, "number": {"number", "integer"}, "integer": {"integer"}, "boolean": {"boolean"}}


@pytest.mark.parametrize("pack_name", ["retail-banking", "healthcare"])
def test_demo_registry_matches_pack_tools(pack_name: str) -> None:
    pack = load_pack(POLICIES / pack_name)
    tools = pack.manifest.tools
    reg = registry_for_pack(pack_name)
    assert reg is not None and tools
    assert set(reg.names()) == set(tools), "the demo registry and the pack declare the same tools"
    for name, spec in tools.items():
        tool = reg.get(name)
        assert tool is not None
        props = tool.declaration()["parameters"]["properties"]
        assert dict(tool.keypad) == dict(spec.keypad), name  # the same keypad arguments, of the same kinds
        assert set(props) == set(spec.args) - set(spec.keypad), name  # keypad arguments are never declared to the model
        assert not set(tool.keypad) & set(tool.declaration()["parameters"].get("required") or []), name
        for arg, arg_type in spec.args.items():
            if arg in spec.keypad:
                continue
            assert props[arg].get("type") in _COMPATIBLE.get(arg_type, {props[arg].get("type")}), (name, arg, arg_type, props[arg])
        assert tool.verifies_identity == spec.verifies_identity, name
        assert tool.regulated == spec.regulated, name


def test_registry_for_unknown_pack_and_fresh_state() -> None:
    assert registry_for_pack("no-such-pack") is None
    assert registry_for_pack("retail-banking") is not registry_for_pack("retail-banking")
