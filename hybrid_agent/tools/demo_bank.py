"""DEMO BANK: an in-memory, fake retail bank for demos and tests.  Not a real bank, not real money.

It backs the ``retail-banking`` policy pack's tools (``verify_identity``, ``get_balance``,
``transfer_funds``, ``block_card``) with the same argument names, over a small fixed set of
obviously fake customers (ids ``DEMO-CUST-…``, postcodes in the unused ``ZZ99`` district).  Every
output, success or error, carries ``"demo": true`` and a ``backend`` label saying so.

The bank enforces its *own* rules (an account must exist and belong to the caller verified
on this call, a transfer needs the funds), as any backend would.  Whether a call is *allowed*
at all (verification level per tool, transfer limits, confirmation) is the policy gate's
decision, taken before the tool runs; the bank does not repeat it.

Verification (per call, keyed by ``ToolContext.call_id``): the right ``passcode_digits`` gives
``strong``; the right ``date_of_birth`` and ``postcode`` give ``basic``; any answer given wrong
gives ``none`` (and counts as a failed attempt; three per call, then the bank refuses).  The
level returned is the level the bank honours afterwards, so the bank and the policy context
agree.

State (balances, cards, who is verified) belongs to one :class:`DemoBank` instance:
``demo_bank_registry(DemoBank())`` per test or per demo process.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hybrid_agent.tools import _demo
from hybrid_agent.tools.registry import Tool, ToolContext, ToolRegistry

BACKEND = "DEMO bank"
HOME_CURRENCY = "GBP"
_CENT = Decimal("0.01")


@dataclass
class DemoAccount:
    account_id: str
    owner: str
    kind: str
    balance: Decimal
    currency: str = HOME_CURRENCY


@dataclass
class DemoCard:
    last4: str
    owner: str
    status: str = "active"
    block_reason: str | None = None


@dataclass
class DemoCustomer:
    customer_id: str
    name: str
    date_of_birth: str
    postcode: str
    passcode: str


@dataclass
class DemoTransfer:
    transfer_id: str
    from_account: str
    to_account: str
    amount: Decimal
    currency: str
    reference: str


#: the fixed demo data set: fake people, fake ids, fake postcodes (ZZ99 is not a real district)
DEMO_CUSTOMERS: tuple[DemoCustomer, ...] = (
    DemoCustomer("DEMO-CUST-0001", "Alex Example", "1980-03-03", "ZZ99 1AA", "246810"),
    DemoCustomer("DEMO-CUST-0002", "Sam Sample", "1975-11-30", "ZZ99 2BB", "135791"),
)
DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("DEMO-ACC-0001-CUR", "DEMO-CUST-0001", "current", Decimal("1234.56")),
    DemoAccount("DEMO-ACC-0001-SAV", "DEMO-CUST-0001", "savings", Decimal("9870.00")),
    DemoAccount("DEMO-ACC-0002-CUR", "DEMO-CUST-0002", "current", Decimal("250.00")),
)
DEMO_CARDS: tuple[DemoCard, ...] = (
    DemoCard("4242", "DEMO-CUST-0001"),
    DemoCard("1881", "DEMO-CUST-0002"),
)


# --- argument models (names exactly as in policies/retail-banking/pack.yaml) -------------------------

_ARGS = ConfigDict(extra="forbid", strict=True)  # strict: "500" is not an amount (the policy would fail closed on it)


class VerifyIdentityArgs(BaseModel):
    model_config = _ARGS

    customer_id: str = Field(min_length=1, max_length=64, description="The customer number the caller gives.")
    date_of_birth: str | None = Field(None, max_length=64, description="Date of birth, ISO format (YYYY-MM-DD) if possible.")
    postcode: str | None = Field(None, max_length=16, description="The postcode of the caller's home address.")
    passcode_digits: str | None = Field(
        None, max_length=16, description="The caller's telephone passcode digits (entered on the keypad)."
    )


class GetBalanceArgs(BaseModel):
    model_config = _ARGS

    account_id: str = Field(min_length=1, max_length=64, description="One of the verified caller's account ids.")


class TransferFundsArgs(BaseModel):
    model_config = _ARGS

    from_account: str = Field(min_length=1, max_length=64, description="The caller's own account to pay from.")
    to_account: str = Field(min_length=1, max_length=64, description="The account to pay to.")
    amount: float = Field(gt=0, allow_inf_nan=False, description="The amount in pounds, at most two decimal places.")
    currency: str = Field(HOME_CURRENCY, min_length=3, max_length=3, description="ISO currency code; only GBP is supported.")
    reference: str = Field("", max_length=140, description="A payment reference for the payee's statement.")


class TakePaymentArgs(BaseModel):
    model_config = _ARGS

    amount: float = Field(gt=0, allow_inf_nan=False, description="The amount to pay in pounds, at most two decimal places.")
    currency: str = Field(HOME_CURRENCY, min_length=3, max_length=3, description="ISO currency code; only GBP is supported.")
    reference: str = Field("", max_length=140, description="What the payment is for.")
    card_number: str = Field(pattern=r"^\d{13,19}$", description="Entered by the caller on the keypad.")
    security_code: str = Field(pattern=r"^\d{3,4}$", description="Entered by the caller on the keypad.")


class BlockCardArgs(BaseModel):
    model_config = _ARGS

    card_last4: str = Field(pattern=r"^\d{4}$", description="The last four digits of the card (never the full number).")
    reason: str = Field(min_length=1, max_length=200, description="Why: lost, stolen, damaged or suspected fraud.")


# --- the bank -----------------------------------------------------------------------------------------


@dataclass
class DemoBank:
    """One demo bank's state.  ``latency_s`` delays every tool (to show timeouts in a demo)."""

    latency_s: float = 0.0
    customers: dict[str, DemoCustomer] = field(default_factory=lambda: {c.customer_id: c for c in copy.deepcopy(DEMO_CUSTOMERS)})
    accounts: dict[str, DemoAccount] = field(default_factory=lambda: {a.account_id: a for a in copy.deepcopy(DEMO_ACCOUNTS)})
    cards: dict[str, DemoCard] = field(default_factory=lambda: {c.last4: c for c in copy.deepcopy(DEMO_CARDS)})
    transfers: list[DemoTransfer] = field(default_factory=list)
    payments: list[tuple[Decimal, str]] = field(default_factory=list)  # (amount, card last four): never the number
    identities: _demo.IdentityBook = field(default_factory=lambda: _demo.IdentityBook(BACKEND))

    def balance(self, account_id: str) -> Decimal:
        return self.accounts[_demo.norm_id(account_id)].balance

    async def _pause(self) -> None:
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)

    # -- tools --

    async def verify_identity(self, args: VerifyIdentityArgs, ctx: ToolContext) -> dict[str, Any]:
        await self._pause()
        self.identities.check_attempts(ctx.call_id)
        customer = self.customers.get(_demo.norm_id(args.customer_id))
        checks: list[bool] = []
        dob_ok = postcode_ok = passcode_ok = False
        if _demo.given(args.date_of_birth):
            dob = _demo.parse_date(args.date_of_birth or "")
            dob_ok = customer is not None and dob is not None and dob.isoformat() == customer.date_of_birth
            checks.append(dob_ok)
        if _demo.given(args.postcode):
            postcode_ok = customer is not None and _demo.norm_postcode(args.postcode or "") == _demo.norm_postcode(customer.postcode)
            checks.append(postcode_ok)
        if _demo.given(args.passcode_digits):
            passcode_ok = customer is not None and _demo.norm_digits(args.passcode_digits or "") == customer.passcode
            checks.append(passcode_ok)
        needed = "date_of_birth and postcode, or passcode_digits"
        if not checks:
            return {**self.identities.record(ctx.call_id, None, "none", failed=False), "needed": needed}
        if customer is None or not all(checks):
            # an unknown customer and a wrong answer look the same (no customer enumeration)
            return self.identities.record(ctx.call_id, None, "none", failed=True)
        if passcode_ok:
            return self.identities.record(ctx.call_id, customer.customer_id, "strong", failed=False)
        if dob_ok and postcode_ok:
            return self.identities.record(ctx.call_id, customer.customer_id, "basic", failed=False)
        return {**self.identities.record(ctx.call_id, None, "none", failed=False), "needed": needed}

    async def get_balance(self, args: GetBalanceArgs, ctx: ToolContext) -> dict[str, Any]:
        await self._pause()
        account = self._own_account(ctx, args.account_id)
        return {
            "account_id": account.account_id,
            "account_type": account.kind,
            "balance": float(account.balance),
            "currency": account.currency,
            **_demo.label(BACKEND),
        }

    async def transfer_funds(self, args: TransferFundsArgs, ctx: ToolContext) -> dict[str, Any]:
        await self._pause()
        source = self._own_account(ctx, args.from_account)
        target = self.accounts.get(_demo.norm_id(args.to_account))
        if target is None:
            _demo.fail(BACKEND, "payee_not_found", "The destination account is not known to the bank.")
        if target.account_id == source.account_id:
            _demo.fail(BACKEND, "same_account", "The source and destination accounts are the same.")
        currency = args.currency.strip().upper()
        if currency != source.currency or currency != target.currency:
            _demo.fail(BACKEND, "unsupported_currency", f"Only {HOME_CURRENCY} transfers are supported.")
        amount = _money(args.amount)
        if amount is None:
            _demo.fail(BACKEND, "invalid_amount", "The amount must be positive with at most two decimal places.")
        if amount > source.balance:
            _demo.fail(BACKEND, "insufficient_funds", "The source account does not have enough funds for this transfer.")
        # no await between the checks and the update: the transfer is atomic on the event loop
        source.balance -= amount
        target.balance += amount
        transfer = DemoTransfer(
            f"DEMO-TX-{len(self.transfers) + 1:06d}", source.account_id, target.account_id, amount, currency, args.reference
        )
        self.transfers.append(transfer)
        return {
            "transfer_id": transfer.transfer_id,
            "status": "completed",
            "from_account": source.account_id,
            "to_account": target.account_id,
            "amount": float(amount),
            "currency": currency,
            "new_balance": float(source.balance),
            **_demo.label(BACKEND),
        }

    async def block_card(self, args: BlockCardArgs, ctx: ToolContext) -> dict[str, Any]:
        await self._pause()
        owner = self.identities.require(ctx.call_id)
        card = self.cards.get(args.card_last4)
        if card is None or card.owner != owner:
            _demo.fail(BACKEND, "card_not_found", "No card ending in those digits belongs to the verified customer.")
        already = card.status == "blocked"
        card.status = "blocked"
        card.block_reason = card.block_reason or args.reason.strip()
        return {"blocked": True, "already_blocked": already, "card_last4": card.last4, "status": "blocked", **_demo.label(BACKEND)}

    async def take_payment(self, args: TakePaymentArgs, ctx: ToolContext) -> dict[str, Any]:
        """A card payment; the card's digits arrive from the keypad and only the last four leave."""
        await self._pause()
        self.identities.require(ctx.call_id)
        if not _demo.luhn(args.card_number):
            _demo.fail(BACKEND, "card_declined", "The card was declined.")
        amount = _money(args.amount)
        if amount is None or args.currency.strip().upper() != HOME_CURRENCY:
            _demo.fail(BACKEND, "invalid_amount", f"The amount must be positive {HOME_CURRENCY} with at most two decimal places.")
        self.payments.append((amount, args.card_number[-4:]))
        return {"payment_id": f"DEMO-PAY-{len(self.payments):06d}", "status": "approved", "amount": float(amount),
                "currency": HOME_CURRENCY, "card_last4": args.card_number[-4:], **_demo.label(BACKEND)}

    def _own_account(self, ctx: ToolContext, account_id: str) -> DemoAccount:
        owner = self.identities.require(ctx.call_id)
        account = self.accounts.get(_demo.norm_id(account_id))
        if account is None or account.owner != owner:
            _demo.fail(BACKEND, "account_not_found", "No account with that id belongs to the verified customer.")
        return account


def _money(amount: float) -> Decimal | None:
    """The amount as pence-exact Decimal, or None when it is not positive or has fractions of a penny."""
    try:
        value = Decimal(repr(amount))
    except InvalidOperation:
        return None
    if not value.is_finite() or value <= 0 or value != value.quantize(_CENT, rounding=ROUND_HALF_EVEN):
        return None
    return value.quantize(_CENT)


def demo_bank_registry(bank: DemoBank | None = None) -> ToolRegistry:
    """The DEMO bank's tools, bound to ``bank`` (a fresh one when None).  Demo wiring only."""
    bank = bank if bank is not None else DemoBank()
    note = " (DEMO bank: fake data, not a real bank)"
    return ToolRegistry(
        [
            Tool(
                "verify_identity",
                "Check the caller's identity answers; returns verified and the new verification_level "
                "(none, basic or strong)." + note,
                VerifyIdentityArgs,
                bank.verify_identity,
                verifies_identity=True,
            ),
            Tool("get_balance", "Balance of one of the verified caller's accounts." + note, GetBalanceArgs, bank.get_balance),
            Tool(
                "transfer_funds",
                "Move money from one of the caller's accounts to another account." + note,
                TransferFundsArgs,
                bank.transfer_funds,
                regulated=True,
            ),
            Tool("block_card", "Block a lost or stolen card." + note, BlockCardArgs, bank.block_card, regulated=True),
            Tool(
                "take_payment",
                "Take a card payment; the caller enters the card number and security code on the keypad, "
                "you never ask for or hear them." + note,
                TakePaymentArgs,
                bank.take_payment,
                regulated=True,
                keypad={"card_number": "card", "security_code": "security_code"},
            ),
        ]
    )
