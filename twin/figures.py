"""The figure registry: every figure a run reports, said once.

Each :class:`Figure` names a figure (or a pattern of them, such as
``occupancy.level[{level}].mean``), with the label a person reads, the unit it is stored and
shown in, which way is better, how a verdict speaks of it, whether it is a headline figure, and
whether the regression gate checks it (or why not). The terminal tables, ``compare``, the HTML
report, ``sweep``, ``optimize`` and ``regress`` all read this module instead of keeping lists of
their own: adding a figure means computing it and adding one entry here.

Units are the units figures are *stored* in (``summary()``, ``summary.json``, the compare
table): shares of drivers in percent (``%``), occupancies as a fraction (``share``), money in
dollars. Presentation converts (a ``share`` is shown as a percentage and its differences in
percentage points) but never changes what the numbers mean.

This module imports nothing heavy: the CLI's help and the core's users can read it for free.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache
from typing import Literal

__all__ = [
    "FIGURES",
    "SECTIONS",
    "UNITS",
    "Figure",
    "Found",
    "Section",
    "Unit",
    "compact",
    "find",
    "format_diff",
    "format_value",
    "gated",
    "headline",
    "label_of",
    "lookup",
    "matching",
    "ordered",
    "quantity",
    "significant_decimals",
    "unit_of",
    "unit_text",
]


@dataclass(frozen=True)
class Unit:
    """How a figure's stored values read. ``kind`` says how charts and narrow cells treat it
    (``pct`` already in %, ``frac`` a 0..1 share, ``money``, ``count``, ``num``);
    ``scale`` turns stored values into shown ones (a share ×100 is a percentage); ``shown`` and
    ``diff`` are the units of a shown value and of a shown difference; ``low``/``high`` are the
    natural bounds in stored units (None: unbounded)."""

    symbol: str
    kind: str
    scale: float = 1.0
    shown: str | None = None  # None: the symbol
    diff: str | None = None  # None: as shown
    low: float | None = 0.0
    high: float | None = None

    def __post_init__(self) -> None:
        if self.shown is None:
            object.__setattr__(self, "shown", self.symbol)
        if self.diff is None:
            object.__setattr__(self, "diff", self.shown)


_UNITS = (
    Unit("%", "pct", 1.0, "%", "pp", 0.0, 100.0),
    Unit("share", "frac", 100.0, "%", "pp", 0.0, 1.0),
    Unit("$", "money"),
    Unit("$/day", "money"),
    Unit("vehicles", "count"),
    Unit("vehicles/day", "count"),
    Unit("count", "count", shown=""),  # events in the measured window
    Unit("/day", "num"),
    Unit("km/day", "num"),
    Unit("s", "num"),
    Unit("ms", "num"),
    Unit("h", "num"),
    Unit("spot-h", "num"),
    Unit("spot-h/day", "num"),
    Unit("spots", "num"),
    Unit("kWh", "num"),
    Unit("kWh/day", "num"),
    Unit("min/day", "num", high=1440.0),
    # summed over levels (or sensors, or spots): bounded by their number × 1,440, not by a day
    Unit("level-min/day", "num"),
    Unit("sensor-min/day", "num"),
    Unit("spot-min/day", "num"),
    Unit("driver-min/day", "num"),
    Unit("", "num", shown="", low=None),
)
UNITS: dict[str, Unit] = {u.symbol: u for u in _UNITS}


@dataclass(frozen=True)
class Section:
    """A group of figures with a title; ``gate`` is why the gate leaves its figures out unless
    a figure says otherwise; ``component`` marks the optional parts of the model."""

    key: str
    title: str
    gate: str
    component: bool = False


_COMPONENT_GATE = (
    "a component's own figure: its behaviour is pinned by the component's tests; the gate "
    "watches what the lot earns and how full it gets"
)
SECTIONS: dict[str, Section] = {
    s.key: s
    for s in (
        Section("drivers", "Drivers", "outcome shares other than the price-driven ones are "
                "pinned by the model's tests"),
        Section("revenue", "Revenue", "a total the split figures already cover"),
        Section("occupancy", "Occupancy", "per-level and per-type detail of the gated totals"),
        Section("lanes", "Barrier lanes", "lane waits do not depend on prices"),
        Section("network", "Network", "network routing is pinned by tests/sim/test_network.py"),
        Section("optimize", "Tariff search", "computed by optimize only, never by a run"),
        Section("reservations", "Reservations", _COMPONENT_GATE, component=True),
        Section("permits", "Permits", _COMPONENT_GATE, component=True),
        Section("payments", "Payments", _COMPONENT_GATE, component=True),
        Section("sensors", "Sensors and displays", _COMPONENT_GATE, component=True),
        Section("claims", "Claims at the gates", _COMPONENT_GATE,
                component=True),
        Section("status", "Spot status (holds and closures)", "exact integrals of the lot's "
                "status log, pinned by tests/core/test_closures.py; present only with components",
                component=True),
    )
}  # fmt: skip


Better = Literal["higher", "lower"] | None


@dataclass(frozen=True)
class Figure:
    """One figure, or a pattern of figures (``{lot}``, ``{level}``, ``{spot_type}``, ...).

    ``label`` may use the pattern's placeholders. ``noun`` is how a verdict names it ("B
    lowers *blocking* by ..."); ``headline`` figures lead every table, report and verdict list;
    ``compact`` ones are the few that fit a narrow table (sweep points, tariff candidates).
    ``gate`` is True when the regression gate checks the figure, else the reason it does not
    (None: the section's reason). ``short`` heads a narrow column.
    """

    name: str
    label: str
    unit: str
    section: str
    better: Better = None
    noun: str | None = None
    headline: bool = False
    compact: bool = False
    gate: bool | str | None = None
    short: str = ""  # header of a narrow column (its unit is added); default: the label

    @property
    def pattern(self) -> bool:
        return "{" in self.name

    @property
    def units(self) -> Unit:
        return UNITS[self.unit]

    @property
    def gated(self) -> bool:
        return self.gate is True

    @property
    def gate_reason(self) -> str:
        """Why the gate does not check it ('' when it does)."""
        if self.gate is True:
            return ""
        return self.gate or SECTIONS[self.section].gate


def _f(name: str, label: str, unit: str, section: str, **kw: object) -> Figure:
    return Figure(name, label, unit, section, **kw)  # type: ignore[arg-type]


_LOWER, _HIGHER = "lower", "higher"

#: Every figure, in the order a planner reads them (headline figures first in each section).
FIGURES: tuple[Figure, ...] = (
    # -- drivers --------------------------------------------------------------------------------
    _f("arrivals_per_day", "arrivals per day", "vehicles/day", "drivers", noun="arrivals",
       headline=True),
    _f("parked", "parked (after warm-up)", "vehicles", "drivers", better=_HIGHER,
       noun="cars parked", headline=True),
    _f("blocked_pct", "blocked (no spot)", "%", "drivers", better=_LOWER, noun="blocking",
       short="blocked",
       headline=True, compact=True, gate=True),
    _f("balked_pct", "balked (price)", "%", "drivers", better=_LOWER, noun="balking",
       short="balked",
       headline=True, compact=True, gate=True),
    _f("reneged_pct", "reneged (gave up waiting)", "%", "drivers", better=_LOWER, short="reneged",
       noun="reneging", headline=True, compact=True, gate=True),
    _f("turned_away_pct", "turned away before the barrier (display FULL)", "%", "drivers",
       better=_LOWER, noun="turning away at the sign", headline=True),
    _f("waiting_pct", "still waiting for a spot at the end", "%", "drivers", better=_LOWER,
       noun="drivers still waiting at the end", headline=True),
    _f("in_entry_lane_pct", "still in the entry lane at the end", "%", "drivers",
       better=_LOWER, noun="drivers still in the entry lane at the end", headline=True),
    _f("diverting_pct", "driving to another lot at the end", "%", "network", better=_LOWER,
       noun="drivers still driving to another lot at the end", headline=True),
    _f("deterred_per_day", "stayed away at the price, per day", "vehicles/day", "drivers",
       better=_LOWER, noun="drivers deterred by the price", headline=True),
    _f("arrivals", "arrivals (after warm-up)", "vehicles", "drivers", gate="arrivals_per_day "
       "says the same per day"),
    _f("component_parked", "parked by components (reservation holders)", "vehicles", "drivers"),
    _f("mean_stay_h", "mean stay", "h", "drivers", noun="the mean stay", headline=True),
    # -- network ----------------------------------------------------------------------------------
    _f("diverted_pct", "turned away, drove to another lot", "%", "network", better=_LOWER,
       noun="diversion", headline=True),
    _f("diverted_parked_pct", "... and parked there", "%", "network", better=_HIGHER,
       noun="diverted drivers who parked", headline=True),
    _f("lost_pct", "lost to the network (parked nowhere)", "%", "network", better=_LOWER,
       noun="drivers lost to the network", headline=True),
    _f("search_km_per_day", "extra km driven between lots, per day", "km/day", "network",
       better=_LOWER, noun="the extra km driven", headline=True),
    # per lot, of the drivers who headed for it first
    _f("arrivals_per_day.lot[{lot}]", "drivers heading for {lot} first, per day",
       "vehicles/day", "network"),
    _f("diverted_pct.lot[{lot}]", "drivers heading for {lot} who drove on", "%", "network",
       better=_LOWER),
    _f("lost_pct.lot[{lot}]", "drivers heading for {lot} lost to the network", "%", "network",
       better=_LOWER),
    _f("search_km_per_day.lot[{lot}]", "extra km driven by drivers heading for {lot}, per day",
       "km/day", "network", better=_LOWER),
    # -- revenue ----------------------------------------------------------------------------------
    _f("revenue_per_day", "revenue per day", "$/day", "revenue", better=_HIGHER, noun="revenue",
       short="revenue",
       headline=True, compact=True, gate=True),
    _f("mean_price", "mean price paid", "$", "revenue", noun="the mean price paid",
       headline=True, gate=True),
    _f("revenue", "revenue over the measured days", "$", "revenue"),
    _f("revenue_per_day.lot[{lot}]", "revenue per day, {lot}", "$/day", "revenue",
       better=_HIGHER, noun="revenue of {lot}", gate=True),
    _f("revenue_per_day.spot_type[{spot_type}]", "revenue per day, {spot_type} bays", "$/day",
       "revenue", gate=True),
    _f("revenue_per_day.band[{band}]", "revenue per day, entered in band {band}", "$/day",
       "revenue", gate=True),
    _f("receipts_per_day", "receipts of the same drivers, priced without simulating, per day",
       "$/day", "revenue", gate=True),
    # -- occupancy --------------------------------------------------------------------------------
    _f("occupancy.mean", "occupancy, mean", "share", "occupancy", noun="mean occupancy",
       short="occupancy mean",
       headline=True, compact=True, gate=True),
    _f("occupancy.peak", "occupancy, peak", "share", "occupancy", noun="peak occupancy",
       short="occupancy peak",
       headline=True, compact=True, gate=True),
    _f("time_full_pct", "time the lot was full (every spot taken)", "%", "occupancy",
       noun="the time the lot was full", headline=True, gate=True),
    _f("time_full_pct.lot[{lot}]", "time {lot} was full", "%", "occupancy",
       noun="the time {lot} was full", gate=True),
    _f("occupied.mean", "occupied spots, mean", "spots", "occupancy",
       gate="occupancy.mean times the capacity"),
    _f("occupancy.lot[{lot}].mean", "occupancy of {lot}, mean", "share", "occupancy",
       gate=True),
    _f("occupancy.lot[{lot}].peak", "occupancy of {lot}, peak", "share", "occupancy",
       gate=True),
    _f("occupancy.level[{level}].mean", "occupancy of level {level}, mean", "share",
       "occupancy"),
    _f("occupancy.level[{level}].peak", "occupancy of level {level}, peak", "share",
       "occupancy"),
    _f("occupancy.spot_type[{spot_type}].mean", "occupancy of {spot_type} bays, mean", "share",
       "occupancy"),
    _f("occupancy.spot_type[{spot_type}].peak", "occupancy of {spot_type} bays, peak", "share",
       "occupancy"),
    # -- barrier lanes ----------------------------------------------------------------------------
    _f("entry_wait_s.mean", "entry lane wait, mean", "s", "lanes", better=_LOWER,
       noun="the mean entry wait", headline=True),
    _f("entry_wait_s.p95", "entry lane wait, p95", "s", "lanes", better=_LOWER,
       noun="the p95 entry wait", headline=True),
    _f("exit_wait_s.mean", "exit lane wait, mean", "s", "lanes", better=_LOWER,
       noun="the mean exit wait", headline=True),
    _f("exit_wait_s.p95", "exit lane wait, p95", "s", "lanes", better=_LOWER,
       noun="the p95 exit wait", headline=True),
    # -- tariff search (optimize) -----------------------------------------------------------------
    _f("no_space_pct", "turned away (blocked + reneged)", "%", "optimize", better=_LOWER,
       short="turned away",
       noun="the share turned away (blocked + reneged)", compact=True),
    _f("occupancy.window", "occupancy in the target window", "share", "optimize",
       short="occupancy (window)",
       noun="occupancy in the window", compact=True),
    # -- reservations -----------------------------------------------------------------------------
    _f("reservations.requests_per_day", "requests per day", "/day", "reservations",
       headline=True),
    _f("reservations.acceptance_pct", "accepted", "%", "reservations", better=_HIGHER,
       headline=True),
    _f("reservations.no_show_pct", "no-shows", "%", "reservations", better=_LOWER,
       headline=True),
    _f("reservations.cancel_pct", "cancelled", "%", "reservations", headline=True),
    _f("reservations.bumped_pct", "bumped (arrived, no spot held)", "%", "reservations",
       better=_LOWER, headline=True),
    _f("reservations.revenue_per_day", "revenue per day (exits, deposits, penalties)", "$/day",
       "reservations", better=_HIGHER, headline=True),
    _f("reservations.idle_spot_hours_per_day", "held spots standing empty", "spot-h/day",
       "reservations", better=_LOWER, headline=True),
    _f("reservations.walk_ins_turned_away_per_day", "walk-ins turned away for holds", "/day",
       "reservations", better=_LOWER, headline=True),
    _f("reservations.holders_parked.mean", "reservation holders parked, mean", "spots",
       "reservations"),
    _f("reservations.requested", "requests", "count", "reservations"),
    _f("reservations.accepted", "accepted", "count", "reservations"),
    _f("reservations.cancellations", "cancellations", "count", "reservations"),
    _f("reservations.late_cancellations", "late cancellations (penalised)", "count",
       "reservations"),
    _f("reservations.no_shows", "no-shows", "count", "reservations"),
    _f("reservations.late_arrivals", "late arrivals", "count", "reservations"),
    _f("reservations.arrivals", "holders who arrived", "count", "reservations"),
    _f("reservations.bumped", "bumped", "count", "reservations"),
    _f("reservations.hold_waits", "holds that waited for a spot", "count", "reservations"),
    _f("reservations.idle_spot_hours", "held spots standing empty", "spot-h", "reservations"),
    _f("reservations.walk_ins_turned_away", "walk-ins turned away for holds", "count",
       "reservations"),
    _f("reservations.exit_revenue", "revenue at holders' exits", "$", "reservations"),
    _f("reservations.deposit_revenue", "deposits kept", "$", "reservations"),
    _f("reservations.penalty_revenue", "no-show and late-cancel penalties", "$",
       "reservations"),
    _f("reservations.revenue", "revenue", "$", "reservations"),
    _f("reservations.refunded", "refunded", "$", "reservations"),
    _f("reservations.unpaid", "unpaid", "$", "reservations"),
    _f("reservations.rejected.{reason}", "requests refused: {reason}", "count", "reservations"),
    _f("reservations.declined_holds", "holds whose card was declined", "count", "reservations"),
    _f("reservations.authorizations", "card authorizations", "count", "reservations"),
    _f("reservations.authorizations_declined", "card authorizations declined", "count",
       "reservations"),
    _f("reservations.captures", "card captures", "count", "reservations"),
    _f("reservations.captured", "captured on cards", "$", "reservations"),
    _f("reservations.voids", "authorizations voided", "count", "reservations"),
    # -- permits ----------------------------------------------------------------------------------
    _f("permits.monthly.entries_per_day", "monthly permit entries per day", "/day", "permits",
       headline=True),
    _f("permits.monthly.assigned_idle_share", "assigned permit bays standing empty", "share",
       "permits", better=_LOWER, headline=True),
    _f("permits.monthly.fee_revenue_per_day", "monthly permit fees per day", "$/day", "permits",
       headline=True),
    _f("permits.monthly.waived_revenue_per_day", "parking fees waived for permit holders",
       "$/day", "permits", headline=True),
    _f("permits.handicap.fines_per_day", "disabled-bay fines per day", "$/day", "permits",
       headline=True),
    _f("permits.ev.kwh_per_day", "EV energy charged per day", "kWh/day", "permits",
       headline=True),
    _f("permits.ev.charging_revenue_per_day", "EV charging revenue per day", "$/day", "permits",
       headline=True),
    _f("permits.monthly.entries", "monthly permit entries", "count", "permits"),
    _f("permits.monthly.assigned_entries", "entries to an assigned bay", "count", "permits"),
    _f("permits.monthly.assigned_busy", "assigned bay found taken", "count", "permits"),
    _f("permits.monthly.refused_full", "permit holders refused (lot full)", "count", "permits"),
    _f("permits.monthly.not_valid", "permits not valid at the time", "count", "permits"),
    _f("permits.monthly.plates_exhausted", "plates per permit exhausted", "count", "permits"),
    _f("permits.monthly.exits", "monthly permit exits", "count", "permits"),
    _f("permits.monthly.waived_revenue", "parking fees waived for permit holders", "$",
       "permits"),
    _f("permits.monthly.assigned_idle_spot_hours", "assigned permit bays standing empty",
       "spot-h", "permits"),
    _f("permits.handicap.illegal_parkings", "disabled bays taken without a badge", "count",
       "permits"),
    _f("permits.handicap.inspected", "disabled-bay inspections", "count", "permits"),
    _f("permits.handicap.violations", "violations found", "count", "permits"),
    _f("permits.handicap.caught", "violators fined", "count", "permits"),
    _f("permits.handicap.fines", "fines", "$", "permits"),
    _f("permits.ev.sessions", "EV charging sessions", "count", "permits"),
    _f("permits.ev.kwh", "EV energy charged", "kWh", "permits"),
    _f("permits.ev.charge_hours", "hours charging", "spot-h", "permits"),
    _f("permits.ev.idle_hours", "hours plugged in, not charging", "spot-h", "permits"),
    _f("permits.ev.billable_idle_hours", "idle hours billed", "spot-h", "permits"),
    _f("permits.ev.parked_without_charger", "EVs parked without a charger", "count", "permits"),
    _f("permits.ev.energy_fees", "EV energy fees", "$", "permits"),
    _f("permits.ev.time_fees", "EV time fees", "$", "permits"),
    _f("permits.ev.idle_fees", "EV idle fees", "$", "permits"),
    _f("permits.ev.charging_revenue", "EV charging revenue", "$", "permits"),
    # -- payments ---------------------------------------------------------------------------------
    _f("payments.collected_pct", "revenue collected at the exit", "%", "payments",
       better=_HIGHER, headline=True),
    _f("payments.revenue_collected", "collected", "$", "payments", headline=True),
    _f("payments.revenue_invoiced", "invoiced (declined at the barrier)", "$", "payments",
       headline=True),
    _f("payments.latency_s.mean", "payment time at the barrier, mean", "s", "payments",
       better=_LOWER, headline=True),
    _f("payments.latency_s.p95", "payment time at the barrier, p95", "s", "payments",
       better=_LOWER),
    _f("payments.exits", "paying exits", "count", "payments"),
    _f("payments.revenue_expected", "billed", "$", "payments"),
    _f("payments.revenue_written_off", "written off", "$", "payments"),
    _f("payments.revenue_pending_offline", "pending (taken offline)", "$", "payments"),
    _f("payments.declines", "card declines", "count", "payments"),
    _f("payments.declined_exits", "exits let out with an invoice", "count", "payments"),
    _f("payments.offline_payments", "offline payments", "count", "payments"),
    _f("payments.offline_declined", "offline payments declined later", "count", "payments"),
    _f("payments.partial_payments", "partial payments", "count", "payments"),
    _f("payments.lost_tickets", "lost tickets", "count", "payments"),
    _f("payments.lost_tickets_plate_read", "lost tickets resolved by plate", "count",
       "payments"),
    _f("payments.blocklisted_plates", "plates on the blocklist", "count", "payments"),
    _f("payments.blocklisted_exits", "exits of blocklisted plates", "count", "payments"),
    _f("payments.prepay_asked", "prepayments asked at entry", "count", "payments"),
    _f("payments.prepay_refused", "prepayments refused", "count", "payments"),
    _f("payments.prepay_released", "prepayments released", "count", "payments"),
    _f("payments.prepaid_entries", "prepaid entries", "count", "payments"),
    _f("payments.prepaid_revenue", "prepaid revenue", "$", "payments"),
    _f("payments.debt_collected_at_entry", "old debts collected at entry", "$", "payments"),
    _f("payments.plates_unblocked", "plates taken off the blocklist", "count", "payments"),
    # -- claims at the gates (twin.sim.claims) -----------------------------------------------------
    _f("claims.wait_ms.mean", "claim time at the gate, mean", "ms", "claims", better=_LOWER,
       headline=True),
    _f("claims.wait_ms.p95", "claim time at the gate, p95", "ms", "claims", better=_LOWER,
       headline=True),
    _f("claims.wait_ms.max", "claim time at the gate, longest", "ms", "claims", better=_LOWER),
    _f("claims.double_bookings", "units granted twice (must be 0)", "count", "claims",
       better=_LOWER, headline=True),
    _f("claims.per_day", "claims per day", "/day", "claims"),
    _f("claims.refused_pct", "claims refused (row full)", "%", "claims", better=_LOWER),
    _f("claims.failed_pct", "claims failed (out of retries)", "%", "claims", better=_LOWER),
    _f("claims.refused_with_space_per_day", "claims refused or failed with a spot free",
       "/day", "claims", better=_LOWER),
    _f("claims.no_spot_per_day", "grants given back (no spot fitted the car)", "/day",
       "claims", better=_LOWER),
    _f("claims.conflicts_per_day", "version conflicts (each one retried or failed)", "/day",
       "claims", better=_LOWER),
    _f("claims.retries_per_day", "retries after a conflict", "/day", "claims", better=_LOWER),
    _f("claims.waited_pct", "claims that waited for a lock or the consumer", "%", "claims",
       better=_LOWER),
    _f("claims.unfinished", "claims unanswered at the end", "count", "claims"),
    _f("claims.spurious_refusals", "atomic: refused while a unit was free (whole run)",
       "count", "claims", better=_LOWER),
    # -- spot status (the lot's status log) -----------------------------------------------------
    _f("held_spot_h_per_day", "spots held (reservations, permits), spot-hours per day",
       "spot-h/day", "status", better=_LOWER, noun="held spot-hours"),
    _f("closed_spot_h_per_day", "spots closed (closures, maintenance), spot-hours per day",
       "spot-h/day", "status", better=_LOWER, noun="closed spot-hours"),
    _f("no_free_spot_pct", "time no spot was free for a walk-in (occupied, held or closed)",
       "%", "status", better=_LOWER, noun="the time without a free spot"),
    # -- sensors and displays ---------------------------------------------------------------------
    # Totals over a lot's levels are level-minutes (summed over levels: 5 levels make up to
    # 7,200 a day), over sensors sensor-minutes, over bays spot-minutes: their units say so.
    # The same figure per level (.level[L]) is in minutes of that level's day (at most 1,440).
    _f("sensors.wrong_display_min_per_day", "level boards wrong (FULL with bays free, or "
       "the reverse)", "level-min/day", "sensors", better=_LOWER,
       headline=True),
    _f("sensors.turned_away_with_space_pct", "drivers who left on a FULL sign with a bay free",
       "%", "sensors", better=_LOWER, headline=True),
    _f("sensors.extra_search_s_per_driver", "extra search per driver (misleading boards)",
       "s", "sensors", better=_LOWER, headline=True),
    _f("sensors.fallback_min_per_day", "boards on the counters' estimate (sensors "
       "not trusted)", "level-min/day", "sensors", headline=True),
    _f("sensors.sensor_down_min_per_day", "bay sensors failed",
       "sensor-min/day", "sensors", better=_LOWER, headline=True),
    _f("sensors.full_when_free_min_per_day", "boards FULL with bays free",
       "level-min/day", "sensors", better=_LOWER),
    _f("sensors.free_when_full_min_per_day", "boards showing bays on a full level",
       "level-min/day", "sensors", better=_LOWER),
    _f("sensors.phantom_full_spot_min_per_day", "free bays the boards hid", "spot-min/day",
       "sensors", better=_LOWER),
    _f("sensors.phantom_free_spot_min_per_day", "bays the boards promised that were taken",
       "spot-min/day", "sensors", better=_LOWER),
    _f("sensors.app_wrong_display_min_per_day", "app wrong",
       "level-min/day", "sensors", better=_LOWER),
    _f("sensors.shown_full_per_day", "arrivals shown FULL", "/day", "sensors"),
    _f("sensors.turned_away_per_day", "arrivals who left on a FULL sign", "/day", "sensors"),
    _f("sensors.turned_away_with_space_per_day", "... while a bay was free", "/day", "sensors",
       better=_LOWER),
    _f("sensors.wrong_level_visits_per_day", "levels visited in vain", "/day", "sensors"),
    _f("sensors.skipped_with_space_per_day", "levels with space skipped (shown FULL)", "/day",
       "sensors"),
    _f("sensors.extra_search_min_per_day", "extra search, summed over drivers",
       "driver-min/day", "sensors"),
    _f("sensors.counter_missed_per_day", "vehicles the counters missed", "/day", "sensors"),
    _f("sensors.sensor_failures_per_day", "bay sensor failures", "/day", "sensors"),
    _f("sensors.gateway_outages_per_day", "gateway outages", "/day", "sensors"),
    _f("sensors.gateway_down_min_per_day", "gateways down",
       "level-min/day", "sensors"),
    _f("sensors.counter_drift_abs", "counter drift at the end, Σ|counted − true|", "vehicles",
       "sensors"),
    _f("sensors.wrong_display_min_per_day.level[{level}]", "board of level {level} wrong",
       "min/day", "sensors"),
    _f("sensors.phantom_full_spot_min_per_day.level[{level}]",
       "free bays hidden on level {level}", "spot-min/day", "sensors"),
    _f("sensors.phantom_free_spot_min_per_day.level[{level}]",
       "taken bays promised on level {level}", "spot-min/day", "sensors"),
    _f("sensors.wrong_display_min_per_day.lot[{lot}]", "boards of {lot} wrong",
       "level-min/day", "sensors"),
    _f("sensors.turned_away_with_space_per_day.lot[{lot}]",
       "left {lot} on a FULL sign with a bay free", "/day", "sensors"),
    _f("sensors.extra_search_s_per_driver.lot[{lot}]", "extra search per driver at {lot}", "s",
       "sensors"),
)  # fmt: skip


# --------------------------------------------------------------------------- lookup


@dataclass(frozen=True)
class Found:
    """A figure name matched to its registry entry, with the pattern's parts filled in."""

    name: str
    figure: Figure
    params: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        return _fill(self.figure.label, self.params)

    @property
    def noun(self) -> str:
        return _fill(self.figure.noun, self.params) if self.figure.noun else self.label

    @property
    def unit(self) -> Unit:
        return self.figure.units

    @property
    def section(self) -> Section:
        return SECTIONS[self.figure.section]

    def param(self, key: str) -> str | None:
        return dict(self.params).get(key)


def _fill(text: str, params: tuple[tuple[str, str], ...]) -> str:
    # spot types stay as the scenario file, the frames and the figure names write them
    # ("REGULAR bays"): one spelling to search a table, a frame and a scenario for
    for key, value in params:
        text = text.replace("{" + key + "}", value)
    return text


def _regex(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", pattern)
    out = []
    for k, part in enumerate(parts):
        out.append(re.escape(part) if k % 2 == 0 else f"(?P<{part}>[^\\]]+?)")
    return re.compile("".join(out) + r"\Z")


_EXACT = {f.name: f for f in FIGURES if not f.pattern}
_PATTERNS = [(f, _regex(f.name)) for f in FIGURES if f.pattern]


@cache
def find(name: str) -> Found | None:
    """The registry entry of a figure name (exact names first, then patterns), or None."""
    fig = _EXACT.get(name)
    if fig is not None:
        return Found(name, fig)
    for fig, rx in _PATTERNS:
        m = rx.match(name)
        if m:
            return Found(name, fig, tuple(m.groupdict().items()))
    return None


def lookup(name: str) -> Found:
    """Like :func:`find`, but a figure without an entry is an error (it must have one)."""
    found = find(name)
    if found is None:
        raise KeyError(f"figure {name!r} has no entry in twin.figures.FIGURES")
    return found


def unit_of(name: str) -> Unit:
    """The unit a figure is stored in; a plain number for names the registry does not know."""
    found = find(name)
    return found.unit if found is not None else UNITS[""]


def label_of(name: str) -> str:
    found = find(name)
    return found.label if found is not None else name


def ordered(names: list[str] | tuple[str, ...]) -> list[str]:
    """Names in registry order (entries' order, then the names' own order within a pattern);
    unknown names last, as given."""
    rank = {f.name: k for k, f in enumerate(FIGURES)}

    def key(item: tuple[int, str]) -> tuple[int, int]:
        pos, name = item
        found = find(name)
        return (rank[found.figure.name] if found else len(rank), pos)

    return [name for _, name in sorted(enumerate(names), key=key)]


def headline(names: list[str] | tuple[str, ...] | None = None, section: str | None = None
             ) -> list[str]:  # fmt: skip
    """Headline figures: those of ``names`` (in registry order), or every exact headline name;
    only one section's with ``section``."""
    if names is None:
        names = [f.name for f in FIGURES if not f.pattern]
    return [
        n
        for n in ordered(list(names))
        if (found := find(n)) is not None
        and found.figure.headline
        and (section is None or found.figure.section == section)
    ]


def compact(names: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """The few figures a narrow table shows, of ``names`` (registry order) or of all."""
    if names is None:
        names = [f.name for f in FIGURES if not f.pattern]
    return [n for n in ordered(list(names)) if (f := find(n)) is not None and f.figure.compact]


def gated(names: list[str] | tuple[str, ...]) -> list[str]:
    """The names (of a run's figures) the regression gate checks, in registry order."""
    return [n for n in ordered(list(names)) if (f := find(n)) is not None and f.figure.gated]


def matching(names: list[str] | tuple[str, ...], entry: str) -> list[str]:
    """The names that the registry entry named ``entry`` (a pattern) covers, in their order."""
    return [n for n in names if (f := find(n)) is not None and f.figure.name == entry]


def in_section(names: list[str] | tuple[str, ...], section: str) -> list[str]:
    return [n for n in ordered(list(names)) if (f := find(n)) and f.figure.section == section]


# --------------------------------------------------------------------------- formatting


def significant_decimals(half_width: float, value: float) -> int:
    """Two significant digits of the half-width (its precision is all the data support)."""
    ref = half_width if half_width > 0 and math.isfinite(half_width) else abs(value)
    if not ref > 0 or not math.isfinite(ref):
        return 2
    return int(min(4, max(0, 1 - math.floor(math.log10(ref)))))


def quantity(value: float, unit: str, decimals: int) -> str:
    """``1240`` in ``$/day`` → ``$1,240/day``; ``0.3`` in ``pp`` → ``0.30 pp``; ``12`` in ``%``
    → ``12 %``. ``unit`` is a shown unit (:attr:`Unit.shown` or :attr:`Unit.diff`)."""
    if unit.startswith("$"):
        decimals = min(decimals, 2)  # cents at most
    number = f"{value:,.{decimals}f}"
    if unit.startswith("$"):
        sign = "-" if number.startswith("-") else ""
        return f"{sign}${number.lstrip('-')}{unit[1:]}"
    if unit == "/day":
        return f"{number}/day"
    if unit == "%":
        return f"{number} %"
    return f"{number} {unit}" if unit else number


def format_value(
    name: str, value: float | None, decimals: int | None = None, unit: bool = True
) -> str:
    """A figure's stored value as a person reads it: ``12.5 %``, ``$1,240.00/day``, ``3.2 s``;
    with ``unit=False`` only the number (money keeps its ``$``) for a table with a unit column
    (:func:`unit_text`)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    u = unit_of(name)
    shown = value * u.scale
    if decimals is None:
        decimals = {"money": 2, "count": 0, "pct": 2, "frac": 1}.get(u.kind, 2)
        if u.kind == "money" and abs(shown) >= 1000:
            decimals = 0  # $10,860 a day: cents add digits, not information
    assert u.shown is not None
    bare = "$" if u.shown.startswith("$") else ""
    return quantity(shown, u.shown if unit else bare, decimals)


def unit_text(name: str) -> str:
    """The unit a figure is shown in, for a unit column: ``%``, ``$/day``, ``s``, ``total``
    (a count over the measured days)."""
    return unit_of(name).shown or "total"


def format_diff(name: str, value: float | None, decimals: int | None = None,
                signed: bool = False) -> str:  # fmt: skip
    """A difference of a figure (stored units) as a person reads it: ``+1.20 pp``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    u = unit_of(name)
    shown = value * u.scale
    if decimals is None:
        decimals = 2
    text = quantity(shown, u.diff, decimals)
    return "+" + text if signed and shown > 0 else text


#: Decimals of a bare number in a narrow cell, by formatting kind.
_CELL_DECIMALS = {"pct": 2, "frac": 1, "money": 0, "count": 0}


def format_number(name: str, value: float | None) -> str:
    """A figure's value (or half-width) in shown units without the unit, for a table whose
    column header carries it (:func:`column_header`)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    u = unit_of(name)
    return f"{value * u.scale:,.{_CELL_DECIMALS.get(u.kind, 2)}f}"


def column_header(name: str) -> str:
    """``blocked %``: the figure's short label and the unit its cells are shown in."""
    found = find(name)
    label = (found.figure.short or found.label) if found is not None else name
    return f"{label} {unit_of(name).shown}".strip()


def clip(name: str, lo: float, hi: float) -> tuple[float, float]:
    """An interval (stored units) clipped to what the figure can take."""
    u = unit_of(name)
    if u.low is not None and not math.isnan(lo):
        lo = max(lo, u.low)
    if u.high is not None and not math.isnan(hi):
        hi = min(hi, u.high)
    return lo, hi


def days_text(days: float) -> str:
    """A span of days as people say it: ``6.75 days``, ``7.4 days`` (not ``7.44792``),
    ``1 day``; whole and quarter days exactly, anything else to a tenth."""
    text = f"{days:g}" if abs(days * 4 - round(days * 4)) < 1e-9 else f"{days:.1f}"
    return f"{text} day{'s' * (text != '1')}"


def measured_days(horizon_days: float, warmup_hours: float) -> str:
    """The measured span of a run (horizon less warm-up), see :func:`days_text`."""
    return days_text(horizon_days - warmup_hours / 24)
