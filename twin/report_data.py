"""A results folder read back for the report: its tables, ``summary.json`` and scenario.

Also the small helpers every part of the report uses to read those tables (measured rows,
clock times, level and lot names). Charts are in :mod:`twin.report_charts`, the page in
:mod:`twin.report`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from twin import figures
from twin.scenario.loader import ScenarioError, load_scenario
from twin.scenario.model import Scenario

DAY_S = 86_400.0
HOUR_S = 3_600.0


class ReportError(Exception):
    """The folder is not a usable results folder (the CLI prints it on one line, exit 2)."""


# --------------------------------------------------------------------------- reading


@dataclass
class Results:
    """What ``parktwin run --out`` wrote, read back; frames use the writer's column names."""

    path: Path
    summary: dict
    vehicles: pd.DataFrame | None  # None: the run kept no per-vehicle records
    occupancy: pd.DataFrame
    lanes: pd.DataFrame
    rates: pd.DataFrame | None
    start: pd.Timestamp
    scenario: Scenario | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.summary.get("scenario", self.path.name))

    @property
    def warmup_s(self) -> float:
        return float(self.summary.get("warmup_hours", 0.0)) * HOUR_S

    @property
    def horizon_s(self) -> float:
        return float(self.summary["horizon_days"]) * DAY_S

    @property
    def measured_days(self) -> float:
        return (self.horizon_s - self.warmup_s) / DAY_S

    @property
    def replications(self) -> int:
        return int(self.summary.get("replications", 1))

    def metric(self, name: str) -> dict | None:
        return self.summary.get("metrics", {}).get(name)

    def headline(self, section: str | None = None) -> list[str]:
        """The registry's headline figures this run has a value for (one section's, or those
        of the model itself: components get sections of their own)."""
        names = [n for n, m in self.summary.get("metrics", {}).items() if m.get("mean") is not None]
        return [
            n
            for n in figures.headline(names, section)
            if section is not None or not figures.lookup(n).section.component
        ]


#: What stands in for the charts drawn from per-vehicle records when a run kept none.
NO_VEHICLES = (
    "This run kept no per-vehicle records (output.vehicles: false or --no-vehicles), so this "
    "chart cannot be drawn; the headline figures above still cover it. Run again with "
    "per-vehicle records for the breakdown by hour, tariff band and spot type."
)


def _read_table(
    folder: Path, name: str, required: bool, files: dict[str, str] | None
) -> pd.DataFrame | None:
    """The run's table ``name``: the file ``summary.json`` names (``files``), so a stale table
    of another run in the same folder is never read; a folder written before the summary named
    its files is searched for ``name.parquet`` then ``name.csv``."""
    names = ([files[name]] if name in files else []) if files is not None else []
    if files is None:
        names = [f"{name}.parquet", f"{name}.csv"]
    for fname in names:
        path = folder / fname
        if not path.is_file():
            if files is not None and required:
                raise ReportError(f"{path}: named in summary.json but missing")
            continue
        try:
            return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        except Exception as exc:  # pyarrow and the csv parser raise many types
            raise ReportError(f"{path}: cannot read table: {exc}") from None
    if required:
        raise ReportError(
            f"{folder}: no {name}.parquet or {name}.csv (write the folder with "
            "`parktwin run SCENARIO --out DIR`)"
        )
    return None


def find_scenario(name: str, folder: Path) -> Path | None:
    """``scenarios/<name>.yaml`` in the working directory, beside the results or among the
    shipped examples (found through the installed package, not beside this file)."""
    from twin.installed import package_root

    roots = [Path.cwd(), folder.resolve().parent, package_root()]
    for root in roots:
        path = root / "scenarios" / f"{name}.yaml"
        if path.is_file():
            return path
    return None


def check_results_folder(folder: str | Path) -> None:
    """A results folder exists (a file given in its place is named as one)."""
    folder = Path(folder)
    if folder.is_file():
        raise ReportError(f"{folder}: a file; give the folder `parktwin run ... --out DIR` wrote")
    if not folder.is_dir():
        raise ReportError(f"{folder}: no such results folder")


def load_results(folder: str | Path, scenario: str | Path | None = None) -> Results:
    """Read a results folder; ``scenario`` (the YAML the run used) enables revenue by band.

    Raises :class:`ReportError` for a folder that is missing pieces or unreadable.
    """
    folder = Path(folder)
    check_results_folder(folder)
    spath = folder / "summary.json"
    if not spath.is_file():
        for made_by, charts in (
            ("sweep.json", "a sweep's folder: its charts are in plots/, its figures in "
             "summary.parquet"),
            ("optimize.json", "an optimize folder: its chart is optimize.png, its table "
             "optimize.csv"),
            ("comparison.json", "a comparison's folder: its figures are in comparison.csv"),
        ):  # fmt: skip
            if (folder / made_by).is_file():
                raise ReportError(f"{folder}: {charts}; `parktwin report` reads `run --out`")
        raise ReportError(
            f"{folder}: no summary.json (write the folder with `parktwin run SCENARIO --out DIR`)"
        )
    try:
        summary = json.loads(spath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReportError(f"{spath}: not valid JSON ({exc})") from None
    if not isinstance(summary, dict) or "metrics" not in summary or "horizon_days" not in summary:
        raise ReportError(f"{spath}: not a ParkTwin summary (no metrics / horizon_days)")
    files = summary.get("files")
    if files is not None and not (
        isinstance(files, dict) and all(isinstance(v, str) for v in files.values())
    ):
        raise ReportError(f"{spath}: files must map table names to file names")
    vehicles = _read_table(folder, "vehicles", False, files)
    if vehicles is not None and not len(vehicles.columns):
        vehicles = None  # written by a run that kept no per-vehicle records
    occupancy = _read_table(folder, "occupancy", True, files)
    lanes = _read_table(folder, "lanes", False, files)
    rates = _read_table(folder, "rates", False, files)
    assert occupancy is not None
    checks = [
        (occupancy, ("replication", "time_s", "group_kind", "group", "occupancy"), "occupancy")
    ]
    if vehicles is not None:
        checks.append((vehicles, ("replication", "arrival_s", "outcome", "amount"), "vehicles"))
    for frame, cols, what in checks:
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ReportError(f"{folder}: {what} table lacks columns {', '.join(missing)}")
    if rates is not None and "band" not in rates.columns and "table" in rates.columns:
        rates = rates.rename(columns={"table": "band"})  # the simulator's name for a band
    if rates is not None and not {"time_s", "band", "rate"} <= set(rates.columns):
        raise ReportError(f"{folder}: rates table needs columns time_s, band (or table), rate")
    if "time" in occupancy.columns and len(occupancy):
        first = occupancy.iloc[0]
        start = pd.Timestamp(first["time"]) - pd.to_timedelta(first["time_s"], unit="s")
    else:
        start = pd.Timestamp("2026-01-05")
    res = Results(
        path=folder,
        summary=summary,
        vehicles=vehicles,
        occupancy=occupancy,
        lanes=lanes if lanes is not None else pd.DataFrame(),
        rates=rates,
        start=start,
    )
    spec = Path(scenario) if scenario is not None else find_scenario(res.name, folder)
    if spec is not None:
        try:
            sc = load_scenario(spec)
        except ScenarioError as exc:
            raise ReportError(f"{exc.source}: {exc.problems[0]}") from None
        if sc.name != res.name:
            if scenario is not None:
                raise ReportError(
                    f"{spec} is scenario {sc.name!r}, but the results are of {res.name!r}"
                )
        else:
            res.scenario = sc
    if res.scenario is None:
        res.notes.append(
            "Revenue by tariff band is left out: the scenario file was not found "
            "(pass it with --scenario)."
        )
    return res


# --------------------------------------------------------------------------- helpers


def level_names(occ: pd.DataFrame) -> list[str]:
    """Level names in the facility's order (rows are written level by level)."""
    return list(pd.unique(occ.loc[occ["group_kind"].astype(str) == "level", "group"].astype(str)))


def lot_names(occ: pd.DataFrame) -> list[str]:
    """Lot names of a network in the facility's order (none for a single lot)."""
    return list(pd.unique(occ.loc[occ["group_kind"].astype(str) == "lot", "group"].astype(str)))


def measured_rows(res: Results, frame: pd.DataFrame, col: str = "time_s") -> pd.DataFrame:
    return frame[(frame[col] >= res.warmup_s) & (frame[col] < res.horizon_s)]


def clock_times(res: Results, seconds: pd.Series | np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(res.start + pd.to_timedelta(np.asarray(seconds, float), unit="s"))


def sec_of_day(res: Results) -> float:
    s = res.start
    return s.hour * HOUR_S + s.minute * 60.0 + s.second


def format_secs(x: float) -> str:
    return f"{x:.1f} s" if x >= 1 else f"{x:.2f} s"


def sample_step_min(frame: pd.DataFrame) -> float:
    times = np.unique(frame["time_s"].to_numpy())
    return float(np.min(np.diff(times)) / 60.0) if len(times) > 1 else 0.0
