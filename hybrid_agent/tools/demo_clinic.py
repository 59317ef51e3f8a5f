"""DEMO CLINIC: an in-memory, fake clinic for demos and tests.  Not a real clinic, not real patients.

It backs the ``healthcare`` policy pack's tools (``verify_identity``, ``get_appointments``,
``book_appointment``, ``get_test_results``, ``request_refill``) with the same argument names,
over a small fixed set of obviously fake patients (ids ``DEMO-PAT-…``, postcodes in the unused
``ZZ99`` district).  Every output carries ``"demo": true`` and a ``backend`` label.

Verification (per call): the pack's ``verify_identity`` takes only ``patient_id``,
``date_of_birth`` and ``postcode``, so the demo grades them: the right date of birth gives
``basic``, the right date of birth *and* postcode give ``strong`` (the level the pack's
``health.identity.results_need_strong`` asks for before test results); any answer given wrong
gives ``none``.  Three knowledge answers are a weak "strong": a real deployment would add a
second factor (a one-time code) to the pack and to its own tool.

The clinic's own rules: every record tool's ``patient_id`` must be the patient verified on
this call; a booking needs a free slot of a known clinician; a refill needs the medication on
the patient's repeat list.  Which tools are *allowed* at which level, controlled substances
and confirmation are the policy gate's decisions, not the clinic's.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hybrid_agent.tools import _demo
from hybrid_agent.tools.registry import Tool, ToolContext, ToolRegistry

BACKEND = "DEMO clinic"


@dataclass
class DemoPatient:
    patient_id: str
    name: str
    date_of_birth: str
    postcode: str
    repeat_medications: list[str] = field(default_factory=list)
    test_results: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class DemoAppointment:
    appointment_id: str
    patient_id: str
    clinician: str
    slot: str


#: fake patients, fake clinicians, fake results: demo data only
DEMO_PATIENTS: tuple[DemoPatient, ...] = (
    DemoPatient(
        "DEMO-PAT-0001",
        "Pat Placeholder",
        "1969-07-20",
        "ZZ99 3CC",
        repeat_medications=["Amoxicillin 500mg", "Salbutamol inhaler"],
        test_results={
            "blood": {"status": "ready", "summary": "DEMO result: all values in the reference range."},
            "cholesterol": {"status": "pending", "summary": "DEMO result: not back from the lab yet."},
        },
    ),
    DemoPatient("DEMO-PAT-0002", "Robin Sample", "1990-02-14", "ZZ99 4DD", repeat_medications=["Levothyroxine 50mcg"]),
)
DEMO_CLINICIANS: dict[str, list[str]] = {
    "Dr Demo Example": ["2030-01-15T09:00", "2030-01-15T09:30", "2030-01-16T14:00"],
    "Nurse Demo Sample": ["2030-01-15T11:00", "2030-01-17T10:00"],
}
DEMO_APPOINTMENTS: tuple[DemoAppointment, ...] = (
    DemoAppointment("DEMO-APPT-0001", "DEMO-PAT-0001", "Dr Demo Example", "2030-01-10T10:00"),
)


# --- argument models (names exactly as in policies/healthcare/pack.yaml) ----------------------------

_ARGS = ConfigDict(extra="forbid", strict=True)  # strict: "500" is not an amount (the policy would fail closed on it)
_PATIENT = Field(min_length=1, max_length=64, description="The patient's id (as given when verifying).")


class VerifyIdentityArgs(BaseModel):
    model_config = _ARGS

    patient_id: str = Field(min_length=1, max_length=64, description="The patient id the caller gives.")
    date_of_birth: str | None = Field(None, max_length=64, description="Date of birth, ISO format (YYYY-MM-DD) if possible.")
    postcode: str | None = Field(None, max_length=16, description="The postcode of the patient's home address.")


class GetAppointmentsArgs(BaseModel):
    model_config = _ARGS

    patient_id: str = _PATIENT


class BookAppointmentArgs(BaseModel):
    model_config = _ARGS

    patient_id: str = _PATIENT
    clinician: str = Field(min_length=1, max_length=100, description="The clinician's name, as listed by the clinic.")
    slot: str = Field(min_length=1, max_length=32, description="A free slot, as YYYY-MM-DDTHH:MM.")


class GetTestResultsArgs(BaseModel):
    model_config = _ARGS

    patient_id: str = _PATIENT
    test: str = Field(min_length=1, max_length=64, description="Which test, e.g. blood or cholesterol.")


class RequestRefillArgs(BaseModel):
    model_config = _ARGS

    patient_id: str = _PATIENT
    medication: str = Field(min_length=1, max_length=100, description="The repeat medication to refill, by name.")


# --- the clinic ---------------------------------------------------------------------------------------


@dataclass
class DemoClinic:
    """One demo clinic's state.  ``latency_s`` delays every tool (to show timeouts in a demo)."""

    latency_s: float = 0.0
    patients: dict[str, DemoPatient] = field(default_factory=lambda: {p.patient_id: p for p in copy.deepcopy(DEMO_PATIENTS)})
    free_slots: dict[str, list[str]] = field(default_factory=lambda: copy.deepcopy(DEMO_CLINICIANS))
    appointments: list[DemoAppointment] = field(default_factory=lambda: list(copy.deepcopy(DEMO_APPOINTMENTS)))
    refills: list[dict[str, str]] = field(default_factory=list)
    identities: _demo.IdentityBook = field(default_factory=lambda: _demo.IdentityBook(BACKEND))

    async def _pause(self) -> None:
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)

    # -- tools --

    async def verify_identity(self, args: VerifyIdentityArgs, ctx: ToolContext) -> dict[str, Any]:
        await self._pause()
        self.identities.check_attempts(ctx.call_id)
        patient = self.patients.get(_demo.norm_id(args.patient_id))
        checks: list[bool] = []
        dob_ok = postcode_ok = False
        if _demo.given(args.date_of_birth):
            dob = _demo.parse_date(args.date_of_birth or "")
            dob_ok = patient is not None and dob is not None and dob.isoformat() == patient.date_of_birth
            checks.append(dob_ok)
        if _demo.given(args.postcode):
            postcode_ok = patient is not None and _demo.norm_postcode(args.postcode or "") == _demo.norm_postcode(patient.postcode)
            checks.append(postcode_ok)
        if not checks or (not dob_ok and all(checks)):
            # nothing to check, or a postcode alone: not enough for any level (not a failed attempt)
            return {**self.identities.record(ctx.call_id, None, "none", failed=False), "needed": "date_of_birth (and postcode)"}
        if patient is None or not all(checks):
            return self.identities.record(ctx.call_id, None, "none", failed=True)
        level = "strong" if postcode_ok else "basic"
        return self.identities.record(ctx.call_id, patient.patient_id, level, failed=False)

    async def get_appointments(self, args: GetAppointmentsArgs, ctx: ToolContext) -> dict[str, Any]:
        await self._pause()
        patient = self._patient(ctx, args.patient_id)
        mine = sorted((a for a in self.appointments if a.patient_id == patient.patient_id), key=lambda a: a.slot)
        return {
            "appointments": [{"appointment_id": a.appointment_id, "clinician": a.clinician, "slot": a.slot} for a in mine],
            **_demo.label(BACKEND),
        }

    async def book_appointment(self, args: BookAppointmentArgs, ctx: ToolContext) -> dict[str, Any]:
        await self._pause()
        patient = self._patient(ctx, args.patient_id)
        clinician = next((c for c in self.free_slots if c.casefold() == " ".join(args.clinician.split()).casefold()), None)
        if clinician is None:
            _demo.fail(BACKEND, "clinician_not_found", "No clinician by that name.", clinicians=sorted(self.free_slots))
        slot = args.slot.strip()
        if slot not in self.free_slots[clinician]:
            _demo.fail(
                BACKEND, "slot_unavailable", "That slot is not free for this clinician.", available_slots=list(self.free_slots[clinician])
            )
        self.free_slots[clinician].remove(slot)
        appt = DemoAppointment(f"DEMO-APPT-{len(self.appointments) + 1:04d}", patient.patient_id, clinician, slot)
        self.appointments.append(appt)
        return {
            "booked": True,
            "appointment_id": appt.appointment_id,
            "clinician": clinician,
            "slot": slot,
            **_demo.label(BACKEND),
        }

    async def get_test_results(self, args: GetTestResultsArgs, ctx: ToolContext) -> dict[str, Any]:
        await self._pause()
        patient = self._patient(ctx, args.patient_id)
        key = args.test.strip().casefold()
        result = patient.test_results.get(key)
        if result is None:
            _demo.fail(BACKEND, "test_not_found", "No result of that test is on the patient's record.", tests=sorted(patient.test_results))
        return {"test": key, **result, **_demo.label(BACKEND)}

    async def request_refill(self, args: RequestRefillArgs, ctx: ToolContext) -> dict[str, Any]:
        await self._pause()
        patient = self._patient(ctx, args.patient_id)
        wanted = " ".join(args.medication.split()).casefold()
        match = next((m for m in patient.repeat_medications if m.casefold() == wanted or m.casefold().split()[0] == wanted), None)
        if match is None:
            _demo.fail(BACKEND, "not_on_repeat_list", "That medication is not on the patient's repeat list; a clinician must review it.")
        refill_id = f"DEMO-RX-{len(self.refills) + 1:04d}"
        self.refills.append({"refill_id": refill_id, "patient_id": patient.patient_id, "medication": match})
        return {"refill_id": refill_id, "status": "requested", "medication": match, **_demo.label(BACKEND)}

    def _patient(self, ctx: ToolContext, patient_id: str) -> DemoPatient:
        verified = self.identities.require(ctx.call_id)
        if _demo.norm_id(patient_id) != verified:
            _demo.fail(BACKEND, "patient_mismatch", "Records are only available for the patient verified on this call.")
        return self.patients[verified]


def demo_clinic_registry(clinic: DemoClinic | None = None) -> ToolRegistry:
    """The DEMO clinic's tools, bound to ``clinic`` (a fresh one when None).  Demo wiring only."""
    clinic = clinic if clinic is not None else DemoClinic()
    note = " (DEMO clinic: fake data, not a real clinic)"
    return ToolRegistry(
        [
            Tool(
                "verify_identity",
                "Check the patient's identity answers; returns verified and the new verification_level "
                "(none, basic or strong)." + note,
                VerifyIdentityArgs,
                clinic.verify_identity,
                verifies_identity=True,
            ),
            Tool("get_appointments", "The verified patient's booked appointments." + note, GetAppointmentsArgs, clinic.get_appointments),
            Tool("book_appointment", "Book a free slot with a clinician." + note, BookAppointmentArgs, clinic.book_appointment),
            Tool("get_test_results", "The status of one of the patient's test results." + note, GetTestResultsArgs, clinic.get_test_results),
            Tool(
                "request_refill",
                "Request a refill of a repeat medication." + note,
                RequestRefillArgs,
                clinic.request_refill,
                regulated=True,
            ),
        ]
    )
