"""Payments: processor idempotency, exit policy (never trap a car), offline batch, invoices,
blocklist, lost tickets, ledger identities, and the ``payments:`` scenario spec.

Times are core seconds; money is int cents. Every failure is injected as a
:class:`Condition`, so each test states exactly what the network and the card did.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scipy import stats

import twin.scenario.payments as payments_spec_module
from twin.core.payments import (
    OK,
    AuthStatus,
    Condition,
    ExitOutcome,
    ExitPaymentPolicy,
    IdempotencyConflict,
    InvalidPaymentRequest,
    InvoiceStatus,
    PaymentError,
    PaymentProcessor,
    PolicyConfig,
    RetryPolicy,
    Status,
)
from twin.core.pricing import RateTable, Tariff
from twin.scenario.payments import PaymentsSpec

H = 3_600.0
DAY = 86_400.0
DOWN = Condition(network_up=False)
LOST = Condition(response_lost=True)
DECLINE = Condition(declined=True)

conditions = st.builds(
    Condition,
    network_up=st.booleans(),
    latency_s=st.sampled_from([0.0, 1.5, 4.0, 30.0]),  # 30 s exceeds the 15 s default timeout
    declined=st.booleans(),
    limit_cents=st.none() | st.integers(0, 3_000),
    response_lost=st.booleans(),
)


def policy(**config) -> ExitPaymentPolicy:
    return ExitPaymentPolicy(PaymentProcessor(), config=PolicyConfig(**config))


# --------------------------------------------------------------------------- processor


def test_authorize_capture_refund_and_their_limits():
    p = PaymentProcessor()
    auth = p.authorize("k1", "card", 1_000, 0.0)
    assert (auth.status, auth.amount_cents, auth.id) == (Status.APPROVED, 1_000, "auth-1")
    with pytest.raises(InvalidPaymentRequest, match="exceeds the 1000 cents authorized"):
        p.capture("c1", auth.id, 1_001, 1.0)
    cap = p.capture("c1", auth.id, 800, 1.0)  # less than authorized: the rest is released
    assert (cap.status, cap.amount_cents) == (Status.APPROVED, 800)
    assert p.authorizations[auth.id].status is AuthStatus.CAPTURED
    with pytest.raises(InvalidPaymentRequest, match="is captured, cannot capture"):
        p.capture("c2", auth.id, 100, 2.0)
    with pytest.raises(InvalidPaymentRequest, match="cannot void"):
        p.void("v1", auth.id, 2.0)
    assert p.refund("r1", cap.id, 300, 3.0).amount_cents == 300
    with pytest.raises(InvalidPaymentRequest, match="exceeds the 500 cents left"):
        p.refund("r2", cap.id, 501, 3.0)
    assert p.refund("r2", cap.id, 500, 3.0).status is Status.APPROVED  # the corrected request
    assert (p.captured_cents(), p.refunded_cents()) == (800, 800)


def test_void_releases_a_hold_once():
    p = PaymentProcessor()
    auth = p.authorize("k", "card", 500, 0.0)
    assert p.void("v", auth.id, 1.0).status is Status.APPROVED
    assert p.void("v", auth.id, 2.0).replayed  # same key: the original answer, no error
    assert p.open_authorizations() == []
    with pytest.raises(InvalidPaymentRequest, match="is voided"):
        p.capture("c", auth.id, 500, 3.0)


def test_a_reused_key_with_another_payload_or_operation_is_rejected():
    p = PaymentProcessor()
    auth = p.authorize("k", "card", 500, 0.0)
    with pytest.raises(IdempotencyConflict, match="'k' was used for authorize"):
        p.authorize("k", "card", 600, 1.0)
    with pytest.raises(IdempotencyConflict):
        p.authorize("k", "other-card", 500, 1.0)
    with pytest.raises(IdempotencyConflict):
        p.capture("k", auth.id, 500, 1.0)
    assert len(p.authorizations) == 1


def test_a_lost_response_is_replayed_on_retry_not_charged_again():
    p = PaymentProcessor()
    first = p.authorize("k", "card", 500, 0.0, LOST)
    assert first.status is Status.TIMEOUT and first.id is None  # the terminal learnt nothing
    assert p.authorizations["auth-1"].status is AuthStatus.AUTHORIZED  # but the hold exists
    again = p.authorize("k", "card", 500, 5.0, Condition(latency_s=1.0))
    assert (again.status, again.id, again.replayed, again.latency_s) == (
        Status.APPROVED,
        "auth-1",
        True,
        1.0,
    )
    assert len(p.authorizations) == 1


def test_network_down_leaves_the_processor_untouched_and_costs_the_timeout():
    p = PaymentProcessor(timeout_s=12.0)
    res = p.authorize("k", "card", 500, 0.0, DOWN)
    assert (res.status, res.latency_s) == (Status.UNAVAILABLE, 12.0)
    assert p.authorizations == {} and p.requests_received == 0
    assert p.authorize("k", "card", 500, 1.0).status is Status.APPROVED
    assert p.authorize("k", "card", 500, 2.0).replayed  # the next one is a replay


def test_a_slow_processor_times_out_yet_acts():
    p = PaymentProcessor(timeout_s=10.0)
    res = p.authorize("k", "card", 500, 0.0, Condition(latency_s=11.0))
    assert (res.status, res.latency_s) == (Status.TIMEOUT, 10.0)
    assert len(p.authorizations) == 1


@pytest.mark.parametrize(
    ("limit", "partial_ok", "status", "approved"),
    [
        (300, True, Status.PARTIAL, 300),
        (300, False, Status.DECLINED, 0),
        (0, True, Status.DECLINED, 0),
        (500, True, Status.APPROVED, 500),
        (None, True, Status.APPROVED, 500),
    ],
)
def test_card_limit_gives_partial_approval_or_decline(limit, partial_ok, status, approved):
    p = PaymentProcessor(partial_approvals=partial_ok)
    res = p.authorize("k", "card", 500, 0.0, Condition(limit_cents=limit))
    assert (res.status, res.amount_cents) == (status, approved)


@settings(max_examples=150, deadline=None)
@given(st.lists(conditions, min_size=1, max_size=8))
def test_any_retry_sequence_with_one_key_authorizes_and_captures_once(conds):
    p = PaymentProcessor()
    answers = [p.authorize("exit-7/1", "card", 1_000, float(i), c) for i, c in enumerate(conds)]
    reached = [c for c in conds if c.network_up]
    assert len(p.authorizations) == (1 if reached else 0)
    decided = [a for a in answers if a.status.decided]
    # every answer the terminal received is the same decision, all but the first a replay
    assert len({(a.status, a.id, a.amount_cents) for a in decided}) <= 1
    if reached:
        # the decision was made by the first request that reached the processor
        first = reached[0]
        auth = p.authorizations["auth-1"]
        expected = 0 if first.declined else 1_000
        if not first.declined and first.limit_cents is not None and first.limit_cents < 1_000:
            expected = first.limit_cents
        assert auth.amount_cents == expected
        if auth.amount_cents:
            caps = [
                p.capture("exit-7/1/capture", auth.id, auth.amount_cents, 10.0 + i, c)
                for i, c in enumerate(conds)
            ]
            assert len(p.payments) == 1
            assert p.captured_cents() == auth.amount_cents
            assert {c.id for c in caps if c.status.decided} <= {"pay-1"}


# --------------------------------------------------------------------------- exit policy


def test_paid_exit_reports_latency_of_authorization_and_capture():
    pol = policy()
    d = pol.settle("s1", "AB-123", 650, 100.0, Condition(latency_s=1.5))
    assert (d.outcome, d.paid_cents, d.latency_s, d.attempts) == (ExitOutcome.PAID, 650, 3.0, 1)
    assert d.barrier_open and not d.flagged and d.invoice_id is None


def test_retries_add_timeouts_and_exponential_backoff_to_the_service_time():
    proc = PaymentProcessor(timeout_s=10.0)
    pol = ExitPaymentPolicy(
        proc, config=PolicyConfig(retry=RetryPolicy(max_attempts=3, backoff_s=1.0))
    )
    d = pol.settle("s1", "P", 500, 0.0, [DOWN, DOWN, Condition(latency_s=2.0)])
    # 10 (timeout) + 1 (back-off) + 10 + 2 (back-off doubled) + 2 (auth) + 2 (capture)
    assert d.latency_s == pytest.approx(27.0)
    assert (d.outcome, d.attempts) == (ExitOutcome.PAID, 3)
    assert proc.authorizations["auth-1"].t == pytest.approx(23.0)  # time is carried along


def test_a_decline_makes_the_driver_present_a_card_again_under_a_new_key():
    proc = PaymentProcessor()
    pol = ExitPaymentPolicy(proc)
    d = pol.settle("s1", "P", 500, 0.0, [DECLINE, DECLINE, OK])
    assert (d.outcome, d.declines, d.paid_cents) == (ExitOutcome.PAID, 2, 500)
    assert [a.key for a in proc.authorizations.values()] == ["s1/1", "s1/2", "s1/3"]
    assert pol.counts().declined_attempts == 2


def test_all_attempts_declined_opens_the_barrier_flags_and_invoices():
    pol = policy()
    d = pol.settle("s1", "P", 500, 0.0, [DECLINE] * 5)
    assert d.barrier_open and d.flagged
    assert (d.outcome, d.invoiced_cents, d.attempts) == (ExitOutcome.INVOICED, 500, 3)
    inv = pol.ledger.invoice(d.invoice_id)
    assert (inv.amount_cents, inv.reason, inv.plate) == (500, "declined", "P")
    assert pol.flags() == {"P": 1} and pol.strikes("P") == (0.0,)


def test_no_card_presented_still_opens_the_barrier():
    d = policy().settle("s1", "P", 500, 0.0, [])
    assert d.barrier_open and d.outcome is ExitOutcome.INVOICED and d.attempts == 0


@given(price=st.integers(1, 5_000), limit=st.integers(1, 5_000))
def test_partial_payment_plus_invoice_is_the_price(price, limit):
    pol = policy()
    d = pol.settle("s1", "P", price, 0.0, Condition(limit_cents=limit))
    assert d.paid_cents + d.invoiced_cents == price
    assert d.paid_cents == min(price, limit)
    if limit < price:
        assert d.outcome is ExitOutcome.PARTIAL
        assert pol.ledger.invoice(d.invoice_id).amount_cents == price - limit
        assert pol.counts().partial_payments == 1
    else:
        assert d.outcome is ExitOutcome.PAID and d.invoice_id is None


def test_settle_twice_for_one_session_charges_once():
    proc = PaymentProcessor()
    pol = ExitPaymentPolicy(proc)
    first = pol.settle("s1", "P", 500, 0.0)
    again = pol.settle("s1", "P", 500, 9.0)
    assert again.replayed and again.paid_cents == 500 and again.latency_s == 0.0
    assert proc.captured_cents() == 500 and pol.counts().exits == 1
    assert first.invoice_id == again.invoice_id
    with pytest.raises(PaymentError, match="already exited"):
        pol.settle("s1", "P", 700, 9.0)


# --------------------------------------------------------------------------- offline batch


def test_offline_batch_settles_exactly_once():
    proc = PaymentProcessor()
    pol = ExitPaymentPolicy(proc)
    # s1: the first request reached the processor (approved) but its answer was lost, then
    # the network went down; s2 and s3 never reached it
    d1 = pol.settle("s1", "A", 500, 0.0, [LOST, DOWN, DOWN])
    d2 = pol.settle("s2", "B", 700, 10.0, [DOWN] * 3)
    d3 = pol.settle("s3", "C", 900, 20.0, [DOWN] * 3)
    assert {d.outcome for d in (d1, d2, d3)} == {ExitOutcome.OFFLINE}
    assert all(d.barrier_open and not d.flagged for d in (d1, d2, d3))
    assert pol.ledger.totals().pending_offline_cents == 2_100 and proc.payments == {}

    still_down = pol.settle_offline(100.0, DOWN)
    assert (still_down.settled, still_down.still_pending) == (0, 3)

    # back up: C's card is declined at settlement
    report = pol.settle_offline(200.0, lambda item: DECLINE if item.plate == "C" else OK)
    assert (report.settled, report.collected_cents, report.invoiced_cents) == (3, 1_200, 900)
    assert report.still_pending == 0 and pol.offline_queue == ()
    assert len(proc.authorizations) == 3  # s1's lost authorization was replayed, not repeated
    assert proc.captured_cents() == 1_200 and len(proc.payments) == 2

    assert pol.settle_offline(300.0) == type(report)(300.0)  # nothing left: a no-op
    assert proc.captured_cents() == 1_200
    inv = pol.ledger.invoices()[0]
    assert (inv.plate, inv.reason, inv.issued_t) == ("C", "offline_declined", 200.0)
    assert pol.strikes("C") == (20.0,)  # the strike dates from the exit, not the settlement
    totals = pol.ledger.totals()
    assert (totals.pending_offline_cents, totals.collected_cents, totals.invoiced_cents) == (
        0,
        1_200,
        900,
    )
    c = pol.counts()
    assert (c.offline_batched, c.offline_settled, c.offline_declined) == (3, 3, 1)


def test_offline_settlement_interrupted_by_a_lost_answer_resumes_without_double_charge():
    proc = PaymentProcessor()
    pol = ExitPaymentPolicy(proc)
    pol.settle("s1", "A", 500, 0.0, [DOWN])
    assert pol.settle_offline(50.0, LOST).still_pending == 1  # processor approved, we never heard
    assert pol.settle_offline(60.0).settled == 1
    assert proc.captured_cents() == 500 and len(proc.authorizations) == 1
    assert proc.open_authorizations() == []


def test_offline_partial_settlement_captures_part_and_invoices_the_rest():
    pol = policy()
    pol.settle("s1", "A", 1_000, 0.0, [DOWN])
    report = pol.settle_offline(10.0, Condition(limit_cents=400))
    assert (report.collected_cents, report.invoiced_cents, report.partial) == (400, 600, 1)
    assert pol.ledger.invoices()[0].reason == "offline_partial"


# --------------------------------------------------------------------------- never trap a car


@st.composite
def exit_days(draw):
    """Exits of a few plates with arbitrary attempt conditions, plus settlements, invoice
    payments and write-offs in between."""
    events = []
    t = 0.0
    for i in range(draw(st.integers(1, 12))):
        t += draw(st.sampled_from([60.0, 3_600.0, 5 * DAY]))
        kind = draw(st.sampled_from(["exit", "exit", "exit", "settle", "pay", "write_off"]))
        if kind == "exit":
            plate = draw(st.sampled_from(["A", "B", "C"]))
            amount = draw(st.integers(0, 3_000))
            attempts = draw(st.lists(conditions, max_size=4))
            events.append(("exit", t, f"s{i}", plate, amount, attempts))
        elif kind == "settle":
            events.append(("settle", t, draw(conditions)))
        else:
            events.append((kind, t))
    return events


@settings(max_examples=120, deadline=None)
@given(exit_days())
def test_never_trap_a_car_and_every_cent_is_accounted_for(events):
    proc = PaymentProcessor()
    pol = ExitPaymentPolicy(
        proc, config=PolicyConfig(strike_threshold=2, write_off_horizon_s=7 * DAY)
    )
    decisions = []
    for ev in events:
        if ev[0] == "exit":
            _, t, ref, plate, amount, attempts = ev
            d = pol.settle(ref, plate, amount, t, attempts)
            decisions.append(d)
            assert d.barrier_open
            assert d.paid_cents + d.pending_cents + d.invoiced_cents == amount
            assert d.flagged == (d.invoiced_cents > 0)
            assert d.blocklisted == pol.requires_prepay(plate)
        elif ev[0] == "settle":
            pol.settle_offline(ev[1], ev[2])
        elif ev[0] == "pay":
            for inv in pol.ledger.invoices(InvoiceStatus.OPEN)[:1]:
                pol.pay_invoice(inv.id, inv.outstanding_cents, ev[1])
        else:
            pol.write_off_overdue(ev[1])
        check_ledger(pol, proc)

    # the network comes back for good: everything queued settles, no hold is left dangling
    pol.settle_offline(1e9)
    check_ledger(pol, proc)
    assert pol.ledger.totals().pending_offline_cents == 0
    assert proc.open_authorizations() == []
    assert pol.counts().exits == len(decisions)


def check_ledger(pol: ExitPaymentPolicy, proc: PaymentProcessor) -> None:
    totals = pol.ledger.totals()
    # expected = collected + pending offline + invoiced (outstanding) + written off
    assert totals.balanced
    assert all(b.unaccounted_cents == 0 for b in pol.ledger.bills())
    # what the lot booked as card money is exactly what the processor took: nothing charged
    # twice, nothing lost
    assert totals.captured_cents == proc.captured_cents()
    assert all(len(b.payment_ids) <= 1 for b in pol.ledger.bills())
    per_plate = pol.ledger.by_plate()
    assert sum(p.expected_cents for p in per_plate.values()) == totals.expected_cents
    for plate, p in per_plate.items():
        assert p.balanced
        assert p.captured_cents == proc.captured_cents(plate)
        assert p.invoiced_cents == pol.ledger.outstanding_cents(plate)
    invoices = pol.ledger.invoices()
    assert totals.written_off_cents == sum(i.written_off_cents for i in invoices)
    assert totals.invoice_paid_cents == sum(i.paid_cents for i in invoices)
    assert pol.counts().invoices_issued == len(invoices)


# --------------------------------------------------------------------------- strikes, blocklist


def test_blocklist_after_threshold_strikes_within_the_window():
    pol = policy(strike_threshold=3, strike_window_s=7 * DAY)
    for i, t in enumerate([0.0, 2 * DAY]):
        d = pol.settle(f"s{i}", "BAD", 500, t, DECLINE)
        assert not d.blocklisted and not pol.requires_prepay("BAD")
    d = pol.settle(
        "s2", "BAD", 500, 7 * DAY, DECLINE
    )  # third strike, exactly 7 days after the first
    assert d.blocklisted and pol.requires_prepay("BAD") and d.barrier_open
    assert pol.blocklist == {"BAD"} and pol.counts().blocklisted_plates == 1
    assert not pol.requires_prepay("GOOD")


def test_strikes_spread_wider_than_the_window_do_not_blocklist():
    pol = policy(strike_threshold=3, strike_window_s=7 * DAY)
    for i, t in enumerate([0.0, 4 * DAY, 8 * DAY, 12 * DAY]):
        pol.settle(f"s{i}", "P", 500, t, DECLINE)
    assert not pol.requires_prepay("P")  # any 3 consecutive strikes span 8 days
    pol.settle("s9", "P", 500, 13 * DAY, DECLINE)  # 8, 12, 13 days: within 7 days
    assert pol.requires_prepay("P")


def test_open_invoices_are_the_plates_own_unpaid_ones_in_issue_order():
    pol = policy(strike_threshold=5)
    a = pol.settle("s1", "P", 500, 0.0, DECLINE)
    pol.settle("s2", "Q", 400, H, DECLINE)
    b = pol.settle("s3", "P", 300, 2 * H, DECLINE)
    c = pol.settle("s4", "P", 200, 3 * H, DECLINE)
    ledger = pol.ledger
    assert [i.id for i in ledger.open_invoices("P")] == [a.invoice_id, b.invoice_id, c.invoice_id]
    pol.pay_invoice(b.invoice_id, 300, 4 * H)  # paid in full: closed
    pol.pay_invoice(c.invoice_id, 50, 4 * H)  # partly paid: still open
    assert [i.id for i in ledger.open_invoices("P")] == [a.invoice_id, c.invoice_id]
    assert sum(i.outstanding_cents for i in ledger.open_invoices("P")) == (
        ledger.outstanding_cents("P")
    )
    assert ledger.open_invoices("nobody") == []


def test_paying_every_invoice_lifts_the_blocklist():
    pol = policy(strike_threshold=2)
    a = pol.settle("s1", "P", 500, 0.0, DECLINE)
    b = pol.settle("s2", "P", 300, H, DECLINE)
    assert pol.requires_prepay("P")
    pol.pay_invoice(a.invoice_id, 500, 2 * H)
    assert pol.requires_prepay("P")  # still owes the second invoice
    pol.pay_invoice(b.invoice_id, 100, 3 * H)
    assert pol.requires_prepay("P")  # partly paid
    pol.pay_invoice(b.invoice_id, 200, 4 * H)
    assert not pol.requires_prepay("P") and pol.strikes("P") == ()
    totals = pol.ledger.totals("P")
    assert (totals.invoice_paid_cents, totals.invoiced_cents, totals.collected_cents) == (
        800,
        0,
        800,
    )


def test_partial_payments_count_as_strikes_only_if_configured():
    lenient = policy(strike_threshold=1, strike_on_partial=False)
    lenient.settle("s1", "P", 500, 0.0, Condition(limit_cents=100))
    assert not lenient.requires_prepay("P") and lenient.flags() == {"P": 1}
    strict = policy(strike_threshold=1)
    strict.settle("s1", "P", 500, 0.0, Condition(limit_cents=100))
    assert strict.requires_prepay("P")


def test_network_outages_are_not_the_drivers_fault():
    pol = policy(strike_threshold=1)
    pol.settle("s1", "P", 500, 0.0, [DOWN] * 3)
    assert pol.strikes("P") == () and not pol.requires_prepay("P")


# --------------------------------------------------------------------------- lost tickets


def hourly_tariff() -> Tariff:
    return Tariff("t", RateTable(period_minutes=60, period_cents=300, daily_max_cents=2_400))


def test_lost_ticket_with_an_entry_plate_read_pays_the_actual_stay():
    tariff = hourly_tariff()
    pol = ExitPaymentPolicy(PaymentProcessor(), pricing=tariff.price, lost_ticket_cents=2_400)
    pol.record_entry("AB-123", 8 * H)
    d = pol.settle_lost_ticket("s1", "AB-123", 10.5 * H)
    assert d.amount_cents == tariff.price(8 * H, 10.5 * H) == 900  # 3 started hours
    assert (d.basis, d.paid_cents, d.outcome) == ("plate_read", 900, ExitOutcome.PAID)
    assert pol.ledger.bill("s1").basis == "plate_read"
    c = pol.counts()
    assert (c.lost_tickets, c.lost_tickets_priced_by_plate) == (1, 1)


def test_lost_ticket_without_a_plate_read_pays_the_daily_maximum():
    pol = ExitPaymentPolicy(
        PaymentProcessor(), pricing=hourly_tariff().price, lost_ticket_cents=2_400
    )
    pol.record_entry("OTHER", 8 * H)
    d = pol.settle_lost_ticket("s1", "AB-123", 8.5 * H)
    assert (d.amount_cents, d.basis) == (2_400, "daily_max")
    # the plate read is consumed by an exit: a later lost ticket for it pays the daily max
    pol.settle("s2", "OTHER", 300, 9 * H)
    assert pol.lost_ticket_price("OTHER", 20 * H) == (2_400, "daily_max")
    assert pol.counts().lost_tickets_priced_by_plate == 0


def test_a_lost_ticket_that_cannot_be_paid_still_opens_the_barrier():
    pol = ExitPaymentPolicy(PaymentProcessor(), lost_ticket_cents=2_400)
    d = pol.settle_lost_ticket("s1", "P", 0.0, [DECLINE])
    assert d.barrier_open and d.invoiced_cents == 2_400


# --------------------------------------------------------------------------- ledger


def test_write_off_after_the_horizon_keeps_the_identity():
    pol = policy(write_off_horizon_s=30 * DAY)
    old = pol.settle("s1", "A", 500, 0.0, DECLINE)
    new = pol.settle("s2", "B", 700, 20 * DAY, DECLINE)
    pol.settle("s3", "C", 900, 20 * DAY)
    assert pol.write_off_overdue(29 * DAY) == []
    gone = pol.write_off_overdue(30 * DAY)
    assert [i.id for i in gone] == [old.invoice_id]
    assert pol.ledger.invoice(new.invoice_id).status is InvoiceStatus.OPEN
    t = pol.ledger.totals()
    assert (t.expected_cents, t.collected_cents, t.invoiced_cents, t.written_off_cents) == (
        2_100,
        900,
        700,
        500,
    )
    assert t.balanced
    pol.mark_uncollectable(new.invoice_id, 31 * DAY)
    assert pol.ledger.totals().written_off_cents == 1_200
    assert pol.counts().invoices_written_off == 2
    with pytest.raises(PaymentError, match="written_off"):
        pol.pay_invoice(new.invoice_id, 100, 32 * DAY)


def test_refund_is_booked_once_even_when_its_answer_is_lost():
    proc = PaymentProcessor()
    pol = ExitPaymentPolicy(proc)
    pol.settle("s1", "P", 1_000, 0.0)
    assert pol.refund("s1", 250, 10.0, LOST).status is Status.TIMEOUT
    assert pol.refund("s1", 250, 20.0).replayed
    assert proc.refunded_cents() == 250
    t = pol.ledger.totals()
    assert (t.refunded_cents, t.net_collected_cents, t.collected_cents) == (250, 750, 1_000)
    assert t.balanced and pol.counts().refunds == 1
    pol.settle("s2", "P", 500, 30.0, DECLINE)
    with pytest.raises(PaymentError, match="nothing was paid by card"):
        pol.refund("s2", 100, 40.0)


def test_ledger_queries_are_plain_records():
    pol = policy()
    pol.settle("s1", "A", 500, 0.0)
    pol.settle("s2", "A", 400, 1.0, Condition(limit_cents=100))
    pol.settle("s3", "B", 0, 2.0)
    records = pol.ledger.bill_records()
    assert [r["ref"] for r in records] == ["s1", "s2", "s3"]
    assert records[1]["collected_cents"] == 100 and records[1]["invoiced_cents"] == 300
    assert pol.ledger.invoice_records()[0]["status"] == "open"
    by_plate = pol.ledger.by_plate()
    assert by_plate["A"].as_dict()["expected_cents"] == 900
    assert by_plate["B"].bills == 1 and pol.counts().free_exits == 1


# --------------------------------------------------------------------------- scenario spec


CONST_5 = {"type": "constant", "value": 5}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"decline_probability": 1.5}, "decline_probability must be a probability between 0 and 1"),
        ({"lost_ticket_probability": -0.1}, "lost_ticket_probability must be a probability"),
        ({"partial_probability": 0.1}, "partial_probability > 0 needs card_limit"),
        ({"retry": {"max_attempts": 0}}, "max_attempts must be between 1 and 10"),
        ({"retry": {"backoff_factor": 0.5}}, "backoff_factor must be >= 1"),
        ({"retry": {"timeout_s": 0}}, "timeout_s must be > 0"),
        ({"strikes": {"threshold": 0}}, "threshold must be at least 1"),
        ({"strikes": {"window_days": -1}}, "window_days must be > 0"),
        ({"write_off_days": 0}, "write_off_days must be > 0"),
        (
            {"outages": {"between": {"type": "constant", "value": 0}, "duration": CONST_5}},
            "outages.between must have a mean > 0",
        ),
        ({"retyr": {}}, "Extra inputs are not permitted"),
        ({"retry": {"attempts": 3}}, "Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_spec_rejects_bad_settings_with_a_clear_message(data, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        PaymentsSpec.model_validate(data)


def test_spec_builds_the_core_policy_and_processor():
    spec = PaymentsSpec.model_validate(
        {
            "retry": {"max_attempts": 4, "backoff_s": 0.5, "backoff_factor": 3, "timeout_s": 8},
            "strikes": {"threshold": 2, "window_days": 14, "count_partial": False},
            "write_off_days": 60,
            "partial_approvals": False,
        }
    )
    cfg = spec.policy_config()
    assert cfg.retry == RetryPolicy(4, 0.5, 3.0)
    assert (cfg.strike_threshold, cfg.strike_window_s, cfg.strike_on_partial) == (
        2,
        14 * DAY,
        False,
    )
    assert cfg.write_off_horizon_s == 60 * DAY
    proc = spec.processor()
    assert (proc.timeout_s, proc.partial_approvals) == (8.0, False)


def test_the_documented_examples_are_valid():
    docstring_yaml = payments_spec_module.__doc__.split("Example")[1].split("::", 1)[1]
    spec = PaymentsSpec.model_validate(yaml.safe_load(docstring_yaml)["payments"])
    assert spec.decline_probability == 0.02 and spec.outages is not None
    doc = Path(__file__).resolve().parents[2] / "docs" / "payments.md"
    blocks = re.findall(r"```yaml\n(.*?)```", doc.read_text(), flags=re.S)
    assert blocks, "docs/payments.md shows a payments: example"
    for block in blocks:
        PaymentsSpec.model_validate(yaml.safe_load(block)["payments"])


def test_sampled_conditions_follow_the_probabilities():
    spec = PaymentsSpec.model_validate(
        {
            "decline_probability": 0.1,
            "partial_probability": 0.2,
            "card_limit": {"type": "uniform", "low": 0, "high": 10},
            "lost_response_probability": 0.05,
            "latency": {"type": "constant", "value": 3, "unit": "s"},
        }
    )
    n = 4_000
    conds = spec.sample_conditions(np.random.default_rng(7), n)
    for flag, p in [
        (sum(c.declined for c in conds), 0.1),
        (sum(c.limit_cents is not None for c in conds), 0.2),
        (sum(c.response_lost for c in conds), 0.05),
    ]:
        assert stats.binomtest(flag, n, p).pvalue > 1e-4
    limits = [c.limit_cents for c in conds if c.limit_cents is not None]
    assert min(limits) >= 0 and max(limits) < 1_000  # currency units -> cents
    assert {c.latency_s for c in conds} == {3.0}
    assert all(not c.network_up for c in spec.sample_conditions(np.random.default_rng(1), 3, False))


def test_sampled_outages_alternate_up_and_down_times():
    spec = PaymentsSpec.model_validate(
        {
            "outages": {
                "between": {"type": "constant", "value": 10, "unit": "h"},
                "duration": {"type": "constant", "value": 2, "unit": "h"},
            }
        }
    )
    out = spec.sample_outages(np.random.default_rng(0), 47 * H)
    assert out == [(10 * H, 12 * H), (22 * H, 24 * H), (34 * H, 36 * H), (46 * H, 47 * H)]
    assert spec.outages.availability == pytest.approx(10 / 12)
    assert PaymentsSpec().sample_outages(np.random.default_rng(0), DAY) == []
