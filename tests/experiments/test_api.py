"""The analyst's API (twin.api): scenarios from text or mappings, first replication index,
figures-only runs, sweeps without an output folder, --precision's choice of figure."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from twin import api
from twin.api import ScenarioError

ROOT = Path(__file__).resolve().parents[2]
SURFACE = ROOT / "scenarios" / "surface_lot.yaml"
SHORT = {"horizon_days": 1.5}


def test_load_takes_a_mapping_or_yaml_text_validated_like_a_file() -> None:
    text = SURFACE.read_text(encoding="utf-8")
    from_file = api.load(SURFACE, SHORT)
    from_text = api.load(text, SHORT)
    mapping = yaml.safe_load(text)
    from_mapping = api.load(mapping, SHORT)
    # (equal field by field; the objects differ only in where relative paths would be read)
    assert from_text.model_dump() == from_file.model_dump() == from_mapping.model_dump()
    assert "horizon_days" in mapping and mapping["horizon_days"] == 7  # caller's copy untouched
    # the same one-line messages as a file
    with pytest.raises(ScenarioError) as bad_map:
        api.load({**mapping, "horizon_days": -1})
    assert any(p.startswith("horizon_days") for p in bad_map.value.problems)
    with pytest.raises(ScenarioError) as bad_text:
        api.load(text.replace("strategy: nearest", "strategy: nearest\n  strategy: spread"))
    assert "duplicate key" in bad_text.value.problems[0]
    with pytest.raises(ScenarioError):
        api.load(["not", "a", "mapping"])  # type: ignore[arg-type]


def test_first_replication_repeats_the_same_replications_of_a_longer_run() -> None:
    sc = api.load(SURFACE, SHORT)
    whole = api.run(sc, replications=4, frames=())
    tail = api.run(sc, replications=2, frames=(), first_replication=2)
    assert tail.metrics["replication"].tolist() == [2, 3]
    pd.testing.assert_frame_equal(
        tail.metrics.reset_index(drop=True), whole.metrics.iloc[2:].reset_index(drop=True)
    )
    assert len(tail.vehicles) == 0 and len(tail.occupancy) == 0  # figures only
    with pytest.raises(ValueError, match="first_replication"):
        api.run(sc, replications=2, first_replication=-1)


def test_sweep_without_an_output_folder_returns_its_tables(tmp_path: Path) -> None:
    grid = {"tariff.per_period": [1.5, 3.0]}
    mem = api.sweep(SURFACE, grid, replications=2, days=1.5)
    assert mem.out is None and mem.plots == []
    assert len(mem.table) == 4 and set(mem.table["tariff.per_period"]) == {1.5, 3.0}
    disk = api.sweep(SURFACE, grid, out=tmp_path / "s", replications=2, days=1.5, plots=False)
    pd.testing.assert_frame_equal(mem.table, disk.table, check_dtype=False)
    pd.testing.assert_frame_equal(mem.summary, disk.summary, check_dtype=False)
    assert "unreliable" in mem.summary.columns
    later = api.sweep(SURFACE, grid, replications=2, days=1.5, first_replication=2)
    assert sorted(set(later.table["replication"])) == [2, 3]
    with pytest.raises(api.SweepError):
        api.sweep(SURFACE, grid, replications=2, resume=True)


def test_precision_picks_a_figure_that_varies_and_says_why() -> None:
    """The surface lot never blocks: blocked_pct is 0 in every replication, and its
    zero-width interval must not end the run at once as 'precise'."""
    sc = api.load(SURFACE, SHORT)
    result = api.run(sc, precision=0.5, relative=True, max_replications=8, frames=())
    s = result.stopping
    assert s is not None and s.metric != "blocked_pct"
    assert "blocked_pct" in s.reason and s.metric in s.reason
    assert s.half_width > 0


def test_precision_never_stops_on_a_zero_width_interval() -> None:
    sc = api.load(SURFACE, SHORT)
    result = api.run(
        sc, precision=0.5, metric="blocked_pct", min_replications=2, max_replications=4, frames=()
    )
    s = result.stopping
    assert s is not None
    # blocked_pct's count interval is an upper bound [0, ~3/N], never zero-width, so it can
    # be met honestly ("below x% with 95% confidence"); the point: it is not met at width 0
    assert s.half_width > 0
    summary = result.summary()
    assert summary.loc["blocked_pct", "ci_high"] > 0
    assert bool(summary.loc["blocked_pct", "unreliable"])


def test_summary_json_flags_unreliable_intervals() -> None:
    sc = api.load(SURFACE, SHORT)
    d = api.run(sc, replications=3, frames=()).summary_dict()
    assert d["metrics"]["blocked_pct"]["unreliable"] is True  # never happens on this lot
    assert d["metrics"]["arrivals_per_day"]["unreliable"] is False
    assert "unreliable" in d["notes"]


def test_compare_from_a_first_replication_pairs_the_same_replications() -> None:
    a = api.load(SURFACE, SHORT)
    b = api.load(SURFACE, {**SHORT, "tariff.per_period": 3.0})
    c = api.compare(a, b, replications=2, first_replication=3)
    assert c.a.metrics["replication"].tolist() == c.b.metrics["replication"].tolist() == [3, 4]
    alone = api.run(b, replications=2, frames=(), first_replication=3)
    pd.testing.assert_frame_equal(
        c.b.metrics.reset_index(drop=True), alone.metrics.reset_index(drop=True)
    )
    assert "unreliable" in c.table.columns
