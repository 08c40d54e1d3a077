"""Figures the documents quote that no single CLI command prints (derived from a run's frames).

``docs/scenarios.md`` and the README describe shipped scenarios with figures such as "weekday
occupancy 11–14 h" or "the midday rate climbs from $2.00 to $3.75/h". Typed by hand they
drift as soon as the model changes; here each is computed from a run of the scenario at its
own seed and replications, and printed one per line as ``label: value``, so
``scripts/quote_figures.py`` can quote the output in a block and the sentences can point at
it (``<!-- quoted NAME: python scripts/doc_figures.py SCENARIO -->``).

Run times are left out on purpose: they are wall-clock and depend on the machine, so the
documents give them as typed, approximate figures.

Usage: ``python scripts/doc_figures.py NAME``, NAME one of :data:`FIGURES`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from twin import api

SCENARIOS = Path("scenarios")
LOST = ("blocked", "reneged")
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _measured(frame: pd.DataFrame, column: str, warmup_s: float) -> pd.DataFrame:
    return frame[frame[column] >= warmup_s]


def _total(result: api.RunResult) -> pd.DataFrame:
    """Occupancy of the whole facility, after the warm-up, with weekday and hour."""
    occ = result.occupancy
    occ = occ[occ["group_kind"] == "total"]
    occ = _measured(occ, "time_s", result.scenario.warmup_hours * 3600)
    return occ.assign(weekday=occ["time"].dt.day_of_week, hour=occ["time"].dt.hour)


def _group_means(result: api.RunResult, kind: str) -> pd.Series:
    """Mean occupancy (%) of each group of ``kind`` after the warm-up."""
    occ = result.occupancy
    occ = occ[occ["group_kind"] == kind]
    occ = _measured(occ, "time_s", result.scenario.warmup_hours * 3600)
    return occ.groupby("group", observed=True)["occupancy"].mean() * 100


def _hourly_max(occ: pd.DataFrame) -> tuple[float, int]:
    """The largest hourly mean occupancy (%) over the hours of ``occ`` and its hour."""
    by_hour = occ.groupby("hour")["occupancy"].mean() * 100
    return float(by_hour.max()), int(by_hour.idxmax())


def _arrivals(result: api.RunResult) -> pd.DataFrame:
    v = result.vehicles
    v = _measured(v, "arrival_s", result.scenario.warmup_hours * 3600)
    return v.assign(weekday=v["arrival_time"].dt.day_of_week, hour=v["arrival_time"].dt.hour)


def surface() -> list[str]:
    result = api.run(SCENARIOS / "surface_lot.yaml")
    occ = _total(result)
    midday = occ[(occ["weekday"] < 5) & occ["hour"].between(11, 13)]
    return [f"weekday occupancy 11-14h: {midday['occupancy'].mean() * 100:.0f} %"]


def downtown() -> list[str]:
    result = api.run(SCENARIOS / "downtown_garage.yaml")
    occ = _total(result)
    top, hour = _hourly_max(occ[occ["weekday"] < 5])
    arr = _arrivals(result)
    lunch = arr[(arr["weekday"] < 5) & arr["hour"].between(11, 13)]
    lost = lunch["outcome"].isin(LOST).mean() * 100
    levels = _group_means(result, "level")
    types = _group_means(result, "spot_type")
    vans = arr[arr["vehicle_class"] == "LARGE"]
    return [
        f"lost among weekday arrivals 11:00-14:00: {lost:.1f} %",
        f"weekday hourly mean occupancy, maximum: {top:.1f} % at {hour}h",
        *(f"level {name} mean occupancy: {value:.0f} %" for name, value in levels.items()),
        f"HANDICAP bays mean occupancy: {types['HANDICAP']:.0f} %",
        f"vans (LARGE) who gave up waiting: {(vans['outcome'] == 'reneged').mean() * 100:.0f} %",
    ]


def mall() -> list[str]:
    result = api.run(SCENARIOS / "mall_garage.yaml")
    occ = _total(result)
    sat, _ = _hourly_max(occ[occ["weekday"] == 5])
    sun, _ = _hourly_max(occ[occ["weekday"] == 6])
    week, _ = _hourly_max(occ[occ["weekday"] < 5])
    arr = _arrivals(result)
    lost = arr[arr["outcome"].isin(LOST)]
    where = ", ".join(
        f"{DAYS[d]} {h}h: {n}" for (d, h), n in lost.groupby(["weekday", "hour"]).size().items()
    )
    shoppers = arr[arr["stream"].astype(str).str.startswith("shoppers") & arr["amount"].notna()]
    levels = _group_means(result, "level")
    return [
        f"hourly mean occupancy, maximum: Saturday {sat:.0f} % / Sunday {sun:.0f} % / "
        f"weekday {week:.0f} %",
        f"lost drivers (reneged or blocked) by day and hour: {where or 'none'}",
        f"shoppers who pay nothing: {(shoppers['amount'] == 0).mean() * 100:.0f} %",
        f"level means: {levels.min():.1f}-{levels.max():.1f} %",
        f"level spread: {levels.max() - levels.min():.2f} percentage points",
    ]


def airport() -> list[str]:
    result = api.run(SCENARIOS / "airport_long_stay.yaml")
    occ = result.occupancy
    occ = occ[occ["group_kind"] == "total"]
    day = (occ["time_s"] // 86400).astype(int) + 1
    daily = occ.groupby(day)["occupancy"].mean() * 100
    first = int(result.scenario.warmup_hours // 24) + 1
    measured = daily[daily.index >= first]
    measured = measured[measured.index <= int(result.scenario.horizon_days)]
    half = len(measured) // 2
    halves = abs(measured.iloc[:half].mean() - measured.iloc[half:].mean())
    arr = result.vehicles
    per_day = arr.groupby(arr["arrival_time"].dt.day_of_week).size() / (
        result.scenario.horizon_days / 7 * len(arr["replication"].unique())
    )
    return [
        "daily mean occupancy by day: "
        + ", ".join(f"day {d}: {daily[d]:.0f} %" for d in (1, 3, 6, 10)),
        f"measured days {first}-{measured.index.max()}: "
        f"{measured.min():.0f} % to {measured.max():.0f} %",
        f"first and second half of the measured days differ by {halves:.1f} percentage points",
        f"arrivals per weekday: busiest {DAYS[int(per_day.idxmax())]} {per_day.max():.0f}, "
        f"quietest {DAYS[int(per_day.idxmin())]} {per_day.min():.0f}",
    ]


def sfpark() -> list[str]:
    result = api.run(SCENARIOS / "sfpark_adaptive.yaml")
    rates = result.rates
    assert rates is not None
    lines = []
    for table in ("midday", "morning"):
        r = rates[rates["table"] == table].sort_values(["replication", "time_s"])
        start = r.groupby("replication")["rate"].first().mean()
        end = r.groupby("replication")["rate"].last()
        seen = r.groupby("replication")["occupancy_seen"].last().mean() * 100
        lines.append(
            f"{table} rate: ${start:.2f} -> ${end.mean():.2f}/h (mean of {len(end)} "
            f"replications, ${end.min():.2f} to ${end.max():.2f}), last occupancy seen {seen:.0f} %"
        )
    return lines


def _pm(values: pd.Series, money: bool = False) -> str:
    """``mean ± half-width`` of the 95 % t interval over replications, as the docs print it."""
    from twin.stats import half_width

    mean, hw = float(values.mean()), float(half_width(values.to_numpy()))
    if money:
        return f"${mean:,.0f} ± {hw:,.0f}"
    return f"{mean:,.1f} ± {hw:,.1f}"


def prepay() -> list[str]:
    """docs/payments.md "Measured: prepayment": bad cards, a small plate pool, three strikes
    settings on the operations garage at its own seed and replications."""
    from twin.stats import paired_difference

    source = SCENARIOS / "downtown_operations.yaml"
    bad = {
        "operations.payments.decline_probability": 0.3,
        "operations.payments.plate_pool": 100,
    }
    settings = {
        "prepay: false": {"operations.payments.strikes.prepay": False},
        "prepay: true, debt_at_entry: false": {"operations.payments.strikes.debt_at_entry": False},
        "defaults": {},
    }
    figures = (
        ("blocklisted", "blocklisted_plates", False),
        ("asked", "prepay_asked", False),
        ("refused", "prepay_refused", False),
        ("prepaid", "prepaid_entries", False),
        ("debt paid", "debt_collected_at_entry", True),
        ("unblocked", "plates_unblocked", False),
        ("invoiced", "revenue_invoiced", True),
    )
    lines, invoiced = [], {}
    for name, overrides in settings.items():
        result = api.run(api.load(source, {**bad, **overrides}), frames=())
        m = result.metrics
        invoiced[name] = m["payments.revenue_invoiced"].to_numpy()
        row = "; ".join(
            f"{label} {_pm(m['payments.' + col], money)}" for label, col, money in figures
        )
        lines.append(f"{name}: {row}")
        if name == "defaults":
            declined = m["payments.declined_exits"] / m["payments.exits"] * 100
            lines.append(f"{name}: exits ending invoiced {declined.mean():.1f} %")
    diff = paired_difference(invoiced["defaults"], invoiced["prepay: true, debt_at_entry: false"])
    lines.append(
        f"debt at entry cuts invoiced by ${diff.mean:,.0f} "
        f"(paired 95 % interval [${diff.ci_low:,.0f}, ${diff.ci_high:,.0f}])"
    )
    return lines


def bookings_pay() -> list[str]:
    """docs/reservations_permits.md "Measured: paying through the processor": the operations
    garage as shipped against the same file without its ``payments`` section (same seed)."""
    import yaml

    from twin.stats import paired_difference

    source = SCENARIOS / "downtown_operations.yaml"
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    without = {
        **data,
        "operations": {k: v for k, v in data["operations"].items() if k != "payments"},
    }
    runs = {
        "without payments": api.run(api.load(without), frames=()).metrics,
        "with payments": api.run(api.load(source), frames=()).metrics,
    }
    lines = [
        f"{name}: acceptance {_pm(m['reservations.acceptance_pct'])} %; "
        f"reservation revenue {_pm(m['reservations.revenue'], money=True)}"
        for name, m in runs.items()
    ]
    m = runs["with payments"]
    lines.append(
        f"with payments, per replication: {m['reservations.rejected.payment_declined'].mean():.1f}"
        f" ± {float(_hw(m['reservations.rejected.payment_declined'])):.1f} refused as "
        f"payment_declined; {m['reservations.authorizations'].mean():.0f} authorizations, "
        f"{m['reservations.captures'].mean():.0f} captures, "
        f"{m['reservations.voids'].mean():.0f} voids"
    )
    a, b = runs["without payments"], runs["with payments"]
    rev = paired_difference(a["revenue_per_day"].to_numpy(), b["revenue_per_day"].to_numpy(), 0.99)
    occ = paired_difference(a["occupancy.mean"].to_numpy(), b["occupancy.mean"].to_numpy())
    lines.append(
        f"garage revenue per day, with - without: {rev.mean:+,.2f} $/day "
        f"(99 % CI [{rev.ci_low:,.2f}, {rev.ci_high:,.2f}])"
    )
    lines.append(f"mean occupancy, with - without: {occ.mean * 100:+.2f} pp")
    return lines


def _hw(values: pd.Series) -> float:
    from twin.stats import half_width

    return float(half_width(values.to_numpy()))


def bookings_grid() -> list[str]:
    """docs/reservations_permits.md's grace × hold-lead table: the downtown garage with the
    document's own example ``reservations`` section (read from the document, so the study and
    the example cannot differ), ``warmup_hours: 48``, 9.5 days, its 5 replications."""
    import re

    import yaml

    doc = Path(__file__).resolve().parents[1] / "docs" / "reservations_permits.md"
    example = re.search(r"```yaml\n(operations:\n  reservations:.*?)```", doc.read_text(), re.S)
    assert example, "docs/reservations_permits.md: the reservations example block is gone"
    data = yaml.safe_load((SCENARIOS / "downtown_garage.yaml").read_text(encoding="utf-8"))
    data = {**data, **yaml.safe_load(example[1]), "warmup_hours": 48, "horizon_days": 9.5}
    columns = (
        ("acceptance %", "acceptance_pct", "{:.1f}"),
        ("no-show %", "no_show_pct", "{:.1f}"),
        ("bumped", "bumped", "{:.1f}"),
        ("idle spot-h/day", "idle_spot_hours_per_day", "{:.1f}"),
        ("walk-ins refused/day", "walk_ins_turned_away_per_day", "{:.1f}"),
        ("revenue $/day", "revenue_per_day", "{:,.0f}"),
    )
    lines = []
    for grace in (5, 15, 30):
        for lead in (0, 15):
            overrides = {
                "operations.reservations.grace_min": grace,
                "operations.reservations.hold_lead_min": lead,
            }
            m = api.run(api.load(data, overrides), frames=()).metrics
            cells = []
            for label, col, fmt in columns:
                values = m["reservations." + col]
                cells.append(f"{label} {fmt.format(values.mean())} ({fmt.format(_hw(values))})")
            reneged = m["reneged_pct"].mean()
            lines.append(f"grace {grace} lead {lead}: " + "; ".join(cells))
            lines.append(f"grace {grace} lead {lead}: reneged {reneged:.1f} %")
    return lines


def payments_study() -> list[str]:
    """docs/payments.md "Measured": the downtown garage (14 days, seed 1, 5 replications, its
    two exit barriers) with the document's own example ``payments`` section (read from the
    document), without outages, as is, and with a bad network."""
    import re

    import yaml

    doc = Path(__file__).resolve().parents[1] / "docs" / "payments.md"
    example = re.search(r"```yaml\n(payments: +# in a scenario file.*?)```", doc.read_text(), re.S)
    assert example, "docs/payments.md: the example payments block is gone"
    payments = yaml.safe_load(example[1])["payments"]
    base = yaml.safe_load((SCENARIOS / "downtown_garage.yaml").read_text(encoding="utf-8"))
    base = {**base, "horizon_days": 14, "seed": 1, "replications": 5}
    bad = {
        "between": {"type": "exponential", "mean": 12, "unit": "h"},
        "duration": {"type": "exponential", "mean": 60, "unit": "min"},
    }
    settings = {
        "no payments section": None,
        "example, without outages": {k: v for k, v in payments.items() if k != "outages"},
        "example": payments,
        "outages every 12 h, 60 min": {**payments, "outages": bad},
    }
    lines = []
    for name, section in settings.items():
        data = base if section is None else {**base, "operations": {"payments": section}}
        m = api.run(api.load(data), frames=()).metrics
        wait = f"exit wait mean / p95 {m['exit_wait_s.mean'].mean():.2f} s / "
        wait += f"{m['exit_wait_s.p95'].mean():.1f} s"
        if section is None:
            lines.append(f"{name}: {wait}")
            continue
        lines.append(
            f"{name}: collected {m['payments.collected_pct'].mean():.2f} % ± "
            f"{_hw(m['payments.collected_pct']):.2f}; offline exits "
            f"{_pm(m['payments.offline_payments'])}; payment time mean / p95 "
            f"{m['payments.latency_s.mean'].mean():.1f} s / "
            f"{m['payments.latency_s.p95'].mean():.1f} s; {wait}"
        )
        lines.append(
            f"{name}: per replication {m['payments.exits'].mean():,.0f} exits, invoiced "
            f"${m['payments.revenue_invoiced'].mean():,.0f}, partial payments "
            f"{m['payments.partial_payments'].mean():.0f}, declined at forwarding "
            f"{m['payments.offline_declined'].mean():.0f}; blocklisted plates in all "
            f"replications {m['payments.blocklisted_plates'].sum():.0f}"
        )
    return lines


def permits_grid() -> list[str]:
    """docs/reservations_permits.md's assigned-spots table: the surface lot (7 days, 10
    replications) with the ``monthly`` and ``handicap`` lines of the document's own permits
    example (read from the document), 0/10/20/30 assigned spots."""
    import re

    import yaml

    doc = Path(__file__).resolve().parents[1] / "docs" / "reservations_permits.md"
    example = re.search(r"```yaml\n(operations:\n  permits:.*?)```", doc.read_text(), re.S)
    assert example, "docs/reservations_permits.md: the permits example block is gone"
    permits = yaml.safe_load(example[1])["operations"]["permits"]
    data = yaml.safe_load((SCENARIOS / "surface_lot.yaml").read_text(encoding="utf-8"))
    section = {k: permits[k] for k in ("monthly", "handicap")}
    whole = api.run(api.load({**data, "operations": {"permits": permits}}), frames=()).metrics
    lines = [
        f"the whole example, a week: {whole['permits.monthly.entries'].mean():.0f} holder "
        f"entries, {whole['permits.monthly.plates_exhausted'].mean():.1f} plates exhausted"
    ]
    data = {**data, "replications": 10, "operations": {"permits": section}}
    for n in (0, 10, 20, 30):
        m = api.run(api.load(data, {"operations.permits.monthly.assigned_spots": n}), frames=())
        m = m.metrics
        lines.append(
            f"assigned {n}: idle spot-h {_pm(m['permits.monthly.assigned_idle_spot_hours'])}; "
            f"reneged % {m['reneged_pct'].mean():.2f} ± {_hw(m['reneged_pct']):.2f}; "
            f"revenue $/day {m['revenue_per_day'].mean():.2f} ± {_hw(m['revenue_per_day']):.2f}; "
            f"holders refused {_pm(m['permits.monthly.refused_full'])}; "
            f"illegal HANDICAP stays {_pm(m['permits.handicap.illegal_parkings'])}; "
            f"idle share {m['permits.monthly.assigned_idle_share'].mean() * 100:.0f} %; "
            f"waived $/day {m['permits.monthly.waived_revenue_per_day'].mean():.0f}; "
            f"fees $/day {m['permits.monthly.fee_revenue_per_day'].mean():.0f}"
        )
    return lines


def charging() -> list[str]:
    """docs/reservations_permits.md's EV charging figures: the downtown garage (14 days, 5
    replications) with the ``ev_charging`` line of the document's permits example."""
    import re

    import yaml

    doc = Path(__file__).resolve().parents[1] / "docs" / "reservations_permits.md"
    example = re.search(r"```yaml\n(operations:\n  permits:.*?)```", doc.read_text(), re.S)
    assert example, "docs/reservations_permits.md: the permits example block is gone"
    ev = yaml.safe_load(example[1])["operations"]["permits"]["ev_charging"]
    data = yaml.safe_load((SCENARIOS / "downtown_garage.yaml").read_text(encoding="utf-8"))
    data = {**data, "horizon_days": 14, "operations": {"permits": {"ev_charging": ev}}}
    m = api.run(api.load(data), frames=()).metrics
    idle_share = m["permits.ev.idle_fees"].sum() / m["permits.ev.charging_revenue"].sum() * 100
    return [
        f"kWh/day {_pm(m['permits.ev.kwh_per_day'])}",
        f"idle h {_pm(m['permits.ev.idle_hours'])}; charging h {_pm(m['permits.ev.charge_hours'])}",
        f"idle fees {idle_share:.0f} % of charging revenue "
        f"{_pm(m['permits.ev.charging_revenue_per_day'], money=True)}/day",
    ]


def sensors_study() -> list[str]:
    """docs/sensors.md "In the model" table: 3 levels × 100 regular bays, ``nearest``, Poisson
    arrivals 75/h 08:00-18:00 and 15/h otherwise, exponential stays of mean 4 h, 14 days (1 day
    of warm-up), 5 replications, seed 1; devices from the document's own ``sensors:`` reference
    block (read from the document)."""
    import re

    import yaml

    doc = Path(__file__).resolve().parents[1] / "docs" / "sensors.md"
    example = re.search(r"```yaml\n(sensors:\n.*?)```", doc.read_text(), re.S)
    assert example, "docs/sensors.md: the sensors reference block is gone"
    reference = yaml.safe_load(example[1])["sensors"]
    no_recount = {k: v for k, v in reference.items() if k != "counter_recount_hours"}
    lot = {
        "name": "sensors-study",
        "horizon_days": 14,
        "warmup_hours": 24,
        "seed": 1,
        "replications": 5,
        "facility": {
            "strategy": "nearest",
            "levels": [{"name": f"L{i}", "spots": {"REGULAR": 100}} for i in (1, 2, 3)],
        },
        "demand": [
            {
                "name": "cars",
                "profile": {"all": [15] * 8 + [75] * 10 + [15] * 6},
                "dwell": {"type": "exponential", "mean": 4, "unit": "h"},
            }
        ],
    }
    settings = {
        "no sensors": None,
        "perfect": {"detection": "both"},
        "reference, both": no_recount,
        "same, recount every 24 h": reference,
        "spot_sensors, gateway outages 2/level/day of 2 h": {
            **{k: v for k, v in no_recount.items() if not k.startswith("counter")},
            "detection": "spot_sensors",
            "gateway_outages": {
                "rate_per_day": 2,
                "duration": {"type": "exponential", "mean": 2, "unit": "h"},
            },
        },
    }
    figures = (
        ("wrong min/day", "wrong_display_min_per_day"),
        ("FULL while free min/day", "full_when_free_min_per_day"),
        ("phantom-full spot-min/day", "phantom_full_spot_min_per_day"),
        ("phantom-free spot-min/day", "phantom_free_spot_min_per_day"),
        ("turned away with space/day", "turned_away_with_space_per_day"),
        ("extra search s/driver", "extra_search_s_per_driver"),
    )
    lines = []
    for name, section in settings.items():
        data = lot if section is None else {**lot, "operations": {"sensors": section}}
        m = api.run(api.load(data), frames=()).metrics
        cells = [f"{label} {_pm(m['sensors.' + c])}" for label, c in figures if section]
        cells.append(f"blocked {m['blocked_pct'].mean():.2f} %")
        lines.append(f"{name}: " + "; ".join(cells))
    return lines


FIGURES: dict[str, Callable[[], list[str]]] = {
    "sensors": sensors_study,
    "charging": charging,
    "permits-grid": permits_grid,
    "payments": payments_study,
    "bookings-grid": bookings_grid,
    "bookings-pay": bookings_pay,
    "prepay": prepay,
    "surface": surface,
    "downtown": downtown,
    "mall": mall,
    "airport": airport,
    "sfpark": sfpark,
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in FIGURES:
        print(f"usage: doc_figures.py {'|'.join(FIGURES)}", file=sys.stderr)
        return 2
    print("\n".join(FIGURES[argv[0]]()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
