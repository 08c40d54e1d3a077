"""parktwin report: a results folder becomes one self-contained HTML page plus PNG charts.

Results folders come from short runs (2 days, 2 replications) of shipped scenarios, written the
way ``parktwin run --out`` writes them.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from matplotlib import image
from typer.testing import CliRunner

from cli import app
from twin import figures
from twin.experiments import run
from twin.report import ReportError, build_report, load_results, plot_lanes, total_label
from twin.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _results(
    folder: Path, name: str = "downtown_garage", fmt: str = "parquet", edit=None
) -> tuple[Path, Path]:
    """Run a short copy of a shipped scenario; return (results folder, scenario file)."""
    data = yaml.safe_load((ROOT / "scenarios" / f"{name}.yaml").read_text())
    data["horizon_days"] = 2
    data["replications"] = 2
    if edit is not None:
        edit(data)
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "scenario.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    out = folder / "results"
    run(load_scenario(spec)).write(out, fmt)
    return out, spec


@pytest.fixture(scope="module")
def downtown(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("report")
    out, spec = _results(folder)
    result = runner.invoke(app, ["report", str(out), "--scenario", str(spec)])
    assert result.exit_code == 0, result.output
    assert "report.html" in result.output
    return out, spec


def test_report_and_charts_are_written(downtown: tuple[Path, Path]) -> None:
    out, _ = downtown
    assert (out / "report.html").is_file()
    names = {p.name for p in (out / "plots").glob("*.png")}
    queued = pd.read_parquet(out / "lanes.parquet")["queue"].any()
    assert names == {
        "headline_ci.png",
        "occupancy_heatmap.png",
        "occupancy_levels.png",
        "lost_by_hour.png",
        "revenue.png",
    } | ({"lanes.png"} if queued else set())
    # 2 days with a 12 h warm-up: 1.5 measured days, so no day x hour heatmap
    if not queued:
        assert "No car was queued" in (out / "report.html").read_text()
    for png in (out / "plots").glob("*.png"):
        assert png.read_bytes()[:8] == PNG_MAGIC
        h, w = image.imread(png).shape[:2]
        assert w >= 800 and h >= 250, png.name


def test_html_is_self_contained(downtown: tuple[Path, Path]) -> None:
    out, _ = downtown
    page = (out / "report.html").read_text()
    sources = re.findall(r'\b(?:src|href)\s*=\s*["\']([^"\']*)', page, flags=re.I)
    assert sources, "charts are embedded as <img src=...>"
    assert all(s.startswith("data:image/png;base64,") for s in sources), sources[:3]
    assert "<link" not in page.lower() and "<script" not in page.lower()
    assert "url(" not in page  # no external CSS resources either
    assert page.count("data:image/png;base64,") == len(list((out / "plots").glob("*.png")))


def test_html_names_scenario_and_headline_figures(downtown: tuple[Path, Path]) -> None:
    out, _ = downtown
    page = (out / "report.html").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert "<title>ParkTwin report: downtown_garage</title>" in page
    assert "<h1>ParkTwin report: downtown_garage</h1>" in page
    m = summary["metrics"]
    assert f"${m['revenue_per_day']['mean']:,.0f}/day" in page  # whole dollars from $1,000
    assert f"{m['arrivals_per_day']['mean']:,.0f}" in page
    lo, hi = m["revenue_per_day"]["ci95"]
    assert f"${lo:,.0f}/day … ${hi:,.0f}/day" in page  # the 95% interval from summary.json
    assert f"{100 * m['occupancy.mean']['mean']:.1f} %" in page
    assert "Replications" in page and f"(seed {summary['seed']})" in page
    assert "early bird" in page  # tariff bands known from the scenario


def test_lane_chart_draws_queues(downtown: tuple[Path, Path], tmp_path: Path) -> None:
    out, spec = downtown
    res = load_results(out, spec)
    res.lanes.loc[res.lanes.index[::7], "queue"] = 3  # a queue every few samples
    png = plot_lanes(res, tmp_path / "lanes.png")
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert image.imread(png).shape[1] >= 800


def test_results_without_lanes_still_work(tmp_path: Path) -> None:
    out, spec = _results(tmp_path, "surface_lot", edit=lambda d: d.pop("lanes"))
    assert pd.read_parquet(out / "lanes.parquet").empty
    page = build_report(out, spec).read_text()
    assert "models no barriers" in page
    assert not (out / "plots" / "lanes.png").exists()
    (out / "lanes.parquet").unlink()  # and with no lanes table at all
    assert load_results(out, spec).lanes.empty


def test_csv_results_and_rate_trajectory(tmp_path: Path) -> None:
    out, spec = _results(tmp_path, "surface_lot", fmt="csv")
    assert load_results(out, spec).rates is None  # no rates table: no chart (see first test)
    rates = pd.DataFrame(
        {
            "time_s": [0.0, 86400.0, 0.0, 86400.0],
            "band": ["peak", "peak", "default", "default"],
            "rate": [2.0, 2.25, 1.5, 1.25],
        }
    )
    rates.to_parquet(out / "rates.parquet")
    # a table summary.json does not name is another run's (or a stranger's): never read
    assert "Adaptive pricing" not in build_report(out, spec).read_text()
    summary = json.loads((out / "summary.json").read_text())
    summary["files"]["rates"] = "rates.parquet"
    (out / "summary.json").write_text(json.dumps(summary))
    page = build_report(out, spec).read_text()
    assert (out / "plots" / "rates.png").read_bytes()[:8] == PNG_MAGIC
    assert "Adaptive pricing" in page


def test_unknown_scenario_file_leaves_out_bands_with_a_note(tmp_path: Path) -> None:
    out, spec = _results(tmp_path, "surface_lot", edit=lambda d: d.update(name="lot_x"))
    res = load_results(out)  # no scenarios/lot_x.yaml anywhere
    assert res.scenario is None
    assert any("pass it with --scenario" in note for note in res.notes)
    assert load_results(out, spec).scenario is not None
    other = ROOT / "scenarios" / "mall_garage.yaml"
    with pytest.raises(ReportError, match="is scenario 'mall_garage'"):
        load_results(out, other)


def test_cli_report_errors_exit_2(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["report", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such results folder" in missing.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["report", str(empty)])
    assert result.exit_code == 2 and "summary.json" in result.output
    assert "Traceback" not in result.output


def _one_day(data: dict) -> None:
    data["horizon_days"] = 1
    data["warmup_hours"] = 2


def test_each_operations_component_gets_its_section(tmp_path: Path) -> None:
    """downtown_operations: reservations, permits, payments and sensors each get a section
    with their headline figures (with intervals, labels and units from the registry) and one
    chart; every figure of summary.json is in the report."""
    out, spec = _results(tmp_path, "downtown_operations", edit=_one_day)
    page = build_report(out, spec).read_text()
    summary = json.loads((out / "summary.json").read_text())["metrics"]
    for title, key, figure in (
        ("Reservations", "reservations", "reservations.no_show_pct"),
        ("Permits", "permits", "permits.monthly.assigned_idle_share"),
        ("Payments", "payments", "payments.collected_pct"),
        ("Sensors and displays", "sensors", "sensors.fallback_min_per_day"),
    ):
        assert f"<h2>{title}</h2>" in page
        assert (out / "plots" / f"{key}.png").read_bytes()[:8] == PNG_MAGIC
        label = figures.label_of(figure)
        assert f"<td>{html.escape(label[:1].upper() + label[1:])}</td>" in page, figure
    assert "level-min/day" in page  # a total over levels is not passed off as minutes a day
    for name, m in summary.items():
        if m["mean"] is not None:
            label = figures.label_of(name)
            assert html.escape(label[:1].upper() + label[1:]) in page, name


def test_a_network_gets_a_per_lot_table_and_chart(tmp_path: Path) -> None:
    out, spec = _results(tmp_path, "city_network", edit=_one_day)
    page = build_report(out, spec).read_text()
    assert "<h2>Lots of the network</h2>" in page
    assert (out / "plots" / "network_lots.png").read_bytes()[:8] == PNG_MAGIC
    table = page[page.index("<h2>Lots of the network</h2>") :]
    table = table[: table.index("</table>")]
    for lot in ("Central", "Market", "Riverside", "Fringe"):
        assert f"<td>{lot}</td>" in table
    for column in ("revenue per day", "drivers heading for the lot who drove on"):
        assert f"<th>{column}<br>" in table
    for figure in ("diverted_pct", "lost_pct", "search_km_per_day"):
        label = figures.label_of(figure)
        assert html.escape(label[:1].upper() + label[1:]) in page
    assert total_label(load_results(out, spec)) == "All lots"  # no panel says "Whole lot"
