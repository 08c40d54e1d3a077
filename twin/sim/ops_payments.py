"""Payments at the exit barrier, wired into the SimPy model (``operations.payments``).

Every car that leaves a priced spot is settled by the production exit policy,
:class:`twin.core.payments.ExitPaymentPolicy`, with conditions drawn from the scenario's
``payments:`` settings. The policy never traps a car: whatever happens, the barrier opens, and
the money goes to the ledger as collected, pending in the terminal's offline batch, invoiced or
(past the write-off horizon) written off. What the car does feel is time: the round trips,
timeouts and back-offs of its payment are returned to the model as extra seconds at the exit
barrier, so exit-lane queues grow when the processor is slow or the network is down.

Choices the twin has to make, and why
-------------------------------------
* **Plates.** A plate stands for a customer (a car and its card). Without ``plate_pool`` every
  driver is a new customer (``<stream>#<driver>``), so a plate can never collect two strikes.
  With ``plate_pool: N`` each driver of a demand stream is one of ``N`` regulars of that stream
  (``<stream>#<0..N-1>``, drawn uniformly): the same card comes back, strikes add up and the
  blocklist can fill. Two drivers of one plate may be parked at the same time; the twin lets
  them (a plate is an account here, not a single vehicle).
* **Network.** One network serves every exit terminal of every lot. An exit is settled at the
  moment the car leaves its spot, and all its attempts see the network as it is then (the
  model does not tell a component when the exit barrier starts serving the car).
* **Offline batch.** When an outage ends the batch is forwarded at once; a payment stored
  after a timeout while the network was up is forwarded ``offline_forward_minutes`` later. A
  forwarded payment the processor never saw is decided with the card of the driver's last
  attempt (same decline and limit draws); one the processor had already decided is replayed.
  Batches still waiting at the horizon are reported as pending.
* **Lost tickets.** With ``lost_ticket_probability`` a driver has lost the ticket of a stay the
  tariff priced. If the entry camera read the plate (``plate_read_probability``) the stay is
  charged as priced; otherwise ``lost_ticket_fee``, or the lot's daily maximum, or (a tariff
  without one) the price of a 24-hour stay. The charge replaces ``session.amount_cents``, so
  the model's revenue is what was billed. A stay another component made free (a permit) has
  no ticket to lose.
* **Write-off** is applied once, at the horizon: open invoices at least ``write_off_days`` old
  are written off (shorter runs write off nothing). Invoices are never paid in the twin.

Figures (``payments.<name>`` in the metrics and ``summary.json``) count exits after the
warm-up, like the model's ``revenue``, so ``payments.revenue_expected`` equals ``revenue``;
``blocklisted_plates`` is the blocklist at the horizon. Money is in currency units.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from twin.core.payments import (
    Condition,
    ExitDecision,
    ExitOutcome,
    ExitPaymentPolicy,
    OfflinePayment,
)
from twin.sim.components import Component, ModelContext, register

if TYPE_CHECKING:
    from twin.core.lot import Session
    from twin.scenario.model import Scenario
    from twin.scenario.payments import PaymentsSpec

DAY_S = 86_400.0

#: Outcome codes of the per-exit record (index into this tuple).
OUTCOMES: tuple[ExitOutcome, ...] = tuple(ExitOutcome)
_CODE = {o: k for k, o in enumerate(OUTCOMES)}


@register("payments")
class PaymentsComponent(Component):
    """Settles every priced exit through the core exit policy; see the module docstring."""

    name = "payments"

    def __init__(self, spec: PaymentsSpec, scenario: Scenario) -> None:
        self.spec = spec
        self.scenario = scenario
        self.attempts = spec.retry.max_attempts

    # ------------------------------------------------------------------ set-up

    def start(self, ctx: ModelContext) -> None:
        """Build the policy and draw everything random for the whole run in bulk."""
        super().start(ctx)
        spec, d = self.spec, ctx.drivers
        n = len(d)
        self.policy = ExitPaymentPolicy(
            spec.processor(), pricing=self._plate_read_price, config=spec.policy_config()
        )
        outages = spec.sample_outages(ctx.streams.get("payments/outages"), ctx.horizon)
        self._down_start = [a for a, _ in outages]
        self._down_end = [b for _, b in outages]
        for end in self._down_end:
            if end < ctx.horizon:
                ctx.call_at(end, self._network_back)
        # request j of driver i is draw i * attempts + j
        self.draws = spec.sample_condition_draws(
            ctx.streams.get("payments/attempts"), n * self.attempts
        )
        draws = self.draws
        self._clean = (
            ~draws.declined
            & (draws.limit_cents < 0)
            & ~draws.lost
            & (draws.latency_s <= spec.retry.timeout_s)
        ).tolist()
        tickets = ctx.streams.get("payments/tickets")
        self._lost = tickets.random(n) < spec.lost_ticket_probability
        self._read = tickets.random(n) < spec.plate_read_probability
        self._stream = d.stream
        self._stream_names = [s.name for s in ctx.scenario.demand]
        if spec.plate_pool is not None:
            pool = ctx.streams.get("payments/plates")
            self._plate_no = pool.integers(0, spec.plate_pool, size=n)
        else:
            self._plate_no = np.arange(n)
        self._fees = [self._lost_ticket_fee(lot) for lot in ctx.lots]
        self._forward_at: float | None = None  # next forwarding of the offline batch
        self._lot_now = 0
        self._session_now: Session | None = None
        # one row per settled exit (plain lists: O(1) appends on the hot path)
        self._rows: list[tuple[int, int, float, int, int, float, int, int]] = []
        self._blocklisted_exits: list[float] = []  # exit times of plates already blocklisted
        self._settlements = 0

    def _lost_ticket_fee(self, lot: object) -> int | None:
        """Cents for a lost ticket without a plate read at ``lot`` (None: no tariff)."""
        tariff = getattr(lot, "tariff", None)
        if tariff is None:
            return None
        if self.spec.lost_ticket_fee is not None:
            return round(self.spec.lost_ticket_fee * 100)
        cap = tariff.daily_max_cents
        if cap is None:
            cap = tariff.default.daily_max_cents
        return cap  # None: priced per exit as a 24 h stay

    # ------------------------------------------------------------------ per car

    def plate(self, i: int) -> str:
        """Driver ``i``'s plate: its demand stream and its number in that stream's pool."""
        return f"{self._stream_names[self._stream[i]]}#{self._plate_no[i]}"

    def network_up(self, t: float) -> bool:
        """Is the terminals' network up at ``t``? O(log outages)."""
        j = bisect_right(self._down_start, t) - 1
        return j < 0 or t >= self._down_end[j]

    def on_leave(self, i: int, k: int, session: Session, t: float) -> float:
        """Settle the stay; the barrier always opens. Returns the payment time in seconds."""
        amount = session.amount_cents
        if amount is None:  # the lot has no tariff: nothing to pay
            return 0.0
        policy = self.policy
        plate = self.plate(i)
        if policy.requires_prepay(plate):  # would have had to prepay: counted, let in
            self._blocklisted_exits.append(t)
        up = self.network_up(t)
        base = i * self.attempts
        condition, clean = self.draws.condition, self._clean
        conds = []
        for j in range(base, base + self.attempts):
            conds.append(condition(j, up))
            if up and clean[j]:  # approved for sure: the policy sends no further request
                break
        ref = str(i)
        if self._lost[i] and amount == self.ctx.lots[k].price(session, t):
            # a ticketed stay (no other component changed its price) whose ticket is lost
            if self._read[i]:
                policy.record_entry(plate, session.entry_t)
            fee = self._fees[k]
            policy.lost_ticket_cents = (
                fee if fee is not None else self.ctx.lots[k].tariff.price(t, t + DAY_S)
            )
            self._lot_now, self._session_now = k, session
            decision = policy.settle_lost_ticket(ref, plate, t, conds)
            self._session_now = None
            session.amount_cents = decision.amount_cents
        else:
            decision = policy.settle(ref, plate, amount, t, conds)
        self._record(i, k, decision)
        if decision.outcome is ExitOutcome.OFFLINE and up:
            self._schedule_forward(t + self.spec.offline_forward_minutes * 60.0)
        return decision.latency_s

    def _record(self, i: int, k: int, dec: ExitDecision) -> None:
        lost = 0 if dec.basis == "ticket" else (1 if dec.basis == "daily_max" else 2)
        self._rows.append(
            (i, k, dec.t, _CODE[dec.outcome], dec.attempts, dec.latency_s, dec.declines, lost)
        )

    def _plate_read_price(self, entry_s: float, exit_s: float) -> int:
        """A lost ticket with an entry read pays the actual stay, priced as the lot prices it."""
        session = self._session_now
        if session is None:  # only called from settle_lost_ticket, inside on_leave
            raise RuntimeError("plate-read pricing outside an exit")
        return self.ctx.lots[self._lot_now].price(session, exit_s)

    # ------------------------------------------------------------------ offline batch

    def _schedule_forward(self, t: float) -> None:
        if t >= self.ctx.horizon or (self._forward_at is not None and self._forward_at <= t):
            return
        self._forward_at = t
        self.ctx.call_at(t, self._forward)

    def _forward(self, t: float) -> None:
        if self._forward_at != t:  # superseded by an earlier forwarding
            return
        self._forward_at = None
        self._network_back(t)

    def _network_back(self, t: float) -> None:
        """Forward the offline batch (if the network is up; an outage's end forwards it)."""
        if not self.policy.offline_queue or not self.network_up(t):
            return
        self._settlements += 1
        self.policy.settle_offline(t, self._replay_condition)

    def _replay_condition(self, item: OfflinePayment) -> Condition:
        """The card of the driver's last attempt, now reached over a working network."""
        j = int(item.ref) * self.attempts + self.attempts - 1
        c = self.draws.condition(j, True)
        return Condition(declined=c.declined, limit_cents=c.limit_cents)

    # ------------------------------------------------------------------ results

    def finish(self, t: float) -> dict[str, float]:
        """Write off overdue invoices, then the figures of exits after the warm-up."""
        self.policy.write_off_overdue(t)
        warm = self.scenario.warmup_s
        rows = np.array(self._rows, dtype=float).reshape(-1, 8)
        after = rows[:, 2] >= warm
        rows = rows[after]
        refs = {str(int(i)) for i in rows[:, 0]}
        money = {"expected": 0, "collected": 0, "invoiced": 0, "written_off": 0, "pending": 0}
        for bill in self.policy.ledger.bills():
            if bill.ref in refs:
                money["expected"] += bill.expected_cents
                money["collected"] += bill.collected_cents
                money["invoiced"] += bill.invoiced_cents
                money["written_off"] += bill.written_off_cents
                money["pending"] += bill.pending_cents
        reasons: dict[str, int] = {}
        for inv in self.policy.ledger.invoices():
            if inv.ref in refs:
                reasons[inv.reason] = reasons.get(inv.reason, 0) + 1
        code = rows[:, 3]
        paying = code != _CODE[ExitOutcome.FREE]
        latency = rows[paying, 5]
        expected = money["expected"]
        return {
            "exits": float(len(rows)),
            "revenue_expected": expected / 100.0,
            "revenue_collected": money["collected"] / 100.0,
            "revenue_invoiced": money["invoiced"] / 100.0,
            "revenue_written_off": money["written_off"] / 100.0,
            "revenue_pending_offline": money["pending"] / 100.0,
            "collected_pct": 100.0 * money["collected"] / expected if expected else math.nan,
            "declines": float(rows[:, 6].sum()),
            "declined_exits": float((code == _CODE[ExitOutcome.INVOICED]).sum()),
            "offline_payments": float((code == _CODE[ExitOutcome.OFFLINE]).sum()),
            "offline_declined": float(reasons.get("offline_declined", 0)),
            "partial_payments": float(
                reasons.get("partial", 0) + reasons.get("offline_partial", 0)
            ),
            "lost_tickets": float((rows[:, 7] > 0).sum()),
            "lost_tickets_plate_read": float((rows[:, 7] == 2).sum()),
            "blocklisted_plates": float(len(self.policy.blocklist)),
            "blocklisted_exits": float(sum(1 for x in self._blocklisted_exits if x >= warm)),
            "latency_s.mean": float(latency.mean()) if len(latency) else 0.0,
            "latency_s.p95": float(np.percentile(latency, 95)) if len(latency) else 0.0,
        }

    def frames(self) -> dict[str, pd.DataFrame]:
        """``bills``: the ledger, one row per settled exit, with what happened at the barrier."""
        rows = pd.DataFrame(
            self._rows,
            columns=[
                "driver", "lot", "exit_s", "outcome", "attempts", "latency_s", "declines", "lost",
            ],
        )  # fmt: skip
        lot_names = [spec.name for spec in self.scenario.lot_specs]
        rows["lot"] = pd.Categorical.from_codes(rows["lot"].to_numpy(), categories=lot_names)
        rows["outcome"] = pd.Categorical.from_codes(
            rows["outcome"].to_numpy(), categories=[o.value for o in OUTCOMES]
        )
        rows = rows.drop(columns=["exit_s", "lost"])
        # column by column from the bills (dataclasses.asdict per bill costs seconds per run)
        bills = self.policy.ledger.bills()
        cols: dict[str, list] = {
            name: [getattr(b, name) for b in bills]
            for name in (
                "ref", "plate", "t", "basis", "expected_cents", "captured_cents",
                "invoice_paid_cents", "pending_cents", "invoiced_cents", "written_off_cents",
            )
        }  # fmt: skip
        cols["collected_cents"] = [b.collected_cents for b in bills]
        cols["payment_ids"] = [";".join(b.payment_ids) for b in bills]
        cols["invoice_ids"] = [";".join(b.invoice_ids) for b in bills]
        frame = pd.DataFrame(cols).rename(columns={"t": "exit_s"})
        return {"bills": pd.concat([rows, frame], axis=1)}
