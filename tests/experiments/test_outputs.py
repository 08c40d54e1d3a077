"""Output folders: files are never half-written, two writers never share a folder, a path
that cannot be a folder is refused before anything runs, and runs never mix in one folder.

Runs are one or two short days of the surface lot (sfpark_adaptive where a rates table is the
point), so each test takes a few seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

import twin.sim.locking_study
from cli import app
from twin import api
from twin.experiments import run
from twin.outputs import LOCK_NAME, OutputError, claim
from twin.report import build_report
from twin.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SURFACE = ROOT / "scenarios" / "surface_lot.yaml"
SFPARK = ROOT / "scenarios" / "sfpark_adaptive.yaml"
STUDY = ROOT / "scenarios" / "studies" / "locking_study.yaml"
runner = CliRunner()
SHORT = ["--days", "1", "--replications", "1"]


def _one_line_exit_2(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    for needle in needles:
        assert needle in result.output, result.output


def test_a_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    """While one thread rewrites a run folder again and again, every read of its tables either
    finds no file (between --overwrite's delete and the rewrite) or a complete one."""
    result = run(load_scenario(SURFACE).model_copy(update={"horizon_days": 2}), replications=2)
    out = tmp_path / "out"
    result.write(out)
    stop = threading.Event()
    errors: list[BaseException] = []

    def rewrite() -> None:
        try:
            while not stop.is_set():
                result.write(out, overwrite=True)
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    writer = threading.Thread(target=rewrite)
    writer.start()
    reads = 0
    try:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            for name in ("vehicles.parquet", "summary.json"):
                try:
                    data = (out / name).read_bytes()
                except FileNotFoundError:
                    continue
                if name.endswith(".parquet"):
                    assert len(pq.ParquetFile(pa.BufferReader(data)).read()) == len(result.vehicles)
                else:
                    assert json.loads(data)["replications"] == 2
                reads += 1
    finally:
        stop.set()
        writer.join()
    assert not errors, errors
    assert reads > 10
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name]


def _hold_in_another_process(folder: Path) -> subprocess.Popen:
    code = (
        "import sys, time\n"
        "from twin.outputs import claim\n"
        "with claim(sys.argv[1]):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_is_refused_at_the_start_and_a_stale_lock_taken_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    holder = _hold_in_another_process(out)
    try:
        assert (out / LOCK_NAME).read_text().split()[0] == str(holder.pid)
        busy = f"process {holder.pid} is writing this folder"
        with pytest.raises(OutputError, match=busy), claim(out):
            pass
        calls: list[str] = []
        monkeypatch.setattr(api, "run", lambda *a, **k: calls.append("run"))
        refused = runner.invoke(app, ["run", str(SURFACE), *SHORT, "--out", str(out)])
        _one_line_exit_2(refused, str(out), f"process {holder.pid} is writing this folder")
        assert calls == []  # refused before simulating
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the holder died without cleaning up: its lock file (with a pid that no longer runs) stays,
    # and the next writer takes it over
    assert (out / LOCK_NAME).read_text().split()[0] == str(holder.pid)
    monkeypatch.undo()
    ok = runner.invoke(app, ["run", str(SURFACE), *SHORT, "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    assert not (out / LOCK_NAME).exists()
    assert pd.read_parquet(out / "vehicles.parquet")["replication"].eq(0).all()


def test_two_runs_into_one_folder_at_once_never_both_write(tmp_path: Path) -> None:
    """The trial of the issue: two `parktwin run --out SAME` at once. Whichever order they
    take, exactly one writes the folder and the other stops with exit 2."""
    out = tmp_path / "out"
    args = [sys.executable, "-m", "cli", "run", str(SURFACE), *SHORT, "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    assert sorted(code for code, _ in results) == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert "is writing this folder" in refused or "already holds a run's outputs" in refused
    assert "Traceback" not in refused
    assert len(pd.read_parquet(out / "vehicles.parquet")) > 0


def _commands(out: str) -> dict[str, list[str]]:
    return {
        "run": ["run", str(SURFACE), *SHORT, "--out", out],
        "compare": [
            *("compare", str(SURFACE), "--set", "tariff.per_period=3"),
            *("--days", "1", "--replications", "2", "--out", out),
        ],
        "sweep": ["sweep", str(SURFACE), "--grid", "tariff.per_period=1,2", *SHORT, "--out", out],
        "optimize": ["optimize", str(SURFACE), "--replications", "2", "--out", out],
        "locking": ["locking", str(STUDY), "--out", out],
    }


@pytest.mark.parametrize("command", ["run", "compare", "sweep", "optimize", "locking"])
@pytest.mark.parametrize("where", ["a file", "/dev/null/sub", "/proc/parktwin-out"])
def test_out_that_cannot_be_a_folder_is_refused_before_simulating(
    command: str, where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if where.startswith("/proc") and not Path("/proc").is_dir():
        pytest.skip("no /proc here")
    path = where
    if where == "a file":
        (tmp_path / "file.txt").write_text("x")
        path = str(tmp_path / "file.txt")

    def simulated(*args, **kwargs):
        raise AssertionError("simulated before checking --out")

    for name in ("run", "compare", "sweep", "optimize"):
        monkeypatch.setattr(api, name, simulated)
    monkeypatch.setattr(twin.sim.locking_study, "run_locking_study", simulated)
    result = runner.invoke(app, _commands(path)[command])
    _one_line_exit_2(result, f"--out {path}")
    assert "exists and is not a folder" in result.output or "cannot be used" in result.output


def test_run_into_another_runs_folder_is_refused_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "o"
    first = runner.invoke(app, ["run", str(SFPARK), *SHORT, "--days", "1.1", "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert (out / "rates.parquet").exists()
    (out / "notes.txt").write_text("the planner's own file")
    second = ["run", str(SURFACE), *SHORT, "--format", "csv", "--out", str(out)]
    _one_line_exit_2(runner.invoke(app, second), "already holds a run's outputs", "--overwrite")
    assert json.loads((out / "summary.json").read_text())["scenario"] == "sfpark_adaptive"
    ok = runner.invoke(app, [*second, "--overwrite"])
    assert ok.exit_code == 0, ok.output
    # only the second run's files (and the stranger's) are left: no parquet of the first
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if n.endswith(".parquet")], names
    assert "notes.txt" in names and (out / "notes.txt").read_text().startswith("the planner")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenario"] == "surface_lot"
    assert set(summary["files"].values()) == {n for n in names if n.endswith(".csv")}
    # a stale rates table put back by hand is not the run's: the report leaves it out
    pd.DataFrame({"time_s": [0.0], "band": ["default"], "rate": [2.0]}).to_parquet(
        out / "rates.parquet"
    )
    page = build_report(out, SURFACE).read_text()
    assert "Adaptive pricing" not in page


def test_vehicles_kept_only_when_asked_and_report_works_without_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per-vehicle records (~0.45 MB per replication-day on the downtown garage) are built only
    for --out (and the API), --no-vehicles leaves them out there too, and a run written without
    them (that, or ``output.vehicles: false``) still makes a report."""
    import twin.replication

    assert len(api.run(SURFACE, days=1, replications=1).vehicles) > 0  # the API keeps them
    real = twin.replication.vehicles_frame
    built: list[int] = []
    monkeypatch.setattr(
        twin.replication, "vehicles_frame", lambda rec: built.append(1) or real(rec)
    )
    plain = runner.invoke(app, ["run", str(SURFACE), *SHORT])
    assert plain.exit_code == 0, plain.output
    assert built == []  # nothing asked for them: none built
    out = tmp_path / "nv"
    args = ["run", str(SURFACE), "--days", "1", "--replications", "2", "--out", str(out)]
    written = runner.invoke(app, [*args, "--no-vehicles"])
    assert written.exit_code == 0, written.output
    assert built == [] and not (out / "vehicles.parquet").exists()
    assert "vehicles" not in json.loads((out / "summary.json").read_text())["files"]
    page = runner.invoke(app, ["report", str(out), "--scenario", str(SURFACE)])
    assert page.exit_code == 0, page.output
    html = (out / "report.html").read_text()
    assert html.count("kept no per-vehicle records") == 2  # lost drivers by hour, revenue
    assert "Headline figures" in html
    # the same with output.vehicles: false in the scenario (the README's advice at city scale)
    data = yaml.safe_load(SURFACE.read_text())
    data["output"] = {**data.get("output", {}), "vehicles": False}
    spec = tmp_path / "surface_lot.yaml"
    spec.write_text(yaml.safe_dump(data))
    quiet = tmp_path / "q"
    ran = runner.invoke(app, ["run", str(spec), *SHORT, "--out", str(quiet)])
    assert ran.exit_code == 0, ran.output
    report = runner.invoke(app, ["report", str(quiet), "--scenario", str(spec)])
    assert report.exit_code == 0, report.output
    assert "kept no per-vehicle records" in (quiet / "report.html").read_text()
