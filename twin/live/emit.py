"""A simulated lot's device feed: the per-vehicle records of a run turned into the events of
``parktwin.adapters.events`` (gate entry/exit, plate reads, spot sensor readings, sensor
heartbeats, counter snapshots, payments), with faults injected on a schedule and recorded in a
ground-truth file so a divergence detector can be scored.

Why from the records and not from inside the simulation: the records already hold every
time that a real lot's devices would report (barrier passed, spot taken and left, paid),
so the model stays untouched, and a fault is an edit of the feed (what the devices say), not
of the lot (what happens) -- except a demand surge, which changes what happens: the scenario
is re-run with extra arrivals from the surge's start (extra trace streams drawn at
``percent`` % of each stream's own arrivals; ``_surged``), the smallest hook the model has.

A driver refused at the barrier (blocked, or reneged when its patience ran out: its reach time
plus its drawn patience) is read by the entrance camera leaving the lane (``plate_read``,
direction ``out``). Cars the run parks outside its drivers -- a start state's
(``start_state``), reservation holders, and the reservations themselves -- are turned into
events by twin/live/emit_stays.py.

Times: the scenario's clock is taken as UTC (events carry timezone-aware times).

Faults (YAML: a list under ``faults:``, or the same dicts in Python); ``start``/``end`` are
ISO date-times or hours after the scenario start; ``end`` may be left out (until the end):

* ``{kind: sensor_stuck, spot: P2-017, state: occupied, start: 30}``: the sensor reports
  ``state`` from ``start`` and nothing else (heartbeats continue);
* ``{kind: sensor_dead, spot: P1-005, start: 40}``: no readings and no heartbeats;
* ``{kind: demand_surge, percent: 50, start: 60, end: 64}``: +50 % arrivals;
* ``{kind: payment_outage, start: 80, end: 81, mode: offline}`` (or ``declined``);
* ``{kind: counter_miss, share: 0.2, start: 90, end: 96}``: the site counter misses 20 % of
  the entries in the window;
* ``{kind: gate_offline, device: gate-in, start: 100, end: 101}``: the device cannot send;
  its events of the window arrive in one burst at ``end`` with their old observed times and
  ``buffered: true`` (the mirror must end in the same state as if they came live).

Ground truth (``write_ground_truth``, JSON): ``{"schema": "parktwin.faults/1", "scenario",
"seed", "epoch", "faults": [{"kind", "start", "end", "devices", "params"}]}`` with ISO
times (``end`` null: until the feed ends) and the device ids whose events the fault edits.
"""

from __future__ import annotations

import json
import math
import tempfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

from twin.live.emit_events import gate_entry, gate_exit, payment, plate_read, spot_reading
from twin.live.emit_stays import hold_events, initial_events, reservation_events
from twin.scenario.model import Scenario, StreamSpec, TraceSpec
from twin.scenario.state import StartState

#: Shortest heartbeat or counter period, minutes: every bay reports once a period, so a
#: period of a nanosecond asked for terabytes (a device that reports more often streams).
MIN_PERIOD_MIN = 1.0
FAULT_KINDS = (
    "sensor_stuck",
    "sensor_dead",
    "demand_surge",
    "payment_outage",
    "counter_miss",
    "gate_offline",
)
#: Device ids: one sensor per spot ``sensor-<spot>``, and these.
GATE_IN, GATE_OUT, CAMERA_IN, PAY, COUNTER = (
    "gate-in",
    "gate-out",
    "cam-in",
    "pay-station",
    "counter-site",
)


class FaultError(ValueError):
    """A fault schedule that cannot be used: one line naming the entry and the field."""


@dataclass(frozen=True)
class Fault:
    """One scheduled fault; times in seconds after the scenario start (``end`` None: open)."""

    kind: Literal[
        "sensor_stuck",
        "sensor_dead",
        "demand_surge",
        "payment_outage",
        "counter_miss",
        "gate_offline",
    ]
    start: float
    end: float | None = None
    spot: str | None = None
    state: Literal["free", "occupied"] = "occupied"
    percent: float = 50.0
    share: float = 0.2
    mode: Literal["offline", "declined"] = "offline"
    device: str = "gate-in"

    def active(self, t: float) -> bool:
        return t >= self.start and (self.end is None or t < self.end)


def _seconds(value: Any, epoch: datetime, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not np.isfinite(value):
            raise FaultError(f"{where}: must be finite hours or an ISO date-time")
        return float(value) * 3600.0
    if isinstance(value, datetime):
        t = value
    else:
        try:
            t = datetime.fromisoformat(str(value))
        except ValueError:
            raise FaultError(f"{where}: '{value}' is neither hours nor an ISO date-time") from None
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    return (t - epoch).total_seconds()


def parse_faults(entries: Any, epoch: datetime, where: str = "faults") -> list[Fault]:
    """Checked faults from YAML-like data (a list, or a mapping with a ``faults`` list)."""
    if isinstance(entries, dict):
        entries = entries.get("faults", [])
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise FaultError(f"{where}: expected a list of faults")
    faults = []
    allowed = {"kind", "start", "end", "spot", "state", "percent", "share", "mode", "device"}
    for i, e in enumerate(entries):
        at = f"{where}[{i}]"
        if not isinstance(e, dict):
            raise FaultError(f"{at}: expected a mapping with kind and start")
        kind = e.get("kind")
        if kind not in FAULT_KINDS:
            raise FaultError(f"{at}.kind: '{kind}' not allowed; allowed: {', '.join(FAULT_KINDS)}")
        extra = sorted(set(e) - allowed)
        if extra:
            raise FaultError(f"{at}.{extra[0]}: unknown key; allowed: {', '.join(sorted(allowed))}")
        if "start" not in e:
            raise FaultError(f"{at}.start: required (hours after the start or ISO date-time)")
        start = _seconds(e["start"], epoch, f"{at}.start")
        end = None if e.get("end") is None else _seconds(e["end"], epoch, f"{at}.end")
        if end is not None and end <= start:
            raise FaultError(f"{at}.end: must be after start")
        if kind in ("sensor_stuck", "sensor_dead") and not e.get("spot"):
            raise FaultError(f"{at}.spot: required for {kind} (a spot id such as P2-017)")
        state = e.get("state", "occupied")
        if state not in ("free", "occupied"):
            raise FaultError(f"{at}.state: '{state}' not allowed; allowed: free, occupied")
        mode = e.get("mode", "offline")
        if mode not in ("offline", "declined"):
            raise FaultError(f"{at}.mode: '{mode}' not allowed; allowed: offline, declined")
        percent = float(e.get("percent", 50.0))
        share = float(e.get("share", 0.2))
        if not (np.isfinite(percent) and 0 < percent <= 1000):
            raise FaultError(f"{at}.percent: must be in (0, 1000]")
        if not 0 < share <= 1:
            raise FaultError(f"{at}.share: must be in (0, 1]")
        device = str(e.get("device", GATE_IN))
        if kind == "gate_offline" and end is None:
            raise FaultError(f"{at}.end: required for gate_offline (when the buffer is uploaded)")
        if device not in (GATE_IN, GATE_OUT, CAMERA_IN, PAY):
            raise FaultError(
                f"{at}.device: '{device}' not allowed; allowed: {GATE_IN}, {GATE_OUT}, "
                f"{CAMERA_IN}, {PAY}"
            )
        faults.append(Fault(kind, start, end, e.get("spot"), state, percent, share, mode, device))
    return faults


def load_faults(path: Path | str, epoch: datetime) -> list[Fault]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise FaultError(
            f"{path}: cannot read the fault schedule ({exc.__class__.__name__})"
        ) from None
    return parse_faults(data, epoch, str(path))


# -- the demand surge: extra arrivals as trace streams --------------------------------------


def _surged(scenario: Scenario, surges: Sequence[Fault], seed: int, workdir: Path) -> Scenario:
    """The scenario with, for each surge, extra drivers arriving at ``percent`` % of each
    stream's own rate inside the surge window, added as trace streams (same class, dwell
    law, willingness to pay and patience as the stream they copy)."""
    from twin import api

    horizon = scenario.horizon_days * 86400.0
    extra_streams: list[StreamSpec] = []
    for k, fault in enumerate(surges):
        boost = scenario.model_copy(
            update={
                "demand": [
                    s.model_copy(update={"multiplier": s.multiplier * fault.percent / 100.0})
                    for s in scenario.demand
                    if s.trace is None
                ],
                "seed": seed + 7919 * (k + 1),
                "initial": "empty",  # only its drivers' draws are used
            }
        )
        veh = api.run(boost, replications=1, frames=("vehicles",)).vehicles
        end = horizon if fault.end is None else fault.end
        inside = veh[(veh.arrival_s >= fault.start) & (veh.arrival_s < end)]
        for stream in scenario.demand:
            if stream.trace is not None:
                continue
            rows = inside[inside.stream == stream.name]
            if rows.empty:
                continue
            path = workdir / f"surge{k}_{stream.name}.csv"
            pd.DataFrame(
                {"arrival": rows.arrival_s.to_numpy(), "dwell": rows.intended_dwell_s.to_numpy()}
            ).to_csv(path, index=False)
            trace = TraceSpec.model_construct(
                path=path,
                time_column="arrival",
                time_unit="s",
                dwell_column="dwell",
                dwell_unit="s",
                class_column=None,
                ev_column=None,
                handicap_column=None,
            )
            extra_streams.append(
                stream.model_copy(
                    update={
                        "name": f"{stream.name}__surge{k}",
                        "rate_per_hour": None,
                        "profile": None,
                        "trace": trace,
                        "multiplier": 1.0,
                        "elasticity": None,
                    }
                )
            )
    return scenario.model_copy(update={"demand": [*scenario.demand, *extra_streams]})


# -- events ------------------------------------------------------------------------------


@dataclass
class Emitted:
    """The feed: JSON lines in observed-time order, and what was injected."""

    lines: list[str]
    faults: list[Fault]
    epoch: datetime
    scenario: str
    seed: int
    devices: dict[int, list[str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    #: cars parked when the feed begins (a start state's), and reservations reported
    initial: int = 0
    reservations: int = 0
    #: the run's reservation bookings (``reservations_bookings`` frame), if it has any
    bookings: pd.DataFrame | None = None

    def ground_truth(self) -> dict[str, Any]:
        def iso(s: float | None) -> str | None:
            return None if s is None else (self.epoch + timedelta(seconds=s)).isoformat()

        out = []
        for i, f in enumerate(self.faults):
            params = {
                "sensor_stuck": {"spot": f.spot, "state": f.state},
                "sensor_dead": {"spot": f.spot},
                "demand_surge": {"percent": f.percent},
                "payment_outage": {"mode": f.mode},
                "counter_miss": {"share": f.share},
                "gate_offline": {"device": f.device},
            }[f.kind]
            out.append(
                {
                    "kind": f.kind,
                    "start": iso(f.start),
                    "end": iso(f.end),
                    "devices": self.devices.get(i, []),
                    "params": params,
                }
            )
        return {
            "schema": "parktwin.faults/1",
            "scenario": self.scenario,
            "seed": self.seed,
            "epoch": self.epoch.isoformat(),
            "faults": out,
        }


def emit(
    scenario: Scenario,
    *,
    faults: Sequence[Fault] = (),
    seed: int | None = None,
    days: float | None = None,
    heartbeat_min: float = 15.0,
    counter_min: float = 5.0,
    start_state: Any = None,
) -> Emitted:
    """Simulate one replication of ``scenario`` and return its device feed with ``faults``.

    ``start_state`` (``"steady"``, a state file or mapping, a StartState; default the
    scenario's own ``initial``) begins the lot from it: the feed then starts with the cars
    parked (their bays read occupied at the first instant; see twin/live/emit_stays.py).
    """
    from twin import api
    from twin.sim.build import build_lot

    for name, period in (("heartbeat_min", heartbeat_min), ("counter_min", counter_min)):
        if not (math.isfinite(period) and period >= MIN_PERIOD_MIN):
            raise ValueError(f"{name} must be at least {MIN_PERIOD_MIN:g} minute, got {period:g}")
    if len(scenario.lot_specs) != 1:
        raise FaultError("emit simulates one lot: give a scenario with one facility")
    if start_state is not None:
        scenario = api.start_from(scenario, start_state, warmup_hours=scenario.warmup_hours)
    if days is not None:
        # The warm-up keeps time out of a run's figures and changes nothing in the run; emit
        # reports no figures and sends the whole run from its first instant, so a feed
        # shorter than the warm-up is a feed like any (tests/live/test_feed_emit.py)
        warm = scenario.warmup_hours
        if warm != "auto" and 0 < days < math.inf and warm >= days * 24:
            scenario = scenario.model_copy(update={"warmup_hours": 0.0})
        scenario = api._with_days(scenario, days)
    seed = scenario.seed if seed is None else seed
    scenario = scenario.model_copy(update={"seed": seed})
    epoch = scenario.start.replace(tzinfo=UTC)
    horizon = scenario.horizon_days * 86400.0
    surges = [f for f in faults if f.kind == "demand_surge"]
    with tempfile.TemporaryDirectory(prefix="parktwin-emit-") as tmp:
        run_scenario = _surged(scenario, surges, seed, Path(tmp)) if surges else scenario
        sim = _simulate(run_scenario)
    veh = sim.vehicles
    lot = build_lot(scenario)
    site = scenario.lot_specs[0].facility.name
    level_of = {s.id: lot.levels[s.level].name for s in lot.spots}
    capacity = len(lot.spots)
    for f in faults:
        if f.spot is not None and f.spot not in level_of:
            raise FaultError(
                f"faults: spot '{f.spot}' is not in {site} (spot ids look like {lot.spots[0].id})"
            )
    rng = np.random.default_rng([seed, zlib.crc32(b"emit-faults")])

    events: list[tuple[float, int, dict[str, Any]]] = []

    def add(t: float, order: int, kind: str, eid: str, device: str, **fields: Any) -> None:
        events.append((t, order, {"kind": kind, "id": eid, "refDevice": device, **fields}))

    # Vectors out of the frame once: iterating rows of a DataFrame is slow.
    vid = veh.vehicle.to_numpy()
    entry = veh.entry_s.to_numpy(dtype=float)
    # The barrier opens for a car when the lot gives it a spot (``entry_s``): that is the
    # gate entry. The model's ``gate_s`` is when the car reached the barrier, where the
    # entrance camera reads its plate; for a driver refused there (blocked; or waited and
    # reneged) no entry follows, and for one who waited the entry comes later. (Entries at
    # ``gate_s`` left refused cars inside for ever: a replayed or mirrored log held sessions
    # that never ended.)
    reach = veh.gate_s.to_numpy(dtype=float)
    gate = entry
    leave = veh.leave_s.to_numpy(dtype=float)
    exit_ = veh.exit_s.to_numpy(dtype=float)
    amount = veh.amount.to_numpy(dtype=float)
    spot = veh.spot.to_numpy(dtype=object)
    vclass = veh.vehicle_class.astype(str).to_numpy()
    outcome = veh.outcome.astype(str).to_numpy()
    patience = sim.patience
    for i in range(len(veh)):
        r = reach[i]
        if not np.isfinite(r):
            continue
        v = int(vid[i])
        session = f"S{v:07d}"
        plate = f"PT{v:06d}"
        plate_read(add, r, session, CAMERA_IN, plate, "plate-in", "in")
        g = gate[i]
        if not np.isfinite(g):
            # refused at the barrier: gone at once (blocked) or when its patience ran out
            # (reneged); the entrance camera sees it leave the lane (the mirror's queue ends)
            gone = r + patience[v] if outcome[i] == "reneged" else r
            if outcome[i] in ("blocked", "reneged"):
                plate_read(add, gone, session, CAMERA_IN, plate, "plate-gone", "out")
            continue
        sp = spot[i] if isinstance(spot[i], str) else None
        gate_entry(add, g, session, GATE_IN, plate, vclass[i], sp)
        if sp is not None and np.isfinite(entry[i]):
            level = level_of.get(sp)
            spot_reading(add, entry[i], session, sp, "occ", "occupied", level)
            if np.isfinite(leave[i]):
                spot_reading(add, leave[i], session, sp, "free", "free", level)
        if np.isfinite(exit_[i]):
            if np.isfinite(amount[i]):
                value = round(float(amount[i]), 2)
                payment(add, exit_[i], session, PAY, f"T{v:07d}", value)
            start = (epoch + timedelta(seconds=float(g))).isoformat()
            gate_exit(add, exit_[i], session, GATE_OUT, plate, sp, start)

    # Cars the run parked outside its drivers: a start state's and reservation holders.
    spot_ids = [s_.id for s_ in lot.spots]
    stays = sim.stays
    initial_events(
        stays.iloc[: sim.n_initial], spot_ids, level_of, epoch, add, (GATE_IN, GATE_OUT, PAY)
    )
    initial_state = scenario.initial if isinstance(scenario.initial, StartState) else None
    taken = {int(x) for x in stays["spot"].to_numpy()[: sim.n_initial]}
    hold_events(initial_state, lot, taken, horizon, add)
    n_reservations = 0
    if sim.bookings is not None:
        res_spec = scenario.operations.reservations  # type: ignore[union-attr]
        n_reservations = reservation_events(
            sim.bookings,
            res_spec.vehicle_class,
            epoch,
            level_of,
            add,
            (CAMERA_IN, GATE_IN, GATE_OUT, PAY),
        )
    ext_entry = stays["entry_t"].to_numpy(dtype=float)
    ext_leave = stays["leave_t"].to_numpy(dtype=float)
    ext_spot = np.array([spot_ids[int(x)] for x in stays["spot"].to_numpy()], dtype=object)

    # Heartbeats: every sensor every heartbeat_min, staggered by a per-sensor offset.
    period = heartbeat_min * 60.0
    for s in lot.spots:
        offset = (zlib.crc32(s.id.encode()) % 1000) / 1000.0 * period
        for j, t in enumerate(np.arange(offset, horizon, period)):
            add(
                float(t),
                6,
                "heartbeat",
                f"hb-{s.id}-{j}",
                f"sensor-{s.id}",
                spaceId=s.id,
                batteryLevel=0.9,
            )

    # Counter snapshots (what the gate loops count), with counter_miss faults applied.
    misses = [f for f in faults if f.kind == "counter_miss"]
    # (a start state's cars were counted in before the feed began: entry times <= 0)
    entries_t = np.sort(np.concatenate([gate[np.isfinite(gate)], ext_entry]))
    counted = np.ones(len(entries_t), dtype=bool)
    for f in misses:
        in_window = (entries_t >= f.start) & (entries_t < (f.end if f.end is not None else np.inf))
        counted &= ~(in_window & (rng.random(len(entries_t)) < f.share))
    counted_t = entries_t[counted]
    exits_t = np.sort(
        np.concatenate([exit_[np.isfinite(exit_)], ext_leave[np.isfinite(ext_leave)]])
    )
    step = counter_min * 60.0
    snaps = np.arange(step, horizon + 1e-9, step)

    def counters(ins: np.ndarray, outs: np.ndarray, cap: int, device: str, prefix: str, **extra):
        """A counter snapshot every ``counter_min``: cars counted in and out so far (sorted
        times) and the free places they leave, never below 0 nor above ``cap``."""
        n_ins = np.searchsorted(ins, snaps, side="right")
        n_outs = np.searchsorted(outs, snaps, side="right")
        for j, t in enumerate(snaps):
            n_in, n_out = int(n_ins[j]), int(n_outs[j])
            add(
                float(t),
                7,
                "counter",
                f"{prefix}{j}",
                device,
                **extra,
                totalSpotNumber=cap,
                availableSpotNumber=int(min(cap, max(0, cap - (n_in - n_out)))),
                vehicleEntranceCount=n_in,
                vehicleExitCount=n_out,
            )

    counters(counted_t, exits_t, capacity, COUNTER, "cnt-")

    # Per-level counters (ramp loops: a car counts on a level from taking its spot to leaving
    # it), device ``counter-<level>``; the mirror falls back on them where sensors are not
    # trusted. counter_miss faults edit the site counter only.
    level_names = [lv.name for lv in lot.levels]
    level_cap = {name: 0 for name in level_names}
    for s_ in lot.spots:
        level_cap[lot.levels[s_.level].name] += 1
    all_spots = np.concatenate([spot, ext_spot])
    all_in = np.concatenate([entry, ext_entry])
    all_out = np.concatenate([leave, ext_leave])
    lv_arr = np.array([level_of.get(x, "") if isinstance(x, str) else "" for x in all_spots])
    for name in level_names:
        on = (lv_arr == name) & np.isfinite(all_in)
        ins = np.sort(all_in[on])
        outs = np.sort(all_out[on & np.isfinite(all_out)])
        cap = level_cap[name]
        counters(ins, outs, cap, f"counter-{name}", f"cnt-{name}-", level=name)

    devices: dict[int, list[str]] = {}
    events = _apply_faults(events, faults, devices)
    # Arrival order; a buffered burst keeps its devices' observed order (stable sort).
    events.sort(key=lambda e: (e[0], e[1], e[2].get("_observed", e[0]), e[2]["id"]))
    kept = [(ev.pop("_observed", t), ev) for t, _, ev in events if t <= horizon]
    # Times formatted in one vectorised pass (µs resolution), JSON by one shared encoder:
    # a week of the downtown garage is ~400,000 events.
    base = np.datetime64(scenario.start.replace(tzinfo=None), "us")
    micros = np.round(np.array([t for t, _ in kept], dtype=float) * 1e6).astype("int64")
    stamps = np.datetime_as_string(base + micros.astype("timedelta64[us]"), unit="us")
    encode = json.JSONEncoder(separators=(",", ":")).encode
    lines = []
    counts: dict[str, int] = {}
    for (_, ev), stamp in zip(kept, stamps, strict=True):
        ev["dateObserved"] = f"{stamp}+00:00"
        ev["refParkingSite"] = site
        if ev.get("spaceId", 0) is None:
            del ev["spaceId"]
        counts[ev["kind"]] = counts.get(ev["kind"], 0) + 1
        lines.append(encode(ev))
    return Emitted(
        lines,
        list(faults),
        epoch,
        scenario.name,
        seed,
        devices,
        counts,
        initial=sim.n_initial,
        reservations=n_reservations,
        bookings=sim.bookings,
    )


@dataclass
class _Simulated:
    """What emit reads from one replication: its drivers, and the cars it parked otherwise."""

    vehicles: pd.DataFrame
    #: external stays (entry_t, leave_t, amount_cents, spot index): first the start state's
    #: cars (``n_initial`` of them), then reservation holders
    stays: pd.DataFrame
    n_initial: int
    bookings: pd.DataFrame | None
    patience: np.ndarray  # per driver, seconds (when its wait for a spot ends)


def _simulate(scenario: Scenario) -> _Simulated:
    """Replication 0 of ``scenario`` (what ``api.run(replications=1)`` runs), kept whole."""
    from twin.results import vehicles_frame
    from twin.sim.model import ParkingModel
    from twin.sim.size import check_size

    check_size(scenario)
    model = ParkingModel(scenario)
    rec = model.run()
    stays = rec.external_stays
    if stays is None:
        stays = pd.DataFrame({"entry_t": [], "leave_t": [], "amount_cents": [], "spot": []})
    return _Simulated(
        vehicles=vehicles_frame(rec),
        stays=stays,
        n_initial=len(model.seeded.sessions) if model.seeded is not None else 0,
        bookings=rec.component_frames.get("reservations_bookings"),
        patience=np.asarray(rec.drivers.patience, dtype=float),
    )


def _apply_faults(
    events: list[tuple[float, int, dict[str, Any]]],
    faults: Iterable[Fault],
    devices: dict[int, list[str]],
) -> list[tuple[float, int, dict[str, Any]]]:
    """Edit the feed as the faulty devices would report it."""
    out = events
    for i, f in enumerate(faults):
        if f.kind in ("sensor_stuck", "sensor_dead"):
            dev = f"sensor-{f.spot}"
            devices[i] = [dev]
            kinds = ("spot_reading",) if f.kind == "sensor_stuck" else ("spot_reading", "heartbeat")
            out = [
                e
                for e in out
                if not (e[2]["refDevice"] == dev and e[2]["kind"] in kinds and f.active(e[0]))
            ]
            if f.kind == "sensor_stuck":
                out.append(
                    (
                        f.start,
                        3,
                        {
                            "kind": "spot_reading",
                            "id": f"fault{i}-stuck",
                            "refDevice": dev,
                            "spaceId": f.spot,
                            "status": f.state,
                        },
                    )
                )
        elif f.kind == "payment_outage":
            devices[i] = [PAY]
            for e in out:
                if e[2]["kind"] == "payment" and f.active(e[0]):
                    e[2]["status"] = f.mode
        elif f.kind == "counter_miss":
            devices[i] = [COUNTER]
        elif f.kind == "gate_offline":
            # The device keeps working but cannot send: its events of the window are
            # uploaded in one burst at the end, with their own (old) observed times, marked
            # buffered; the feed's order is arrival order, so they sit at the end time.
            devices[i] = [f.device]
            assert f.end is not None
            held = [e for e in out if e[2]["refDevice"] == f.device and f.active(e[0])]
            for e in held:
                e[2]["_observed"] = e[0]
                e[2]["buffered"] = True
            ids = {id(e) for e in held}
            out = [e for e in out if id(e) not in ids]
            out += [(f.end, 9, e[2]) for e in held]
        elif f.kind == "demand_surge":
            devices[i] = []
    return out


def write_ground_truth(emitted: Emitted, path: Path | str) -> Path:
    """The injected faults as JSON (see the module docstring), written atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(emitted.ground_truth(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


__all__ = [
    "FAULT_KINDS",
    "MIN_PERIOD_MIN",
    "Emitted",
    "Fault",
    "FaultError",
    "emit",
    "load_faults",
    "parse_faults",
    "send",
    "write_ground_truth",
]


def send(
    emitted: Emitted,
    publish: Any,
    speed: float | None = None,
    clock: Any = None,
    sleep: Any = None,
) -> int:
    """Hand every line to ``publish`` (an MQTT publisher's ``publish``, a list's ``append``)
    paced so feed time runs ``speed`` × wall time (None: as fast as possible)."""
    import time

    from parktwin.adapters.sources.files import Pacer

    pacer = Pacer(speed, clock or time.monotonic, sleep or time.sleep)
    n = 0
    for line in emitted.lines:
        if speed is not None:
            key = line.find('"dateObserved":"') + 16
            pacer.wait(datetime.fromisoformat(line[key : line.find('"', key)]))
        publish(line)
        n += 1
    return n
