"""Escalation to a person on a phone call: Twilio's call update with ``<Dial>`` (off the audio path).

When a rule escalates a Twilio call and ``HYBRID_AGENT_TWILIO_TRANSFER_NUMBER`` is set, the bridge
lets the escalation utterance play out (the marks say when), then asks Twilio to redirect the
call: ``POST {api}/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`` with
``Twiml=<Response><Dial>number</Dial></Response>`` and HTTP basic auth (AccountSid, auth token),
Twilio's call-update REST shape.  Twilio then ends the media stream and dials the number.  One
transfer per call; its outcome goes to the audit (``call_transferred``), never the number.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

import httpx

log = logging.getLogger(__name__)

#: the most the transfer waits for the escalation utterance to finish playing
PLAYOUT_WAIT_S = 15.0
TIMEOUT_S = 10.0


def dial_twiml(number: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Dial>{escape(number)}</Dial></Response>'


class TwilioTransfer:
    """One call's transfer: ``start(call_sid, account_sid, quiet)`` once, the result to ``done(status)``."""

    def __init__(self, api_base: str, auth_token: str, number: str, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.api_base = api_base.rstrip("/")
        self._auth_token = auth_token
        self.number = number
        self._transport = transport
        self.task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:  # never the token
        return f"TwilioTransfer({self.api_base!r})"

    def start(self, call_sid: str, account_sid: str, quiet: Callable[[], bool], done: Callable[[str], Any]) -> bool:
        """Transfer once the caller heard what the bridge is saying (``quiet``); False when already started."""
        if self.task is not None:
            return False
        self.task = asyncio.create_task(self._run(call_sid, account_sid, quiet, done))
        return True

    async def _run(self, call_sid: str, account_sid: str, quiet: Callable[[], bool], done: Callable[[str], Any]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PLAYOUT_WAIT_S
        await asyncio.sleep(0.3)  # the utterance's response starts first
        while not quiet() and loop.time() < deadline:
            await asyncio.sleep(0.1)
        url = f"{self.api_base}/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json"
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT_S, transport=self._transport) as client:
                response = await client.post(url, data={"Twiml": dial_twiml(self.number)}, auth=(account_sid, self._auth_token))
            status = "transferred" if response.status_code < 300 else f"refused_{response.status_code}"
        except httpx.HTTPError as exc:
            status = f"failed_{type(exc).__name__}"
        log.info("call %s: transfer to a person: %s", call_sid, status)
        await done(status)
