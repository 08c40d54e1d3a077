"""The data dictionary of the tidy frames a run returns and writes (``docs/data_dictionary.md``).

Meanings and units are written here, beside the code that makes the frames; the types and the
column lists are read from frames a small run really produces, so the document cannot drift
from the code: ``python -m twin.datadict`` rewrites it, ``python -m twin.datadict --check``
(and ``tests/experiments/test_frames.py``) fail when a frame gained, lost or retyped a column
that the document does not say.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from twin.core.types import SpotType, VehicleClass

DOC = Path(__file__).resolve().parents[1] / "docs" / "data_dictionary.md"


@dataclass(frozen=True)
class Column:
    name: str
    unit: str  # "" when the column has none
    meaning: str


#: What each outcome of a driver means (``vehicles.outcome``), in the model's code order.
OUTCOME_MEANINGS: dict[str, str] = {
    "parked": "took a spot (whether or not it had left by the horizon)",
    "blocked": "found the lot full and left at once (`behaviour.when_full: leave`)",
    "balked": "saw a quoted price above their willingness to pay and did not enter",
    "reneged": "waited for a spot longer than their patience and left",
    "waiting": "still waiting for a spot when the run ended",
    "in_entry_lane": "still queued at (or being served by) the entry barrier when the run ended",
    "deterred": (
        "a price-elastic candidate who, at the price in force, did not come at all; not an "
        "arrival (see the scenario's `elasticity`)"
    ),
    "diverting": "driving to another lot of the network when the run ended",
    "turned_away": "left before the barrier on an operations component's word (display FULL)",
}

_T = "seconds since the scenario start"

#: Every column of every frame, in frame order: name, unit and meaning.
FRAMES: dict[str, tuple[str, list[Column]]] = {
    "vehicles": (
        "One row per driver who arrived (every replication): who they were, what they wanted, "
        "and what happened. Written as `vehicles.parquet` (or `.csv`) by `run --out`; "
        "`RunResult.vehicles` in the API. Times not reached are empty (NaN/NaT).",
        [
            Column("replication", "", "replication index (the same in every frame)"),
            Column("vehicle", "", "driver number within the replication, in arrival order"),
            Column("stream", "", "demand stream the driver came from (scenario `demand[].name`)"),
            Column("vehicle_class", "", "size class of the vehicle"),
            Column("ev", "", "electric vehicle (looks for an EV bay first)"),
            Column("handicap", "", "holds an accessible-parking placard"),
            Column("arrival_s", "s", f"arrival at the first lot, {_T}"),
            Column("arrival_time", "", "arrival as a local date-time (`start` + arrival_s)"),
            Column("intended_dwell_s", "s", "how long the driver means to stay once parked"),
            Column("lot", "", "lot where the driver parked or was last turned away"),
            Column("lots_tried", "", "other lots the driver considered after being turned away"),
            Column("search_km", "km", "extra distance driven between lots (networks)"),
            Column(
                "entry_lane_wait_s",
                "s",
                "wait in the entry lane before barrier service started (NaN: never joined it)",
            ),
            Column("gate_s", "s", f"passed the entry barrier, {_T} (no lanes: = arrival)"),
            Column("entry_s", "s", f"took a spot, {_T}"),
            Column("level", "", "level of the spot (network: `lot/level`), in facility order"),
            Column("spot", "", "spot id (network: `lot/spot`); empty if the driver never parked"),
            Column("spot_type", "", "type of the spot taken"),
            Column("leave_s", "s", f"left the spot, {_T}"),
            Column("exit_lane_wait_s", "s", "wait in the exit lane before barrier service started"),
            Column("exit_s", "s", f"passed the exit barrier, {_T}"),
            Column("amount", "$", "charged at the exit (NaN: did not exit, or no tariff)"),
            Column(
                "quote", "$", "price quoted at arrival for the intended stay (balking compares it)"
            ),
            Column("outcome", "", "what happened to the driver (values below)"),
        ],
    ),
    "occupancy": (
        "Occupied spots every `output.interval_min`, from the start to the horizon, per group: "
        "the whole facility, each lot (networks), each level and each spot type present. "
        "Rebuilt exactly from the per-vehicle stays (cars parked by components included).",
        [
            Column("replication", "", "replication index"),
            Column("time_s", "s", f"sample instant, {_T}"),
            Column("time", "", "sample instant as a local date-time"),
            Column("group_kind", "", "how spots are grouped: total, lot, level, spot_type"),
            Column(
                "group",
                "",
                "the group: `all`, a lot, a level (network: `lot/level`) or a spot type; "
                "categories in facility order (lots, then levels from the first, then types)",
            ),
            Column("occupied", "spots", "spots occupied at that instant"),
            Column("capacity", "spots", "spots in the group"),
            Column("occupancy", "share", "occupied / capacity, 0 to 1"),
        ],
    ),
    "lanes": (
        "Vehicles waiting (not yet in service) at the entry and exit barriers, every "
        "`output.interval_min`; no rows when the scenario has no lanes.",
        [
            Column("replication", "", "replication index"),
            Column("time_s", "s", f"sample instant, {_T}"),
            Column("lane", "", "which barrier: entry or exit"),
            Column("queue", "vehicles", "vehicles waiting for barrier service at that instant"),
        ],
    ),
    "rates": (
        "Adaptive pricing's rate trajectory (scenarios with `pricing_policy` only): one row per "
        "rate table per adjustment, the opening rates first. `rates.parquet`, `RunResult.rates`.",
        [
            Column("replication", "", "replication index"),
            Column("time_s", "s", f"when the rate took effect, {_T}"),
            Column("time", "", "when the rate took effect, as a local date-time"),
            Column("table", "", "rate table (tariff band name, or the default table)"),
            Column("rate", "$/h", "hourly rate from then on"),
            Column(
                "occupancy_seen",
                "share",
                "mean occupancy the rule saw in that table's hours over the period that ended "
                "then (empty for the opening rates)",
            ),
            Column("lot", "", "lot the rate applies to"),
        ],
    ),
}

_REP = Column("replication", "", "replication index (first column, `int64`, as everywhere)")
_DRIVER = Column(
    "driver", "", "the driver's `vehicle` number in the vehicles frame (join on it and replication)"
)
_LOT = Column("lot", "", "lot, categories in the scenario's lot order (as `vehicles.lot`)")
_SPOT = Column("spot", "", "spot id, as `vehicles.spot` (empty: none)")

#: The operations components' frames (``operations:`` in the scenario): written beside the
#: main frames as ``<component>_<table>.parquet`` when they have rows, and
#: ``RunResult.extra_frames[name]`` in the API. Names are ``<component>_<table>``.
COMPONENT_FRAMES: dict[str, tuple[str, list[Column]]] = {
    "payments_bills": (
        "Payments (`operations.payments`): one row per settled exit, what happened at the exit "
        "barrier and where the bill's money went by the end of the run. Money in cents "
        "(integers); `expected = collected + pending + invoiced + written_off`.",
        [
            _REP,
            _DRIVER,
            _LOT,
            Column("leave_s", "s", f"left the spot, {_T}"),
            Column("outcome", "", "what the exit terminal did (values below)"),
            Column("attempts", "", "authorisation requests the terminal sent"),
            Column("latency_s", "s", "payment time added to the exit barrier's service"),
            Column("declines", "", "declined attempts"),
            Column("ref", "", "the bill's reference (the driver number as text)"),
            Column("plate", "", "licence plate read at the gate (text)"),
            Column("exit_s", "s", f"when the bill was opened at the exit barrier, {_T}"),
            Column(
                "basis",
                "",
                "how the amount was priced: `ticket`; a lost ticket priced by the `plate_read` "
                "stay or at the `daily_max`",
            ),
            Column("expected_cents", "cents", "the amount the tariff asks"),
            Column("captured_cents", "cents", "taken at the barrier or from the offline batch"),
            Column("invoice_paid_cents", "cents", "paid later on an invoice"),
            Column("pending_cents", "cents", "still in the offline batch at the end"),
            Column("invoiced_cents", "cents", "outstanding on invoices at the end"),
            Column("written_off_cents", "cents", "given up (invoice unpaid past its terms)"),
            Column("collected_cents", "cents", "captured + invoice_paid"),
            Column("payment_ids", "", "processor payment ids, `;`-separated (text)"),
            Column("invoice_ids", "", "invoice ids, `;`-separated (text)"),
        ],
    ),
    "payments_prepay": (
        "Payments: one row per prepayment asked at an entry (blocklisted plates, "
        "`operations.payments.strikes.prepay`); no rows when no plate was blocklisted.",
        [
            _REP,
            _DRIVER,
            _LOT,
            Column("arrival_s", "s", f"arrival at the entry, {_T}"),
            Column("plate", "", "licence plate (text)"),
            Column("quote_cents", "cents", "price quoted for the intended stay"),
            Column("debt_cents", "cents", "the plate's unpaid debt asked with it"),
            Column("attempts", "", "authorisation requests sent"),
            Column("declines", "", "declined attempts"),
            Column("outcome", "", "what became of the prepayment (values below)"),
            Column("settled_s", "s", f"when it was settled, {_T} (empty: never)"),
            Column("captured_cents", "cents", "taken for the stay"),
            Column("debt_paid_cents", "cents", "taken for the old debt"),
        ],
    ),
    "permits_visits": (
        "Permits (`operations.permits.monthly`): one row per completed visit of a monthly "
        "permit holder.",
        [
            _REP,
            _DRIVER,
            Column("plate", "", "the permit's plate (text)"),
            _LOT,
            _SPOT,
            Column("entry_s", "s", f"took the spot, {_T}"),
            Column("exit_s", "s", f"left, {_T}"),
            Column("assigned_spot", "", "true: the holder has a reserved (assigned) spot"),
            Column("waived", "$", "tariff amount waived by the permit"),
        ],
    ),
    "permits_charging": (
        "EV charging (`operations.permits.ev_charging`): one row per finished charging session.",
        [
            _REP,
            Column(
                "driver",
                "",
                "the driver's `vehicle` number (nullable `Int64`; empty: a car parked by a "
                "component, e.g. a reservation holder, who is not in the vehicles frame)",
            ),
            _LOT,
            _SPOT,
            Column("plug_s", "s", f"plugged in, {_T}"),
            Column("unplug_s", "s", f"unplugged (left the bay), {_T}"),
            Column("energy_kwh", "kWh", "energy delivered"),
            Column("charge_h", "h", "time spent charging"),
            Column("idle_min", "min", "time left plugged in after charging ended"),
            Column("energy_fee", "$", "fee for the energy"),
            Column("time_fee", "$", "fee for the time charging"),
            Column("idle_fee", "$", "fee for idling at the charger"),
        ],
    ),
    "reservations_bookings": (
        "Reservations (`operations.reservations`): one row per booking request, accepted or "
        "not, with what the rules and the holder made of it. Times in seconds since the "
        "scenario start (the `_t` columns and `start`/`end`/`held_from` alike).",
        [
            _REP,
            Column("request_t", "s", "when the booking was requested"),
            Column("reservation", "", "reservation number (nullable `Int64`; empty: not accepted)"),
            Column("account", "", "booking account number"),
            Column("spot_type", "", "spot type booked"),
            Column("start", "s", "booked start"),
            Column("end", "s", "booked end"),
            Column("fate", "", "what the holder meant to do, drawn at request (values below)"),
            Column(
                "status",
                "",
                "the reservation's state at the end (`pending`, `confirmed`, `arrived`, "
                "`completed`, `no_show`, `cancelled`, `expired`), `rejected:<reason>`, or "
                "`future` (requested for after the horizon)",
            ),
            Column("quote_cents", "cents", "price quoted for the booking"),
            Column("spot", "", "spot id held for it (empty: none held)"),
            Column("held_from", "s", "the hold on the spot began (empty: never held)"),
            Column("arrived_t", "s", "the holder parked (empty: did not come)"),
            Column("left_t", "s", "the holder left (empty: had not left by the horizon)"),
            Column("closed_t", "s", "the reservation closed (completed, no-show, cancelled...)"),
            Column("captured_cents", "cents", "money captured"),
            Column("refunded_cents", "cents", "money refunded"),
            Column("authorization_id", "", "payment authorisation id (text; empty: none)"),
        ],
    ),
    "sensors_measures": (
        "Sensors and displays (`operations.sensors`): every measure of each lot's sensor layer "
        "over [warm-up, horizon], tidy; window totals, not per day (`drift` is the end state).",
        [
            _REP,
            _LOT,
            Column(
                "scope",
                "",
                "what is measured: a display (its name, e.g. `board`), `sensors` or `counters`",
            ),
            Column("level", "", "level name as in the scenario, `all` for the lot's total"),
            Column(
                "measure",
                "",
                "e.g. `wrong_min`, `full_when_free_min`, `free_when_full_min`, "
                "`phantom_full_spot_min`, `phantom_free_spot_min`, `fallback_min`, "
                "`gateway_outages`, `gateway_down_min`, `drift`",
            ),
            Column("value", "", "the measure's value (unit in its name: `_min` minutes)"),
        ],
    ),
}
FRAMES.update(COMPONENT_FRAMES)

#: The values of categorical columns, where they are fixed by the model (not by the scenario).
VALUES: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("vehicles", "outcome"): list(OUTCOME_MEANINGS.items()),
    ("vehicles", "vehicle_class"): [(c.name, "") for c in VehicleClass],
    ("vehicles", "spot_type"): [(t.name, "") for t in SpotType],
    ("occupancy", "group_kind"): [
        ("total", "the whole facility (group `all`)"),
        ("lot", "one lot of a network (networks only)"),
        ("level", "one level"),
        ("spot_type", "one spot type the facility has (upper case, as in the scenario file)"),
    ],
    ("lanes", "lane"): [("entry", ""), ("exit", "")],
    ("payments_bills", "outcome"): [
        ("free", "nothing to pay"),
        ("paid", "captured in full"),
        ("partial", "card limit: part captured, the rest invoiced"),
        ("invoiced", "every attempt declined (or none made): all invoiced"),
        ("offline", "no answer from the processor: queued in the offline batch"),
    ],
    ("payments_prepay", "outcome"): [
        ("held", "the hold was approved and the car had not parked by the end"),
        ("prepaid", "the hold was captured when the car parked"),
        ("refused", "declined or unanswered: the driver was turned away"),
        ("released", "approved, then released (the driver did not park)"),
    ],
    ("reservations_bookings", "fate"): [
        ("show", "comes and parks"),
        ("cancel", "cancels before the start"),
        ("no_show", "never comes"),
    ],
}

#: A small scenario that makes every frame (two levels, lanes, adaptive pricing): the types of
#: the document are read from its frames.
SAMPLE = {
    "name": "data-dictionary-sample",
    "horizon_days": 2.5,
    "warmup_hours": 2,
    "seed": 3,
    "replications": 2,
    "facility": {
        "levels": [
            {"name": "L1", "spots": {"REGULAR": 12, "EV": 2}},
            {"name": "L2", "spots": {"REGULAR": 10, "COMPACT": 4}},
        ]
    },
    "lanes": {
        "entry": {"count": 1, "service": {"type": "constant", "value": 20, "unit": "s"}},
        "exit": {"count": 1, "service": {"type": "constant", "value": 30, "unit": "s"}},
    },
    "demand": [
        {
            "name": "visitors",
            "rate_per_hour": 12,
            "dwell": {"type": "lognormal", "mean": 2, "sd": 1.5, "unit": "h"},
            "ev_share": 0.1,
        }
    ],
    "tariff": {"name": "hourly", "period_minutes": 60, "per_period": 2.0},
    "pricing_policy": {"rule": "sfpark", "adjust_every_days": 1},
    "output": {"interval_min": 60},
}


#: A shipped scenario with every operations component (payments, permits and charging,
#: reservations, sensors): the component frames' types are read from a day of it.
OPERATIONS = Path(__file__).resolve().parents[1] / "scenarios" / "downtown_operations.yaml"


def sample_frames() -> dict[str, pd.DataFrame]:
    """The frames of a small run of :data:`SAMPLE`, by name (as the API returns them)."""
    from twin import api
    from twin.scenario.loader import validate_scenario

    result = api.run(validate_scenario(SAMPLE))
    assert result.rates is not None
    operations = api.run(OPERATIONS, days=1, replications=2)  # every operations component
    return {
        "vehicles": result.vehicles,
        "occupancy": result.occupancy,
        "lanes": result.lanes,
        "rates": result.rates,
        **{name: operations.extra_frames[name] for name in COMPONENT_FRAMES},
    }


def undocumented(frames: dict[str, pd.DataFrame]) -> list[str]:
    """Columns the frames have and the dictionary lacks, or says and the frames lack."""
    problems = []
    for name, frame in frames.items():
        said = [c.name for c in FRAMES[name][1]]
        if list(frame.columns) != said:
            problems.append(f"{name}: frame has {list(frame.columns)}, dictionary says {said}")
    return problems


def _type(series: pd.Series) -> str:
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        return "string"
    return str(dtype)


def render(frames: dict[str, pd.DataFrame]) -> str:
    """The markdown of ``docs/data_dictionary.md``."""
    problems = undocumented(frames)
    if problems:
        raise ValueError("; ".join(problems))
    out = [
        "# Data dictionary",
        "",
        "<!-- generated by `python -m twin.datadict` from twin/datadict.py and the frames of a "
        "small run; do not edit by hand (tests/experiments/test_frames.py checks it) -->",
        "",
        "Every column of the tidy frames a run returns (`twin.api.run`) and writes (`parktwin "
        "run --out`). Types are pandas dtypes and are the same in every frame: instants are "
        "`datetime64[ns]` local date-times (the scenario's calendar, no time zone), so "
        "`pd.merge_asof(vehicles, occupancy, left_on='arrival_time', right_on='time', "
        "by='replication')` works as it is; `replication` is `int64` everywhere; counts are "
        "integers. Spot types and vehicle classes are written in upper case everywhere, as in "
        "the scenario file. Categories are in the model's order (levels from the first to the "
        "last as the facility lists them), not alphabetical. Seconds count from the scenario's "
        "`start`; money is in currency units ($). Empty means NaN (numbers), NaT (date-times) "
        "or a missing value (strings, categories).",
        "",
        "The operations components (`operations:` in a scenario) add their own frames, named "
        "`<component>_<table>` (files `payments_bills.parquet` ...; `RunResult.extra_frames` in "
        "the API), written only when they have rows; they follow the same rules: `replication` "
        "first, `driver` is the `vehicle` number of the vehicles frame, lots are categories in "
        "the scenario's order, spots are named by id, identifiers are text or nullable "
        "integers (`Int64`, empty for none), money is in integer cents where the column says "
        "`_cents`.",
        "",
        "`run --out` also writes `replications.parquet`: one row per replication "
        "(`replication`, `int64`) and one `float64` column per figure, named as in "
        "`twin/figures.py` (label and unit: `twin.figures.label_of`, `twin.figures.unit_of`).",
        "",
    ]
    for name, (about, columns) in FRAMES.items():
        frame = frames[name]
        out += [f"## {name}", "", about, ""]
        out += ["| column | type | unit | meaning |", "|---|---|---|---|"]
        for col in columns:
            out.append(f"| `{col.name}` | {_type(frame[col.name])} | {col.unit} | {col.meaning} |")
        for (frame_name, col_name), values in VALUES.items():
            if frame_name != name:
                continue
            out += ["", f"Values of `{col_name}`, in category order:", ""]
            if any(meaning for _, meaning in values):
                out += ["| value | meaning |", "|---|---|"]
                out += [f"| `{v}` | {meaning} |" for v, meaning in values]
            else:
                out.append(", ".join(f"`{v}`" for v, _ in values) + ".")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m twin.datadict", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the document is stale")
    parser.add_argument("--out", type=Path, default=DOC)
    args = parser.parse_args(argv)
    text = render(sample_frames())
    if args.check:
        if not args.out.exists() or args.out.read_text(encoding="utf-8") != text:
            print(f"{args.out} is stale: run python -m twin.datadict", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
