"""The card processor as the terminal sees it: authorize, capture, void, refund, idempotent.

A retried request with the same idempotency key replays the original result and never charges
twice; see :mod:`twin.core.payments` for the retry rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from twin.core.payments_base import (
    OK,
    Condition,
    IdempotencyConflict,
    InvalidPaymentRequest,
    Operation,
    Outcome,
    PaymentResult,
    Status,
    check_cents,
    check_text,
    check_time,
)

# --------------------------------------------------------------------------- processor


class AuthStatus(StrEnum):
    AUTHORIZED = "authorized"  # funds held, not yet captured
    CAPTURED = "captured"
    VOIDED = "voided"
    DECLINED = "declined"


@dataclass(slots=True)
class Authorization:
    id: str
    key: str
    account: str
    requested_cents: int
    amount_cents: int  # approved (0 if declined)
    t: float
    status: AuthStatus
    payment_id: str | None = None


@dataclass(slots=True)
class Payment:
    """A capture: money actually taken from the card."""

    id: str
    authorization_id: str
    account: str
    amount_cents: int
    t: float
    refunded_cents: int = 0


@dataclass(frozen=True, slots=True)
class Refund:
    id: str
    payment_id: str
    amount_cents: int
    t: float


class PaymentProcessor:
    """The card processor with idempotency keys, as the terminal sees it over the network.

    State changes only when a request reaches it (``cond.network_up``). Each key is bound to
    its first request (operation and payload) and that request's result; the same request
    again returns that result with ``replayed=True``, a different one raises
    :class:`IdempotencyConflict`. Malformed requests raise :class:`InvalidPaymentRequest`
    and bind nothing, so they can be corrected and re-sent under the same key.

    ``timeout_s``: how long the terminal waits for an answer; a transport failure costs the
    terminal that long. ``partial_approvals``: whether issuers approve part of an amount above
    the card's limit (otherwise such authorizations are declined). One capture per
    authorization, at most the authorized amount; the rest of the hold is released.
    """

    def __init__(self, timeout_s: float = 15.0, partial_approvals: bool = True) -> None:
        if not check_time("timeout_s", timeout_s) > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.timeout_s = float(timeout_s)
        self.partial_approvals = partial_approvals
        self.authorizations: dict[str, Authorization] = {}
        self.payments: dict[str, Payment] = {}
        self.refunds: dict[str, Refund] = {}
        self._keys: dict[str, tuple[tuple, PaymentResult]] = {}
        self.requests_received = 0  # requests that reached the processor, replays included

    # ------------------------------------------------------------------ public API

    def authorize(
        self, idempotency_key: str, account: str, amount_cents: int, t: float, cond: Condition = OK
    ) -> PaymentResult:
        """Hold ``amount_cents`` on ``account``: approved, partially approved or declined."""
        check_text("account", account)
        check_cents("amount_cents", amount_cents, 1)

        def run() -> Outcome:
            amount = amount_cents
            reason = ""
            limit = cond.limit_cents
            if cond.declined:
                amount, reason = 0, "declined by issuer"
            elif limit is not None and amount_cents > limit:
                if limit > 0 and self.partial_approvals:
                    amount, reason = limit, f"card limit {limit} cents"
                else:
                    amount, reason = 0, "insufficient funds"
            auth_id = f"auth-{len(self.authorizations) + 1}"
            if amount == 0:
                status, auth_status = Status.DECLINED, AuthStatus.DECLINED
            elif amount < amount_cents:
                status, auth_status = Status.PARTIAL, AuthStatus.AUTHORIZED
            else:
                status, auth_status = Status.APPROVED, AuthStatus.AUTHORIZED
            self.authorizations[auth_id] = Authorization(
                auth_id, idempotency_key, account, amount_cents, amount, t, auth_status
            )
            return status, amount, auth_id, reason

        return self._call(
            Operation.AUTHORIZE, idempotency_key, (account, amount_cents), t, cond, run
        )

    def capture(
        self,
        idempotency_key: str,
        authorization_id: str,
        amount_cents: int,
        t: float,
        cond: Condition = OK,
    ) -> PaymentResult:
        """Take ``amount_cents`` (at most the authorized amount) of an open authorization."""
        check_cents("amount_cents", amount_cents, 1)

        def run() -> Outcome:
            auth = self._open_authorization(authorization_id, "capture")
            if amount_cents > auth.amount_cents:
                raise InvalidPaymentRequest(
                    f"capture of {amount_cents} cents exceeds the {auth.amount_cents} cents "
                    f"authorized on {authorization_id}"
                )
            pay_id = f"pay-{len(self.payments) + 1}"
            self.payments[pay_id] = Payment(pay_id, auth.id, auth.account, amount_cents, t)
            auth.status = AuthStatus.CAPTURED
            auth.payment_id = pay_id
            return Status.APPROVED, amount_cents, pay_id, ""

        return self._call(
            Operation.CAPTURE, idempotency_key, (authorization_id, amount_cents), t, cond, run
        )

    def void(
        self, idempotency_key: str, authorization_id: str, t: float, cond: Condition = OK
    ) -> PaymentResult:
        """Release an authorization that will not be captured (e.g. a cancelled reservation)."""

        def run() -> Outcome:
            auth = self._open_authorization(
                authorization_id, "void (refund a captured payment instead)"
            )
            auth.status = AuthStatus.VOIDED
            return Status.APPROVED, auth.amount_cents, auth.id, ""

        return self._call(Operation.VOID, idempotency_key, (authorization_id,), t, cond, run)

    def _open_authorization(self, authorization_id: str, action: str) -> Authorization:
        """The authorization, if it exists and is still open for ``action``; else refuse."""
        auth = self.authorizations.get(authorization_id)
        if auth is None:
            raise InvalidPaymentRequest(f"unknown authorization {authorization_id!r}")
        if auth.status is not AuthStatus.AUTHORIZED:
            raise InvalidPaymentRequest(
                f"authorization {authorization_id} is {auth.status.value}, cannot {action}"
            )
        return auth

    def refund(
        self,
        idempotency_key: str,
        payment_id: str,
        amount_cents: int,
        t: float,
        cond: Condition = OK,
    ) -> PaymentResult:
        """Give back part or all of a captured payment (never more than is left of it)."""
        check_cents("amount_cents", amount_cents, 1)

        def run() -> Outcome:
            pay = self.payments.get(payment_id)
            if pay is None:
                raise InvalidPaymentRequest(f"unknown payment {payment_id!r}")
            left = pay.amount_cents - pay.refunded_cents
            if amount_cents > left:
                raise InvalidPaymentRequest(
                    f"refund of {amount_cents} cents exceeds the {left} cents left on {payment_id}"
                )
            ref_id = f"ref-{len(self.refunds) + 1}"
            self.refunds[ref_id] = Refund(ref_id, payment_id, amount_cents, t)
            pay.refunded_cents += amount_cents
            return Status.APPROVED, amount_cents, ref_id, ""

        return self._call(
            Operation.REFUND, idempotency_key, (payment_id, amount_cents), t, cond, run
        )

    # ------------------------------------------------------------------ queries

    def captured_cents(self, account: str | None = None) -> int:
        """Money taken from cards (before refunds), for one account or all."""
        return sum(
            p.amount_cents
            for p in self.payments.values()
            if account is None or p.account == account
        )

    def refunded_cents(self) -> int:
        return sum(r.amount_cents for r in self.refunds.values())

    def open_authorizations(self) -> list[Authorization]:
        """Holds neither captured nor voided: money blocked on a card for nothing, if left over."""
        return [a for a in self.authorizations.values() if a.status is AuthStatus.AUTHORIZED]

    def result_for(self, idempotency_key: str) -> PaymentResult | None:
        """The stored result bound to a key (what a replay would return), if any."""
        stored = self._keys.get(idempotency_key)
        return None if stored is None else stored[1]

    # ------------------------------------------------------------------ internals

    def _call(
        self,
        op: Operation,
        key: str,
        payload: tuple,
        t: float,
        cond: Condition,
        run: Callable[[], Outcome],
    ) -> PaymentResult:
        check_text("idempotency_key", key)
        t = check_time("t", t)
        if not isinstance(cond, Condition):
            raise TypeError(f"cond must be a Condition, got {type(cond).__name__}")
        amount = payload[-1] if op is not Operation.VOID else 0
        if not cond.network_up:
            return PaymentResult(
                op,
                key,
                Status.UNAVAILABLE,
                amount,
                t=t,
                latency_s=self.timeout_s,
                reason="network down",
            )
        self.requests_received += 1
        fingerprint = (op, payload)
        stored = self._keys.get(key)
        if stored is not None:
            if stored[0] != fingerprint:
                raise IdempotencyConflict(
                    f"idempotency key {key!r} was used for {stored[0][0].value} {stored[0][1]}, "
                    f"not {op.value} {payload}"
                )
            result = replace(stored[1], replayed=True)
        else:
            status, approved, obj_id, reason = run()
            result = PaymentResult(op, key, status, amount, approved, obj_id, t, reason=reason)
            self._keys[key] = (fingerprint, result)
        if cond.response_lost or cond.latency_s > self.timeout_s:
            why = "response lost" if cond.response_lost else "processor slower than the timeout"
            return PaymentResult(
                op, key, Status.TIMEOUT, amount, t=t, latency_s=self.timeout_s, reason=why
            )
        return replace(result, latency_s=cond.latency_s)
