"""The pricing-regression gate: what must pass (identical code, noise) and what must fail (a
price change, a demand change), exit codes, baselines, and the tariff-band split it relies on.

Runs use short copies of shipped scenarios (2 days, 5 replications) written to tmp_path under
the scenario's own name, exactly how a changed scenario file would meet its stored baseline.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from cli import app
from twin import regress
from twin.core.clock import Calendar
from twin.core.pricing import RateTable, Tariff, TimeBand
from twin.experiments import run
from twin.scenario.loader import load_scenario
from twin.sim.build import calendar_for

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
runner = CliRunner()


def _variant(
    name: str, folder: Path, edit: Callable[[dict], None] | None = None, short: bool = True
) -> Path:
    """A copy of a shipped scenario (same ``name:``), shortened and optionally edited."""
    data = yaml.safe_load((ROOT / "scenarios" / f"{name}.yaml").read_text())
    if short:
        data["horizon_days"] = 2
        data["replications"] = 5
    if edit is not None:
        edit(data)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def downtown(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A short downtown garage (weekday peak and early-bird bands) with a recorded baseline."""
    base = tmp_path_factory.mktemp("downtown")
    path = _variant("downtown_garage", base / "orig")
    result = runner.invoke(app, ["regress", str(path), "--baseline", str(base / "bl"), "--update"])
    assert result.exit_code == 0, result.output
    return path, base / "bl"


def _failed(path: Path, baseline: Path) -> set[str]:
    return set(regress.check(path, baseline).failures["metric"])


# --------------------------------------------------------------------------- what must pass


def test_unchanged_scenario_passes_identically(downtown: tuple[Path, Path]) -> None:
    path, baseline = downtown
    result = runner.invoke(app, ["regress", str(path), "--baseline", str(baseline)])
    assert result.exit_code == 0, result.output
    assert "identical to the baseline" in result.output
    check = regress.check(path, baseline)
    assert check.passed and check.identical
    # the figures the brief asks for are all there
    names = set(check.table["metric"])
    assert {
        "revenue_per_day.band[weekday peak]",
        "revenue_per_day.band[early bird]",
        "revenue_per_day.band[default]",
        "revenue_per_day.spot_type[REGULAR]",
        "occupancy.mean",
        "occupancy.peak",
        "blocked_pct",
        "balked_pct",
        "mean_price",
    } <= names


def test_change_that_only_reshuffles_drivers_passes() -> None:
    """Differences of both signs, no larger than the replications' spread, are noise."""
    rng = np.random.default_rng(5)
    base = pd.DataFrame({"revenue_per_day": 1000 + rng.normal(0, 20, 8)})
    noise = np.array([3.0, -2.0, 1.5, -4.0, 2.5, -1.0, 0.5, -0.5])
    table = regress.compare(base, base + noise[:, None])
    row = table.iloc[0]
    assert row["verdict"] == "pass" and row["reason"] == "within noise"
    assert row["ci_low"] < 0 < row["ci_high"]


def test_float_noise_is_not_a_change() -> None:
    base = pd.DataFrame({"revenue_per_day": [11608.857142857143, 11915.571428571429]})
    table = regress.compare(base, base * (1 + 1e-13))
    assert table.iloc[0]["reason"] == "identical"


# --------------------------------------------------------------------------- what must fail


def test_price_change_fails_and_names_revenue(downtown: tuple[Path, Path], tmp_path: Path) -> None:
    def dearer(data: dict) -> None:  # off-peak $2.00 -> $2.50 per hour
        data["tariff"]["per_period"] = float(data["tariff"]["per_period"]) + 0.5

    changed = _variant("downtown_garage", tmp_path, dearer)
    _, baseline = downtown
    result = runner.invoke(app, ["regress", str(changed), "--baseline", str(baseline)])
    assert result.exit_code == 1, result.output
    for text in ("FAIL", "revenue_per_day.band[default]", "mean_price", "99% CI", "--update"):
        assert text in result.output
    failed = _failed(changed, baseline)
    assert {"revenue_per_day", "revenue_per_day.band[default]", "mean_price"} <= failed
    check = regress.check(changed, baseline)
    row = check.table.set_index("metric").loc["revenue_per_day.band[default]"]
    assert row["diff_mean"] > 0 and row["ci_low"] > 0  # dearer, and surely so


def test_demand_change_fails_on_occupancy_and_revenue(tmp_path: Path) -> None:
    original = _variant("surface_lot", tmp_path / "orig")
    baseline = tmp_path / "bl"
    regress.update(original, baseline)

    def busier(data: dict) -> None:
        for stream in data["demand"]:
            stream["multiplier"] = stream.get("multiplier", 1.0) * 1.3

    changed = _variant("surface_lot", tmp_path / "busier", busier)
    result = runner.invoke(app, ["regress", str(changed), "--baseline", str(baseline)])
    assert result.exit_code == 1, result.output
    failed = _failed(changed, baseline)
    assert {"occupancy.mean", "revenue_per_day"} <= failed


def test_judging_rules() -> None:
    """Same shift everywhere fails; one differing replication of one fails; NaN rules."""
    base = pd.DataFrame(
        {
            "shift": [10.0, 20.0, 30.0],
            "same": [1.0, 2.0, 3.0],
            "nan_both": [np.nan, np.nan, np.nan],
            "nan_one": [np.nan, 1.0, 1.0],
            "gone": [1.0, 1.0, 1.0],
        }
    )
    cur = pd.DataFrame(
        {
            "shift": [10.5, 20.5, 30.5],
            "same": [1.0, 2.0, 3.0],
            "nan_both": [np.nan, np.nan, np.nan],
            "nan_one": [1.0, 1.0, 1.0],
            "new": [0.0, 0.0, 0.0],
        }
    )
    t = regress.compare(base, cur).set_index("metric")
    assert t.loc["shift", "verdict"] == "FAIL"
    assert t.loc["shift", "reason"] == "same shift in every replication"
    assert t.loc["shift", "diff_mean"] == pytest.approx(0.5)
    assert t.loc["same", "verdict"] == "pass"
    assert t.loc["nan_both", "verdict"] == "pass"
    assert t.loc["nan_one", "verdict"] == "FAIL"
    assert t.loc["gone", "verdict"] == "FAIL" and t.loc["gone", "reason"] == "not in this run"
    assert t.loc["new", "verdict"] == "FAIL" and t.loc["new", "reason"] == "not in the baseline"
    one = regress.compare(base.iloc[:1], cur.iloc[:1]).set_index("metric")
    assert one.loc["shift", "verdict"] == "FAIL"  # n = 1: no spread, any change fails


def test_t_interval_is_scipy_paired_99() -> None:
    from scipy import stats

    base = pd.DataFrame({"x": [10.0, 12.0, 11.0, 13.0]})
    cur = pd.DataFrame({"x": [11.0, 12.5, 12.5, 13.2]})
    row = regress.compare(base, cur).iloc[0]
    d = (cur - base)["x"].to_numpy()
    lo, hi = stats.t.interval(0.99, 3, loc=d.mean(), scale=d.std(ddof=1) / 2)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi))
    assert row["verdict"] == ("FAIL" if lo > 0 else "pass")


# --------------------------------------------------------------------------- exit codes, update


def test_missing_baseline_exits_2_and_says_how(tmp_path: Path) -> None:
    path = _variant("surface_lot", tmp_path)
    result = runner.invoke(app, ["regress", str(path), "--baseline", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "no baseline" in result.output and "--update" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args, text",
    [
        (["no/such/file.yaml"], "cannot read"),
        (["--replications", "0"], "replications"),
    ],
)
def test_bad_input_exits_2(args: list[str], text: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["regress", *args, "--baseline", str(tmp_path)])
    assert result.exit_code == 2
    assert text in result.output


def test_unusable_baselines_exit_2(downtown: tuple[Path, Path], tmp_path: Path) -> None:
    path, baseline = downtown
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "downtown_garage.json").write_text("{not json")
    result = runner.invoke(app, ["regress", str(path), "--baseline", str(corrupt)])
    assert result.exit_code == 2 and "not a valid baseline" in result.output

    reseeded = _variant("downtown_garage", tmp_path / "s", lambda d: d.update(seed=99))
    result = runner.invoke(app, ["regress", str(reseeded), "--baseline", str(baseline)])
    assert result.exit_code == 2 and "seed" in result.output


def test_update_writes_prints_changes_and_then_passes(tmp_path: Path) -> None:
    baseline = tmp_path / "bl"
    path = _variant("surface_lot", tmp_path / "a")
    first = runner.invoke(app, ["regress", str(path), "--baseline", str(baseline), "--update"])
    assert first.exit_code == 0 and "recorded" in first.output
    stored = json.loads((baseline / "surface_lot.json").read_text())
    assert stored["seed"] == 42 and stored["replications"] == 5
    assert len(stored["metrics"]["revenue_per_day"]) == 5

    def dearer(data: dict) -> None:
        data["tariff"]["per_period"] = 2.0

    changed = _variant("surface_lot", tmp_path / "b", dearer)
    assert runner.invoke(app, ["regress", str(changed), "--baseline", str(baseline)]).exit_code == 1
    again = runner.invoke(app, ["regress", str(changed), "--baseline", str(baseline), "--update"])
    assert again.exit_code == 0
    assert "rewrote" in again.output and "mean_price" in again.output  # what changed
    after = runner.invoke(app, ["regress", str(changed), "--baseline", str(baseline)])
    assert after.exit_code == 0, after.output
    assert "identical to the baseline" in after.output
    assert json.loads((baseline / "surface_lot.json").read_text()) != stored


# --------------------------------------------------------------------------- gate figures


def test_revenue_splits_add_up_to_the_total() -> None:
    sc = load_scenario(ROOT / "scenarios" / "downtown_garage.yaml").model_copy(
        update={"horizon_days": 2.0}
    )
    figures = regress.gate_metrics(run(sc, replications=2))
    total = figures["revenue_per_day"]
    bands = figures.filter(like="revenue_per_day.band[").sum(axis=1)
    types = figures.filter(like="revenue_per_day.spot_type[").sum(axis=1)
    assert np.allclose(bands, total) and np.allclose(types, total)
    assert (figures["revenue_per_day.band[weekday peak]"] > 0).all()


def test_entry_band_agrees_with_the_price_charged() -> None:
    """A 14 h stay costs $15 (early bird cap), $24 (weekday peak cap) or $12 (off-peak cap)
    in the downtown tariff: the price tells which band governed the entry."""
    sc = load_scenario(ROOT / "scenarios" / "downtown_garage.yaml")
    tariff = sc.tariff.build(calendar_for(sc))
    rng = np.random.default_rng(1)
    entries = np.round(rng.uniform(0, 14 * 86400, 400) / 60) * 60  # whole minutes
    expected = {1500: "early bird", 2400: "weekday peak", 1200: "default"}
    names = regress.entry_bands(tariff, entries)
    for t, name in zip(entries, names, strict=True):
        assert expected[tariff.price(t, t + 14 * 3600)] == name
    assert set(names) == set(expected.values())


def test_wrapping_band_belongs_to_the_day_it_starts() -> None:
    night = TimeBand(
        days=frozenset({4}),
        start_minute=22 * 60,
        end_minute=6 * 60,
        table=RateTable(period_cents=100),
        name="fri night",
    )
    tariff = Tariff(
        name="t", default=RateTable(period_cents=200), bands=(night,), calendar=Calendar()
    )  # epoch Monday 00:00
    day = 86400.0
    times = np.array(
        [
            4 * day + 21.99 * 3600,
            4 * day + 22 * 3600,
            5 * day + 5.99 * 3600,
            5 * day + 6 * 3600,
            6 * day + 23 * 3600,
            np.nan,
        ]
    )
    got = list(regress.entry_bands(tariff, times))
    assert got == ["default", "fri night", "fri night", "default", "default", "default"]
    assert regress.band_names(tariff) == ["fri night", "default"]
    assert regress.band_names(None) == ["default"]


def test_every_shipped_scenario_has_a_committed_baseline() -> None:
    """CI runs the gate on scenarios/*.yaml: each needs its baseline, recorded at its seed."""
    for path in SCENARIOS:
        if regress.study_kind(path) is not None:  # e.g. the locking study: not gated
            continue
        sc = load_scenario(path)
        bpath = regress.baseline_path(ROOT / "reports" / "baselines", sc.name)
        assert bpath.is_file(), f"record it: parktwin regress {path.name} --update"
        base = regress.load_baseline(bpath)
        assert (base.scenario, base.seed, base.replications) == (
            sc.name,
            sc.seed,
            sc.replications,
        )


def test_study_files_next_to_scenarios_are_skipped(tmp_path: Path) -> None:
    """scenarios/ may hold other study files (``kind: locking_study``): nothing to gate."""
    study = tmp_path / "study.yaml"
    study.write_text("kind: locking_study\nname: x\nseed: 1\n")
    path = _variant("surface_lot", tmp_path / "sc")
    baseline = tmp_path / "bl"
    assert regress.study_kind(study) == "locking_study"
    assert regress.study_kind(path) is None
    args = ["regress", str(study), str(path), "--baseline", str(baseline)]
    assert runner.invoke(app, [*args, "--update"]).exit_code == 0
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "skip" in result.output and "locking_study" in result.output
    assert [p.name for p in baseline.iterdir()] == ["surface_lot.json"]


def test_revenue_split_names_a_public_holiday_by_the_table_that_priced_it() -> None:
    """city_ramp_tariff prices 2026-03-04 (a Wednesday) like a Sunday: a 07:00 entry that day
    is charged by the weekend band, so the revenue split must say "weekend", not "early bird"
    (the weekday band a weekly-window lookup would pick)."""
    sc = load_scenario(ROOT / "scenarios" / "city_ramp_tariff.yaml")
    cal = calendar_for(sc)
    tariff = sc.tariff.build(cal)
    holiday = cal.to_seconds(pd.Timestamp("2026-03-04 07:00").to_pydatetime())
    ordinary = cal.to_seconds(pd.Timestamp("2026-03-11 07:00").to_pydatetime())
    got = list(regress.entry_bands(tariff, np.array([holiday, ordinary, np.nan])))
    assert got == ["weekend", "early bird", "default"]
    # the name follows the price: the holiday pays the weekend band's per-period rate
    assert tariff.price(holiday, holiday + 3600) != tariff.price(ordinary, ordinary + 3600)
