"""From a replication's raw columns to tidy frames and the figures planners read.

Time series are rebuilt exactly from the per-vehicle records (who was parked, or queued, at
each instant) rather than sampled during the run: cheaper, and exact at every sample point.
Figures exclude the warm-up: rates count drivers arriving after it, averages integrate over
[warm-up, horizon].
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from twin.core.types import SpotType, VehicleClass
from twin.scenario.model import Scenario
from twin.sim.record import (
    BALKED,
    BLOCKED,
    DETERRED,
    DIVERTING,
    OUTCOMES,
    PARKED,
    QUEUED,
    RENEGED,
    TURNED_AWAY,
    WAITING,
    RunRecord,
)

#: One type per kind of column in every frame, so frames join without casts (``merge_asof`` of
#: vehicles on occupancy needs the same datetime resolution on both sides): instants are
#: ``datetime64[ns]``, the replication is ``int64``, counts are ``int64``.
TIME_DTYPE = "datetime64[ns]"
REPLICATION_DTYPE = np.int64


def times_of(start: object, seconds: np.ndarray | pd.Series) -> np.ndarray:
    """Instants ``seconds`` after the scenario's ``start``, as :data:`TIME_DTYPE` (pandas would
    pick microseconds for a Series and nanoseconds for an array)."""
    offset = pd.to_timedelta(np.asarray(seconds, dtype=float), unit="s")
    return (pd.Timestamp(start) + offset).as_unit("ns").to_numpy(dtype=TIME_DTYPE)


def ordered_category(values: np.ndarray | list[str]) -> pd.Categorical:
    """A categorical whose categories keep the order the values first appear in (total, lots,
    levels from the ground up, spot types in the model's order), not the alphabet's."""
    return pd.Categorical(values, categories=pd.unique(np.asarray(values, dtype=object)))


def _code_dtype(n_codes: int) -> type[np.signedinteger]:
    """The smallest signed integer type for codes 0..n_codes-1 (int16 sorts by radix)."""
    return np.int16 if n_codes < 2**15 else np.int32


class Facility:
    """All spots of a replication's lots as flat arrays, indexed like ``RunRecord.spot``.

    Levels are numbered across lots; in a network their names carry the lot
    (``"North/P2"``), so one-lot outputs keep the plain level names.
    """

    @classmethod
    def of(cls, rec: RunRecord) -> Facility:
        """The record's facility arrays, built once: every frame and figure reads them, and a
        city grid has half a million spots to walk."""
        fac = rec.__dict__.get("_facility")
        if fac is None:
            fac = rec.__dict__["_facility"] = cls(rec)
        return fac

    def __init__(self, rec: RunRecord) -> None:
        multi = len(rec.lots) > 1
        self.lot_names = [lot.lot_id for lot in rec.lots]
        self._lots, self._multi = rec.lots, multi
        level, stype, lot_ix, names, cap_level = [], [], [], [], []
        cap_type = np.zeros(len(SpotType), dtype=np.int64)
        for k, lot in enumerate(rec.lots):
            base = len(names)
            prefix = f"{lot.lot_id}/" if multi else ""
            names.extend(prefix + lv.name for lv in lot.levels)
            cap_level.extend(lot.capacity_by_level)
            cap_type += np.asarray(lot.capacity_by_type)
            for s in lot.spots:
                level.append(base + s.level)
                stype.append(int(s.type))
                lot_ix.append(k)
        # compact codes: group ids of millions of stays are gathered from these
        self.level = np.array(level, dtype=_code_dtype(len(names)))
        self.type = np.array(stype, dtype=np.int8)
        self.lot = np.array(lot_ix, dtype=_code_dtype(len(rec.lots)))
        self.level_names = names
        self.capacity_by_level = cap_level
        self.capacity_by_type = cap_type.tolist()
        self.capacity_by_lot = [lot.capacity for lot in rec.lots]
        self.capacity = int(sum(self.capacity_by_lot))

    @cached_property
    def ids(self) -> np.ndarray:
        """Spot ids (``"North/P2-017"`` in a network); only per-vehicle frames need them, and a
        city grid's half a million strings are not worth building for the figures."""
        return np.array(
            [
                f"{lot.lot_id}/{s.id}" if self._multi else s.id
                for lot in self._lots
                for s in lot.spots
            ],
            dtype=object,
        )


def vehicles_frame(rec: RunRecord) -> pd.DataFrame:
    """One row per arriving driver: who, when, where, how long they queued, what they paid."""
    d = rec.drivers
    sc = rec.scenario
    fac = Facility.of(rec)
    parked = rec.spot >= 0
    spot_ids = fac.ids
    level = pd.Categorical.from_codes(
        np.where(parked, fac.level[np.maximum(rec.spot, 0)], -1), categories=fac.level_names
    )
    stype = pd.Categorical.from_codes(
        np.where(parked, fac.type[np.maximum(rec.spot, 0)], -1),
        categories=[t.name for t in SpotType],
    )
    epoch = pd.Timestamp(sc.start)
    frame = pd.DataFrame(
        {
            "replication": np.full(len(d), rec.replication, dtype=REPLICATION_DTYPE),
            "vehicle": np.arange(len(d), dtype=np.int64),
            "stream": pd.Categorical.from_codes(d.stream, categories=[s.name for s in sc.demand]),
            "vehicle_class": pd.Categorical.from_codes(
                d.vclass, categories=[c.name for c in VehicleClass]
            ),
            "ev": d.ev,
            "handicap": d.handicap,
            "arrival_s": d.arrival,
            "arrival_time": times_of(epoch, d.arrival),
            "intended_dwell_s": d.dwell,
            "lot": pd.Categorical.from_codes(rec.lot_of, categories=fac.lot_names),
            "lots_tried": rec.tries,
            "search_km": rec.search_km,
            "entry_lane_wait_s": rec.entry_lane_start_t - rec.lot_arrival_t,
            "gate_s": rec.gate_t,
            "entry_s": rec.entry_t,
            "level": level,
            "spot": np.where(parked, spot_ids[np.maximum(rec.spot, 0)], None),
            "spot_type": stype,
            "leave_s": rec.leave_t,
            "exit_lane_wait_s": rec.exit_start_t - rec.leave_t,
            "exit_s": rec.exit_t,
            "amount": rec.amount_cents / 100.0,
            "quote": rec.quote_cents / 100.0,
            "outcome": pd.Categorical.from_codes(rec.outcome, categories=list(OUTCOMES)),
        }
    )
    return frame


def _has_lanes(sc: Scenario, direction: str) -> bool:
    """Whether any lot has barriers in this direction ("entry" or "exit")."""
    return any(
        spec.lanes is not None and getattr(spec.lanes, direction) is not None
        for spec in sc.lot_specs
    )


def _lanes(rec: RunRecord) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(lane, when a driver reached it, when its barrier service began) for each direction
    ("entry", "exit") where any lot has barriers."""
    every = (
        ("entry", rec.lot_arrival_t, rec.entry_lane_start_t),
        ("exit", rec.leave_t, rec.exit_start_t),
    )
    return [lane for lane in every if _has_lanes(rec.scenario, lane[0])]


def count_at(times: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """How many [start, end) intervals contain each time (end NaN = still open)."""
    s = np.sort(starts)
    e = np.sort(np.where(np.isnan(ends), np.inf, ends))
    return np.searchsorted(s, times, side="right") - np.searchsorted(e, times, side="right")


def groupings(
    rec: RunRecord, spot: np.ndarray
) -> list[tuple[str, list[str], np.ndarray, np.ndarray]]:
    """Every way of grouping spots: (kind, group names, capacities, group id per stay), for
    the stays' spots ``spot`` as :func:`stays` gives them.

    Kinds: ``total`` (one group), ``lot`` (networks only), ``level`` and ``spot_type`` (types
    the facility has). Group ids index the names; cars that did not park are left out, so
    figures for a thousand groups cost a few vectorised passes, not a mask per group.
    """
    fac = Facility.of(rec)
    kinds = [("total", ["all"], np.array([fac.capacity]), np.zeros(len(spot), dtype=np.int8))]
    if len(fac.lot_names) > 1:
        kinds.append(("lot", fac.lot_names, np.array(fac.capacity_by_lot), fac.lot[spot]))
    kinds.append(("level", fac.level_names, np.array(fac.capacity_by_level), fac.level[spot]))
    present = [t for t in SpotType if fac.capacity_by_type[t]]
    remap = np.full(len(SpotType), -1, dtype=np.int8)
    remap[[int(t) for t in present]] = np.arange(len(present))
    kinds.append(
        (
            "spot_type",
            [t.name for t in present],
            np.array([fac.capacity_by_type[t] for t in present]),
            remap[fac.type[spot]],
        )
    )
    return kinds


def stays(rec: RunRecord) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(spot, entry, leave) of every car that parked: the model's drivers, then the cars that
    operations components parked themselves (reservation holders)."""
    parked = rec.spot >= 0
    if parked.all():  # no copies (a city-day's columns are 55 MB each)
        spot, starts, ends = rec.spot, rec.entry_t, rec.leave_t
    else:
        spot, starts, ends = rec.spot[parked], rec.entry_t[parked], rec.leave_t[parked]
    ext = rec.external_stays
    if ext is not None and len(ext):
        spot = np.concatenate([spot, ext["spot"].to_numpy()])
        starts = np.concatenate([starts, ext["entry_t"].to_numpy(dtype=float)])
        ends = np.concatenate([ends, ext["leave_t"].to_numpy(dtype=float)])
    return spot, starts, ends


def group_counts_at(
    times: np.ndarray, gid: np.ndarray, n_groups: int, starts: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """(groups × times) array: how many [start, end) intervals of each group contain each time."""
    width = len(times) + 1

    def cumulative(points: np.ndarray) -> np.ndarray:
        first = np.searchsorted(times, points, side="left")  # first sample time >= point
        hist = np.bincount(gid.astype(np.int64) * width + first, minlength=n_groups * width)
        return np.cumsum(hist.reshape(n_groups, width), axis=1)[:, :-1]

    ends = np.where(np.isnan(ends), np.inf, ends)
    return cumulative(starts) - cumulative(ends)


def _overlap(starts: np.ndarray, ends: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """Seconds each stay spent inside [t0, t1): the same for every grouping, so computed once,
    in place (a city-day has 7 million stays)."""
    overlap = np.where(np.isnan(ends), t1, ends)
    np.minimum(overlap, t1, out=overlap)
    overlap -= np.maximum(starts, t0)
    return np.clip(overlap, 0.0, None, out=overlap)


class StayEvents:
    """Every stay's entry and exit in time order, exits first at equal times (the model's
    rule), sorted once and shared by every grouping's peak.

    Only the order is kept (int32 where it fits) and events are walked in chunks, so a
    city-day's 14 million events cost one sort and a few chunk-sized arrays, not a full
    re-sort with its copies per grouping.
    """

    CHUNK = 1 << 20

    def __init__(self, starts: np.ndarray, ends: np.ndarray) -> None:
        self.starts, self.ends, self.n = starts, ends, len(starts)
        times = np.concatenate([ends, starts])  # exits first: the stable sort keeps them ahead
        times[np.isnan(times)] = np.inf  # still parked at the horizon: never leaves
        order = np.argsort(times, kind="stable")
        del times
        self.order = order.astype(np.int32) if len(order) < 2**31 else order

    def peaks(self, gid: np.ndarray, n_groups: int, t0: float, t1: float) -> np.ndarray:
        """Exact maximum of each group's count over [t0, t1)."""
        never = np.full(n_groups, np.iinfo(np.int64).max)
        return self.walk(gid, n_groups, t0, t1, never)[0]

    def walk(
        self, gid: np.ndarray, n_groups: int, t0: float, t1: float, caps: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact maximum of each group's count over [t0, t1), and the seconds of [t0, t1)
        each group spent full (count at its capacity ``caps``): from the same walk, between
        each event and the group's next one."""
        starts, ends, n = self.starts, self.ends, self.n
        peak = np.bincount(gid[(starts <= t0) & ~(ends <= t0)], minlength=n_groups)
        count = np.zeros(n_groups, dtype=np.int64)
        last_t = np.full(n_groups, -np.inf)  # time of each group's latest event so far
        full_s = np.zeros(n_groups)
        caps = np.asarray(caps)
        lowest = np.iinfo(np.int64).min
        for lo in range(0, 2 * n, self.CHUNK):
            event = self.order[lo : lo + self.CHUNK]
            entering = event >= n
            stay = event - n * entering
            group = gid[stay]
            delta = np.where(entering, 1, -1)
            t = np.where(entering, starts[stay], ends[stay])
            del event, stay
            # within the chunk, each group's events in time order (a stable sort by group)
            by = np.argsort(group, kind="stable")
            group, delta, t = group[by], delta[by], t[by]
            first = np.flatnonzero(np.concatenate(([True], group[1:] != group[:-1])))
            length = np.diff(np.append(first, len(group)))
            running = np.cumsum(delta)
            base = count[group[first]] - (running[first] - delta[first])
            level = running + np.repeat(base, length)
            inside = (t >= t0) & (t < t1)
            best = np.maximum.reduceat(np.where(inside, level, lowest), first)
            groups = group[first]
            peak[groups] = np.maximum(peak[groups], best)
            # time full: [previous event of the group, this event) at the level before it
            at = np.where(np.isnan(t), np.inf, t)  # still parked at the horizon: never leaves
            since = np.empty_like(at)
            since[1:] = at[:-1]
            since[first] = last_t[groups]
            span = np.minimum(at, t1) - np.maximum(since, t0)
            is_full = (level - delta) >= caps[group]
            full_s += np.bincount(
                group, weights=np.where(is_full & (span > 0), span, 0.0), minlength=n_groups
            )
            count[groups] = level[first + length - 1]
            last_t[groups] = at[first + length - 1]
        tail = t1 - np.maximum(last_t, t0)
        full_s += np.where((count >= caps) & (tail > 0), tail, 0.0)
        return peak, full_s


def occupancy_frame(rec: RunRecord) -> pd.DataFrame:
    """Occupied spots per level, per spot type and in total, every ``output.interval_min``."""
    sc = rec.scenario
    step = sc.output.interval_min * 60.0
    times = np.arange(0.0, sc.horizon_s + step / 2, step)
    spot, starts, ends = stays(rec)
    rows = []
    for kind, names, caps, gid in groupings(rec, spot):
        counts = group_counts_at(times, gid, len(names), starts, ends)
        rows.append(
            pd.DataFrame(
                {
                    "time_s": np.tile(times, len(names)),
                    "group_kind": kind,
                    "group": np.repeat(names, len(times)),
                    "occupied": counts.ravel(),
                    "capacity": np.repeat(caps, len(times)),
                }
            )
        )
    frame = pd.concat(rows, ignore_index=True)
    frame.insert(0, "replication", np.full(len(frame), rec.replication, REPLICATION_DTYPE))
    frame.insert(2, "time", times_of(sc.start, frame["time_s"]))
    frame["occupied"] = frame["occupied"].astype(np.int64)
    frame["capacity"] = frame["capacity"].astype(np.int64)
    frame["occupancy"] = frame["occupied"] / frame["capacity"]
    frame["group_kind"] = pd.Categorical(frame["group_kind"], categories=GROUP_KINDS)
    frame["group"] = ordered_category(frame["group"].to_numpy())
    return frame


#: How ``occupancy`` groups spots (``lot`` in networks only), in this order.
GROUP_KINDS = ("total", "lot", "level", "spot_type")


def lanes_frame(rec: RunRecord) -> pd.DataFrame:
    """Vehicles waiting (not yet in service) at the entry and exit barriers over time."""
    sc = rec.scenario
    step = sc.output.interval_min * 60.0
    times = np.arange(0.0, sc.horizon_s + step / 2, step)
    rows = []
    for lane, arrive, start in _lanes(rec):
        used = ~np.isnan(start)  # balked or blocked drivers never joined the lane
        q = count_at(times, arrive[used], start[used])
        rows.append(pd.DataFrame({"time_s": times, "lane": lane, "queue": q}))
    if not rows:  # no lanes: an empty frame of the same types
        rows.append(
            pd.DataFrame(
                {"time_s": np.zeros(0), "lane": np.zeros(0, object), "queue": np.zeros(0, int)}
            )
        )
    frame = pd.concat(rows, ignore_index=True)
    frame.insert(0, "replication", np.full(len(frame), rec.replication, REPLICATION_DTYPE))
    frame["queue"] = frame["queue"].astype(np.int64)
    frame["lane"] = pd.Categorical(frame["lane"], categories=LANES)
    return frame


#: The barrier lanes, in the order a car meets them.
LANES = ("entry", "exit")


def rates_frame(rec: RunRecord) -> pd.DataFrame:
    """Adaptive pricing's rate trajectory: one row per rate table per adjustment."""
    frame = pd.DataFrame(rec.rates, columns=["time_s", "table", "rate", "occupancy_seen", "lot"])
    frame.insert(0, "replication", np.full(len(frame), rec.replication, REPLICATION_DTYPE))
    frame.insert(2, "time", times_of(rec.scenario.start, frame["time_s"]))
    return frame


def metrics(rec: RunRecord) -> dict[str, float]:
    """The headline figures of one replication, after warm-up, as a flat name → value map."""
    sc = rec.scenario
    d = rec.drivers
    t0, t1 = sc.warmup_s, sc.horizon_s
    days = (t1 - t0) / 86400.0
    after = d.arrival >= t0
    counted = after & (rec.outcome != DETERRED)  # deterred candidates never came
    n = int(counted.sum())
    out: dict[str, float] = {"arrivals": float(n), "arrivals_per_day": n / days}
    if np.isfinite(d.accept_u).any():  # price-elastic demand: who stayed away at the price
        out["deterred_per_day"] = float((after & (rec.outcome == DETERRED)).sum()) / days
    oc = rec.outcome[counted]
    pct = 100.0 / n if n else float("nan")
    out["parked"] = float((oc == PARKED).sum())
    out["blocked_pct"] = (oc == BLOCKED).sum() * pct
    out["balked_pct"] = (oc == BALKED).sum() * pct
    out["reneged_pct"] = (oc == RENEGED).sum() * pct
    if sc.operations is not None:  # components may send drivers away before the barrier
        out["turned_away_pct"] = (oc == TURNED_AWAY).sum() * pct
    # Drivers the run ended on before they parked or left: an overloaded barrier or a long
    # waiting line can hold most arrivals, which the shares above would not show. A figure for
    # every such outcome the scenario can produce (so replications have the same figures).
    if sc.behaviour.when_full == "wait":
        out["waiting_pct"] = (oc == WAITING).sum() * pct
    if _has_lanes(sc, "entry"):
        out["in_entry_lane_pct"] = (oc == QUEUED).sum() * pct
    if len(rec.lots) > 1:
        out["diverting_pct"] = (oc == DIVERTING).sum() * pct
    paid = (rec.leave_t >= t0) & (rec.leave_t < t1)
    revenue = float(np.nansum(rec.amount_cents[paid])) / 100.0
    ext = rec.external_stays
    if ext is not None and len(ext):  # parked by components, or by a start state: they pay
        ext_paid = (ext["leave_t"] >= t0) & (ext["leave_t"] < t1)
        revenue += float(np.nansum(ext.loc[ext_paid, "amount_cents"])) / 100.0
    if sc.operations is not None:  # cars parked by components (reservation holders)
        out["component_parked"] = 0.0
        if ext is not None and len(ext):
            entered = (ext["entry_t"] >= t0) & (ext["entry_t"] < t1)
            out["component_parked"] = float(entered.sum())
    out["revenue"] = revenue
    out["revenue_per_day"] = revenue / days
    charged = rec.amount_cents[paid]
    charged = charged[~np.isnan(charged)]  # NaN: the scenario has no tariff
    out["mean_price"] = float(charged.mean()) / 100.0 if len(charged) else float("nan")
    paid_stays = (rec.leave_t - rec.entry_t)[paid]
    out["mean_stay_h"] = float(paid_stays.mean()) / 3600.0 if len(paid_stays) else float("nan")
    spot, starts, ends = stays(rec)
    overlap = _overlap(starts, ends, t0, t1)
    events = StayEvents(starts, ends)
    for kind, names, caps, gid in groupings(rec, spot):
        means = np.bincount(gid, weights=overlap, minlength=len(names)) / (t1 - t0)
        peaks, full_s = events.walk(gid, len(names), t0, t1, caps)
        for name, cap, mean, peak, full in zip(names, caps, means, peaks, full_s, strict=True):
            prefix = "occupancy" if kind == "total" else f"occupancy.{kind}[{name}]"
            out[f"{prefix}.mean"] = float(mean) / cap
            out[f"{prefix}.peak"] = int(peak) / cap
            if kind == "total":
                out["occupied.mean"] = float(mean)
                out["time_full_pct"] = 100.0 * float(full) / (t1 - t0)
            elif kind == "lot":
                out[f"time_full_pct.lot[{name}]"] = 100.0 * float(full) / (t1 - t0)
    for lane, arrive, start in _lanes(rec):
        served = ~np.isnan(start) & (arrive >= t0)
        wait = start[served] - arrive[served]
        out[f"{lane}_wait_s.mean"] = float(wait.mean()) if len(wait) else 0.0
        out[f"{lane}_wait_s.p95"] = float(np.percentile(wait, 95)) if len(wait) else 0.0
    if len(rec.lots) > 1:
        out.update(_network_metrics(rec, counted, paid, days))
    out.update(rec.component_metrics)  # operations components' own figures
    return out


def _network_metrics(
    rec: RunRecord, counted: np.ndarray, paid: np.ndarray, days: float
) -> dict[str, float]:
    """City-level figures: diversions between lots, drivers lost to the network, search."""
    n = int(counted.sum())
    pct = 100.0 / n if n else float("nan")
    parked = rec.spot >= 0
    # lost: parked nowhere and gave up; drivers the run ended on while they waited for a spot
    # or drove to another lot are undecided, not lost (they have their own *_pct figures)
    undecided = (rec.outcome == WAITING) | (rec.outcome == DIVERTING)
    diverted = counted & (rec.search_km > 0)
    out = {
        "diverted_pct": float(diverted.sum()) * pct,
        "diverted_parked_pct": float((diverted & parked).sum()) * pct,
        "lost_pct": float((counted & ~parked & ~undecided).sum()) * pct,
        "search_km_per_day": float(rec.search_km[counted].sum()) / days,
    }
    # per lot, the drivers who headed for it first: how many, and what became of them
    first = rec.drivers.lot
    for k, lot in enumerate(rec.lots):
        wanted = counted & (first == k)
        m = int(wanted.sum())
        share = 100.0 / m if m else float("nan")
        lost = wanted & ~parked & ~undecided
        out[f"arrivals_per_day.lot[{lot.lot_id}]"] = m / days
        out[f"diverted_pct.lot[{lot.lot_id}]"] = float((wanted & (rec.search_km > 0)).sum()) * share
        out[f"lost_pct.lot[{lot.lot_id}]"] = float(lost.sum()) * share
        out[f"search_km_per_day.lot[{lot.lot_id}]"] = float(rec.search_km[wanted].sum()) / days
    charged = paid & ~np.isnan(rec.amount_cents)
    per_lot = np.bincount(
        rec.lot_of[charged], weights=rec.amount_cents[charged], minlength=len(rec.lots)
    )
    for lot, cents in zip(rec.lots, per_lot, strict=True):
        out[f"revenue_per_day.lot[{lot.lot_id}]"] = float(cents) / 100.0 / days
    return out
