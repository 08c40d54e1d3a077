"""Replay of a recorded day: a gate log's actual cars run through the model, as they came and
as long as they stayed, under the scenario as it is and under a change (tariff, facility).

Why recorded exits and not only arrival times: a planner asking "what would last Tuesday have
earned under the new tariff, and whom would the smaller deck have turned away" wants last
Tuesday's cars, stays included, not a fresh draw from the dwell law. The log becomes a trace
stream (:class:`twin.scenario.model.TraceSpec`: arrival and dwell columns, class and flags),
so nothing of the model is re-implemented: the replay is an ordinary run of the scenario whose
demand is the recorded cars.

What is read from the log (feed events of ``parktwin.adapters.events``, from a JSONL/CSV
recording or a foreign export through a ``Mapping``; every payload through the ``Intake``, so
bad ones are counted and dead-lettered, never fatal):

* a car is a ``gate_entry`` paired with its ``gate_exit`` by ``sessionId`` (else by
  ``identifiedVehicle``, first in first out). Its arrival is the entry barrier's time; its
  stay is exit − entry, or, when the log has the spot's sensor readings (``spaceId`` on the
  entry or exit and ``spot_reading`` events of that spot), from the spot reading occupied to
  the spot reading free inside the session: the time the tariff charges in the model
  (the exit lane's minutes are not parked time);
* the recorded times are barrier passages, queueing included: the replay runs without the
  scenario's entry and exit lanes (queueing them again would count the lanes twice);
* vehicle class from ``vehicleType`` when it names a class; EV and accessible-permit flags
  from the type of the recorded spot when it is one of the scenario's spots (an EV bay's car
  is taken for an EV, an accessible bay's for a permit holder: exact under the core's
  preference rules), else drawn from the scenario's shares;
* open tickets (an entry with no exit by the log's end): the stay is cut at the log's end
  (the car is still parked when the replay ends and is not charged inside it), not drawn;
* an exit with no entry (a car parked before the log starts), an entry without a session id
  or plate, or a second entry of a session still open: set aside, counted by reason;
* ``payment`` events with status ok are the revenue as paid, per day of payment.

The recorded cars came and paid: in the replay they take the price as it is (no
willingness-to-pay draw), so under the unchanged scenario every recorded car parks as it
did. A changed facility can turn them away (full: blocked, or reneged after the scenario's
patience when it waits); a changed tariff changes what they pay, not whether they come (the
replay has no price response; say so when quoting a tariff change).

Times: a log's wall-clock times as written (their own UTC offset dropped) are the scenario's
local times; the replay starts at midnight of the log's first day and runs whole days to the
end of its last, without a warm-up (the recorded day starts from the lot as the log shows it).
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.core.types import SpotType, VehicleClass
from twin.scenario.common import FIRST_START, LAST_END
from twin.scenario.model import LanesSpec, Scenario, StreamSpec, TraceSpec

#: Longest log a replay covers, days (ten years): the run and the per-day table go through
#: every day of it. A decade of one car replays in ~1 s; a log whose last event was dated
#: 2226 instead of 2026 (a typo's 73,000 days) ran for minutes without an end.
MAX_REPLAY_DAYS = 3653

#: Why a recorded event was not made into a car (besides the intake's dead-letter reasons).
SET_ASIDE = (
    "exit_without_entry",
    "entry_without_id",
    "entry_while_open",
)


class ReplayError(ValueError):
    """A log or scenario the replay cannot use: one line naming the file and what is wrong."""


@dataclass
class RecordedLog:
    """The cars of a gate log, and what the intake and the pairing set aside.

    ``cars``: one row per entry (``session``, ``entry``, ``exit`` (NaT: open), ``parked``
    and ``left`` (the spot's sensor times, else entry and exit), ``vclass`` (a class name or
    empty), ``spot`` (or None)). ``payments``: ``time``, ``value``, ``status``. Times naive
    (local wall time).
    """

    source: str
    cars: pd.DataFrame
    payments: pd.DataFrame
    intake: dict[str, Any]
    set_aside: Counter[str] = field(default_factory=Counter)
    end: datetime | None = None  # the last observed time in the log

    @property
    def start_day(self) -> datetime:
        return pd.Timestamp(self.cars.entry.min()).normalize().to_pydatetime()

    @property
    def span_s(self) -> float:
        """Seconds from the first entry's midnight to the log's end (at least past the last
        entry): the replay's horizon, so it covers what the log covers and no more."""
        assert self.end is not None
        start = pd.Timestamp(self.start_day)
        last_entry = (pd.Timestamp(self.cars.entry.max()) - start).total_seconds()
        return max((pd.Timestamp(self.end) - start).total_seconds(), last_entry + 1.0)

    @property
    def days(self) -> int:
        """Calendar days the log touches (the last one may be partial)."""
        return max(1, math.ceil(self.span_s / 86400.0 - 1e-9))


def _local(t: datetime) -> datetime:
    return t.replace(tzinfo=None)


def _sources(path: Path, mapping: Path | str | None) -> Iterable[Any]:
    from parktwin.adapters.sources import FileReplay, MappedExport, Mapping

    if mapping is not None:
        return MappedExport(path, Mapping.load(mapping))
    return FileReplay(path)


def read_log(
    path: Path | str,
    *,
    mapping: Path | str | None = None,
    dead_letter: Path | str | None = None,
) -> RecordedLog:
    """The cars of a recorded gate log (see the module docstring for what is read).

    Raises :class:`ReplayError` (one line) when the file cannot be read, its mapping is wrong,
    or no car can be made of it.
    """
    from parktwin.adapters.sources import Intake, MappingError

    path = Path(path)
    if path.is_dir():
        raise ReplayError(f"{path}: a folder, not a gate log (give the .jsonl or .csv)")
    if not path.is_file():
        raise ReplayError(f"{path}: no such file")
    # Receive times are about a live feed's devices, not a recording read back later.
    intake = Intake(dead_letter=Path(dead_letter) if dead_letter else None, receive_times=False)
    entries: list[dict[str, Any]] = []
    open_by: dict[str, int] = {}
    open_plate: dict[str, deque[int]] = defaultdict(deque)
    aside: Counter[str] = Counter()
    readings: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    pays: list[tuple[datetime, float, str]] = []
    end: datetime | None = None
    try:
        with intake:
            for ev in intake.events(_sources(path, mapping)):
                t = _local(ev.dateObserved)
                end = t if end is None or t > end else end
                kind = ev.kind
                if kind == "gate_entry":
                    key = ev.sessionId or ev.identifiedVehicle
                    if not key:
                        aside["entry_without_id"] += 1
                        continue
                    if ev.sessionId and key in open_by:
                        aside["entry_while_open"] += 1
                        continue
                    k = len(entries)
                    entries.append(
                        {
                            "session": key,
                            "entry": t,
                            "exit": None,
                            "vclass": (ev.vehicleType or "").strip().upper(),
                            "spot": ev.spaceId,
                        }
                    )
                    if ev.sessionId:
                        open_by[key] = k
                    else:
                        open_plate[key].append(k)
                elif kind == "gate_exit":
                    k = None
                    if ev.sessionId and ev.sessionId in open_by:
                        k = open_by.pop(ev.sessionId)
                    elif ev.identifiedVehicle and open_plate.get(ev.identifiedVehicle):
                        k = open_plate[ev.identifiedVehicle].popleft()
                    if k is None:
                        aside["exit_without_entry"] += 1
                        continue
                    entries[k]["exit"] = t
                    if ev.spaceId and not entries[k]["spot"]:
                        entries[k]["spot"] = ev.spaceId
                elif kind == "spot_reading":
                    readings[ev.spaceId].append((t, ev.status))
                elif kind == "payment":
                    pays.append((t, float(ev.value), ev.status))
    except (MappingError, OSError, UnicodeDecodeError) as exc:
        raise ReplayError(str(exc) if isinstance(exc, MappingError) else f"{path}: {exc}") from None
    report = intake.report()
    if not entries:
        reasons = ", ".join(f"{k} {v}" for k, v in report["by_reason"].items()) or "none"
        raise ReplayError(
            f"{path}: no gate entries to replay ({report['received']} events received, "
            f"{report['dead_lettered']} set aside: {reasons})"
        )
    first = min(e["entry"] for e in entries).replace(hour=0, minute=0, second=0, microsecond=0)
    assert end is not None
    if not (first >= FIRST_START and end < LAST_END):
        raise ReplayError(
            f"{path}: the log runs from {first:%Y-%m-%d} to {end:%Y-%m-%d}; dates must be "
            f"between {FIRST_START:%Y-%m-%d} and {LAST_END:%Y-%m-%d}"
        )
    if (end - first).total_seconds() > MAX_REPLAY_DAYS * 86_400:
        raise ReplayError(
            f"{path}: the log spans {(end - first).days:,} days ({first:%Y-%m-%d} to "
            f"{end:%Y-%m-%d}); a replay covers at most {MAX_REPLAY_DAYS:,} days (ten years): "
            "replay it in parts"
        )
    cars = pd.DataFrame(entries)
    cars["entry"] = pd.to_datetime(cars["entry"])
    cars["exit"] = pd.to_datetime(cars["exit"])
    cars["parked"], cars["left"] = _spot_times(cars, readings)
    payments = pd.DataFrame(pays, columns=["time", "value", "status"])
    payments["time"] = pd.to_datetime(payments["time"])
    return RecordedLog(str(path), cars, payments, report, aside, end)


def _spot_times(
    cars: pd.DataFrame, readings: dict[str, list[tuple[datetime, str]]]
) -> tuple[pd.Series, pd.Series]:
    """When each car took and left its spot, from the spot's sensor readings inside its
    session (first ``occupied`` at or after the entry, last ``free`` at or before the exit);
    the barrier times where the log has no such reading."""
    parked = cars["entry"].copy()
    left = cars["exit"].copy()
    by_spot: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for spot, rows in readings.items():
        rows.sort(key=lambda r: r[0])
        times = np.array([np.datetime64(t, "us") for t, _ in rows])
        status = np.array([s for _, s in rows])
        by_spot[spot] = (times, status)
    for k, (spot, entry, exit_) in enumerate(
        zip(cars["spot"], cars["entry"], cars["exit"], strict=True)
    ):
        if not isinstance(spot, str) or spot not in by_spot:
            continue
        times, status = by_spot[spot]
        lo = np.searchsorted(times, np.datetime64(entry, "us"), side="left")
        hi = (
            len(times)
            if pd.isna(exit_)
            else np.searchsorted(times, np.datetime64(exit_, "us"), side="right")
        )
        occ = np.flatnonzero(status[lo:hi] == "occupied")
        if len(occ):
            parked.iat[k] = pd.Timestamp(times[lo + occ[0]])
            free = np.flatnonzero(status[lo + occ[0] : hi] == "free")
            if len(free) and not pd.isna(exit_):
                left.iat[k] = pd.Timestamp(times[lo + occ[0] + free[-1]])
    return parked, left


# -- the log as a trace stream -------------------------------------------------------------------


def trace_frame(log: RecordedLog, scenario: Scenario) -> pd.DataFrame:
    """The trace the replay runs: seconds since the log's first midnight, stays in seconds
    (open tickets: to past the replay's end), class, and flags from the spot's type."""
    from twin.sim.build import build_lot

    start = pd.Timestamp(log.start_day)
    horizon = log.span_s
    cars = log.cars
    arrival = (cars["entry"] - start).dt.total_seconds().to_numpy()
    parked = (cars["parked"] - start).dt.total_seconds().to_numpy()
    left = (cars["left"] - start).dt.total_seconds().to_numpy()
    # the stay in the spot; an open ticket stays past the replay's end (cut at the log's end)
    dwell = np.where(np.isnan(left), horizon - parked + 86400.0, left - parked)
    dwell = np.maximum(dwell, 0.0)
    classes = set(VehicleClass.__members__)
    vclass = [c if c in classes else "" for c in cars["vclass"].fillna("")]
    type_of = {s.id: s.type for s in build_lot(scenario).spots}
    ev, handicap = [], []
    for spot in cars["spot"]:
        kind = type_of.get(spot) if isinstance(spot, str) else None
        ev.append("" if kind is None else str(kind == SpotType.EV).lower())
        handicap.append("" if kind is None else str(kind == SpotType.HANDICAP).lower())
    return pd.DataFrame(
        {
            "arrival": arrival,
            "dwell": dwell,
            "class": vclass,
            "ev": ev,
            "handicap": handicap,
            "session": cars["session"].astype(str).to_numpy(),
        }
    )


def replay_scenario(scenario: Scenario, log: RecordedLog, trace_path: Path) -> Scenario:
    """``scenario`` with the recorded cars as its only demand (see the module docstring)."""
    if len(scenario.lot_specs) != 1:
        raise ReplayError(
            f"{scenario.name}: replay runs one lot; give a scenario with one facility"
        )
    streams = scenario.demand
    weights = np.ones(len(streams))
    stream = StreamSpec(
        name="recorded",
        trace=TraceSpec(
            path=trace_path,
            time_column="arrival",
            time_unit="s",
            dwell_column="dwell",
            dwell_unit="s",
            class_column="class",
            ev_column="ev",
            handicap_column="handicap",
        ),
        # unknown flags are drawn from the scenario's own shares
        ev_share=float(np.average([s.ev_share for s in streams], weights=weights)),
        handicap_share=float(np.average([s.handicap_share for s in streams], weights=weights)),
    )
    update: dict[str, Any] = {
        "demand": [stream],
        "start": log.start_day,
        "horizon_days": log.span_s / 86400.0,
        "warmup_hours": 0.0,
        "lanes": LanesSpec(),
        # the recorded cars came and paid: no willingness-to-pay draw turns them away
        "behaviour": scenario.behaviour.model_copy(update={"willingness_to_pay": None}),
    }
    if scenario.lots:
        update["lots"] = [lot.model_copy(update={"lanes": None}) for lot in scenario.lots]
    return scenario.model_copy(update=update)


# -- per-day figures ---------------------------------------------------------------------------

#: Per-day columns, in table order (``revenue`` as charged in the run, as paid in the log).
DAY_COLUMNS = (
    "arrivals",
    "parked",
    "turned_away",
    "revenue",
    "occupancy_mean",
    "occupancy_peak",
)


def day_figures(
    start: datetime,
    days: int,
    capacity: int,
    arrival: np.ndarray,
    parked: np.ndarray,
    entry: np.ndarray,
    leave: np.ndarray,
    paid_t: np.ndarray,
    paid: np.ndarray,
    window: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Per calendar day: arrivals, parked, turned away, revenue (by the day it was charged),
    mean occupancy (exact, from the stays, over the part of the day inside ``window``, the
    seconds the run or log covers; default whole days) and peak occupancy, as shares of
    ``capacity``. Times in seconds since ``start`` (a midnight); ``leave`` NaN: still parked."""
    w0, w1 = window if window is not None else (0.0, days * 86400.0)
    rows = []
    day = np.floor(arrival / 86400.0)
    pay_day = np.floor(paid_t / 86400.0)
    stays = ~np.isnan(entry)
    s = entry[stays]
    e = np.where(np.isnan(leave[stays]), np.inf, leave[stays])
    order_s, order_e = np.sort(s), np.sort(e)
    for d in range(days):
        lo, hi = max(d * 86400.0, w0), min((d + 1) * 86400.0, w1)
        mine = day == d
        overlap = np.clip(np.minimum(e, hi) - np.maximum(s, lo), 0.0, None).sum()
        # the count just after each change inside the day, and at its start
        points = np.concatenate(([lo], s[(s >= lo) & (s < hi)]))
        counts = np.searchsorted(order_s, points, side="right") - np.searchsorted(
            order_e, points, side="right"
        )
        rows.append(
            {
                "date": (pd.Timestamp(start) + pd.Timedelta(days=d)).date().isoformat(),
                "arrivals": int(mine.sum()),
                "parked": int((mine & parked).sum()),
                "turned_away": int((mine & ~parked).sum()),
                "revenue": round(float(np.nansum(paid[pay_day == d])), 2),
                "occupancy_mean": float(overlap / (hi - lo) / capacity) if hi > lo else math.nan,
                "occupancy_peak": float(counts.max() / capacity) if len(counts) else 0.0,
            }
        )
    return pd.DataFrame(rows)


def run_days(vehicles: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """:func:`day_figures` of a run's vehicles frame (one replication); used for the replay
    and, in tests, for the original run the log was emitted from."""
    from twin.sim.build import build_lot

    start = pd.Timestamp(scenario.start).normalize()
    shift = (pd.Timestamp(scenario.start) - start).total_seconds()
    capacity = len(build_lot(scenario).spots)
    days = math.ceil(scenario.horizon_days + shift / 86400.0 - 1e-9)
    leave = vehicles.leave_s.to_numpy(dtype=float) + shift
    amount = vehicles.amount.to_numpy(dtype=float)
    return day_figures(
        start.to_pydatetime(),
        days,
        capacity,
        vehicles.arrival_s.to_numpy(dtype=float) + shift,
        vehicles.spot.notna().to_numpy(),
        vehicles.entry_s.to_numpy(dtype=float) + shift,
        leave,
        leave[~np.isnan(amount)],
        amount[~np.isnan(amount)],
        (shift, shift + scenario.horizon_days * 86400.0),
    )


def log_days(log: RecordedLog, capacity: int) -> pd.DataFrame:
    """The log's own per-day figures: its cars as recorded, its payments as paid (revenue NaN
    when the log has no payments); nobody recorded was turned away (a gate log does not see
    the cars that never entered), so ``turned_away`` is NaN."""
    start = pd.Timestamp(log.start_day)
    cars = log.cars
    secs = lambda col: (cars[col] - start).dt.total_seconds().to_numpy()  # noqa: E731
    pays = log.payments[log.payments.status == "ok"]
    out = day_figures(
        log.start_day,
        log.days,
        capacity,
        secs("entry"),
        np.ones(len(cars), dtype=bool),
        secs("parked"),
        secs("left"),
        (pays.time - start).dt.total_seconds().to_numpy(),
        pays.value.to_numpy(dtype=float),
        (0.0, log.span_s),
    )
    out["turned_away"] = np.nan
    if log.payments.empty:
        out["revenue"] = np.nan
    return out


@dataclass
class Replay:
    """The comparison: per day and source (``recorded``, ``as-is``, ``changed``), the figures
    of :data:`DAY_COLUMNS`; the runs themselves (``runs``: RunResult by source) and the log."""

    days: pd.DataFrame
    runs: dict[str, Any]
    log: RecordedLog
    trace: pd.DataFrame
    change: str | None = None

    def totals(self) -> pd.DataFrame:
        """Per source: sums of counts and revenue, means of the occupancy figures."""
        g = self.days.groupby("source", sort=False)
        out = g[["arrivals", "parked", "turned_away", "revenue"]].sum(min_count=1)
        out["occupancy_mean"] = g["occupancy_mean"].mean()
        out["occupancy_peak"] = g["occupancy_peak"].max()
        return out


def replay(
    log: RecordedLog,
    scenario: Scenario,
    changed: Scenario | None = None,
    *,
    change: str | None = None,
    seed: int | None = None,
    workdir: Path | None = None,
) -> Replay:
    """Run the recorded cars through ``scenario`` (and ``changed``, e.g. a smaller facility
    or another tariff) and compare per day with the log (see the module docstring)."""
    from twin.experiments import run
    from twin.sim.build import build_lot

    for sc in (scenario, changed):
        if sc is not None and len(sc.lot_specs) != 1:
            raise ReplayError(f"{sc.name}: replay runs one lot; give a scenario with one facility")
    trace = trace_frame(log, scenario)
    with tempfile.TemporaryDirectory(prefix="parktwin-replay-") as tmp:
        path = Path(workdir or tmp) / "replay_trace.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        trace.to_csv(path, index=False)
        runs: dict[str, Any] = {}
        frames = [log_days(log, len(build_lot(scenario).spots)).assign(source="recorded")]
        for name, sc in (("as-is", scenario), ("changed", changed)):
            if sc is None:
                continue
            rsc = replay_scenario(sc, log, path)
            result = run(rsc, replications=1, seed=seed, frames=("vehicles",))
            runs[name] = result
            frames.append(run_days(result.vehicles, rsc).assign(source=name))
    days = pd.concat(frames, ignore_index=True)[["date", "source", *DAY_COLUMNS]]
    return Replay(days, runs, log, trace, change)


__all__ = [
    "DAY_COLUMNS",
    "MAX_REPLAY_DAYS",
    "SET_ASIDE",
    "RecordedLog",
    "Replay",
    "ReplayError",
    "day_figures",
    "log_days",
    "read_log",
    "replay",
    "replay_scenario",
    "run_days",
    "trace_frame",
]
