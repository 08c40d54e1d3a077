"""Pricing-regression gate: has a code or scenario change moved what the lots earn and how full
they get?

CI reruns every shipped scenario with its fixed seed and compares a handful of *gate figures*
per replication with a stored baseline (``reports/baselines/<scenario>.json``). Because a
replication's random streams depend only on ``(seed, replication, stream)`` (common random
numbers), replication *r* now and replication *r* in the baseline see the same drivers. So the
comparison is paired: for every figure we look at ``d_r = current_r - baseline_r`` and

* **pass** when every ``d_r`` is 0 (identical code gives identical numbers; differences below
  ``1e-9`` relative are treated as float noise from a different platform, not as a change);
* **fail** when the differences are all equal and nonzero, or there is only one replication and
  it differs: no spread at all means the change is deterministic (a price moved);
* otherwise **fail** when the ``confidence`` (99 %) paired t interval of the mean difference
  excludes 0, and **pass** when it contains 0 (the figure moved, but not more than the
  replications disagree among themselves: noise from drivers being reshuffled).

Figures in :data:`EXACT_FIGURES` (``receipts_per_day``: the same drivers priced without
simulating, :mod:`twin.receipts`) carry no noise, so any difference fails them.

A figure present on only one side, or defined (not NaN) on only one side, fails too: the set of
tariff bands or spot types changed, which a reviewer must see. ``reports/README.md`` states the
rule for readers of CI logs and what to do when a change is intended (``--update``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from scipy import stats

from twin import figures
from twin.core.clock import DAY
from twin.core.pricing import Tariff
from twin.core.types import SpotType
from twin.experiments import RunResult, run
from twin.outputs import write_text
from twin.receipts import receipts_per_day
from twin.scenario.loader import ScenarioError, load_scenario, read_yaml
from twin.scenario.model import Scenario
from twin.sim.build import calendar_for

#: Confidence of the paired t interval that decides pass/fail.
GATE_CONFIDENCE = 0.99
#: Paired differences this small (relative to the figure) count as zero: float noise between
#: platforms or BLAS builds, never a pricing change (one cent in a million dollars).
REL_TOL = 1e-9
ABS_TOL = 1e-12
#: Revenue by entry time outside every named band of the tariff.
DEFAULT_BAND = "default"
BASELINE_FORMAT = 1

#: Figures computed without simulating (see :mod:`twin.receipts`): the same drivers priced the
#: same way, so any paired difference beyond float noise is a change, never noise.
RECEIPTS = "receipts_per_day"
EXACT_FIGURES = frozenset({RECEIPTS})

Verdict = Literal["pass", "FAIL"]


class RegressError(Exception):
    """A problem the user must fix before the gate can judge (exit code 2, one line)."""


class BaselineMissing(RegressError):
    """No stored baseline for a scenario: record one with ``--update``."""


# --------------------------------------------------------------------------- gate figures


def band_names(tariff: Tariff | None) -> list[str]:
    """The tariff's table names (bands, then special days with a table of their own) in file
    order, duplicates once, then ``"default"``."""
    names: list[str] = []
    for name in tariff.table_names[1:] if tariff is not None else ():
        if name not in names and name != DEFAULT_BAND:
            names.append(name)
    return [*names, DEFAULT_BAND]


def entry_bands(tariff: Tariff | None, entry_s: np.ndarray) -> np.ndarray:
    """Name of the rate table in force at each entry instant (core seconds), else "default".

    Asks the tariff itself (:meth:`Tariff.table_index_at`), so the split follows the pricing
    rule exactly: the first band in file order wins where bands overlap, a wrapping window
    belongs to the day it starts on, the file's boundary semantics hold, and a special day
    (a public holiday priced like a Sunday) is named by the table that priced it, not by the
    weekday's band.
    """
    entry_s = np.asarray(entry_s, dtype=float)
    out = np.full(entry_s.shape, DEFAULT_BAND, dtype=object)
    if tariff is None:
        return out
    names = np.asarray(tariff.table_names, dtype=object)
    names[0] = DEFAULT_BAND
    known = ~np.isnan(entry_s)
    index = np.fromiter((tariff.table_index_at(t) for t in entry_s[known].tolist()), dtype=np.int64)
    out[known] = names[index]
    return out


def _spot_types(result: RunResult) -> list[str]:
    """Spot types the lot has (capacity > 0), in the core's order."""
    occ = result.occupancy
    present = set(occ.loc[occ["group_kind"] == "spot_type", "group"].astype(str))
    return [t.name for t in SpotType if t.name in present]


def gate_metrics(result: RunResult) -> pd.DataFrame:
    """The figures the gate compares, one row per replication (index: replication): every
    figure of the run that the registry (:mod:`twin.figures`) marks as gated, in its order.

    The gate adds revenue per day split by the spot type the car used and by the tariff band
    in force at its entry; like ``revenue_per_day`` it counts amounts charged at exits inside
    [warm-up, horizon], so each split sums to the total.
    """
    sc = result.scenario
    t0, t1 = sc.warmup_s, sc.horizon_s
    days = (t1 - t0) / DAY
    reps = result.metrics["replication"].astype(int).to_list()
    table = result.metrics.set_index(result.metrics["replication"].astype(int))
    split: dict[str, np.ndarray] = {}

    v = result.vehicles
    paid = v["leave_s"].ge(t0) & v["leave_s"].lt(t1) & v["amount"].notna()
    v = v.loc[paid]
    tariff = sc.tariff.build(calendar_for(sc)) if sc.tariff is not None else None
    splits = (
        ("spot_type", v["spot_type"].astype(str).to_numpy(), _spot_types(result)),
        ("band", entry_bands(tariff, v["entry_s"].to_numpy()), band_names(tariff)),
    )
    for kind, keys, names in splits:
        sums = (
            pd.DataFrame(
                {
                    "replication": v["replication"].to_numpy(),
                    "key": keys,
                    "x": v["amount"].to_numpy(),
                }
            )
            .groupby(["replication", "key"])["x"]
            .sum()
            .unstack("key")
            .reindex(index=reps, columns=names)
            .fillna(0.0)
        )
        for name in names:
            split[f"revenue_per_day.{kind}[{name}]"] = sums[name].to_numpy() / days
    columns = {name: table[name].to_numpy(dtype=float) for name in table.columns}
    columns.update(split)
    columns[RECEIPTS] = np.array([receipts_per_day(sc, r, sc.seed) for r in reps])
    names = figures.gated(list(columns))
    return pd.DataFrame({n: columns[n] for n in names}, index=pd.Index(reps, name="replication"))


# --------------------------------------------------------------------------- baselines


class Baseline(BaseModel):
    """What ``reports/baselines/<scenario>.json`` holds: the run's identity and every gate figure
    per replication (null where a figure is undefined, e.g. mean price without a tariff)."""

    model_config = ConfigDict(extra="forbid")

    format: Literal[1] = BASELINE_FORMAT
    scenario: str
    scenario_file: str = Field(description="path as given when recorded (information only)")
    scenario_sha256: str = Field(description="hash of the scenario file (information only)")
    seed: int
    replications: int = Field(ge=1)
    horizon_days: float
    warmup_hours: float
    metrics: dict[str, list[float | None]]

    @model_validator(mode="after")
    def _lengths(self) -> Baseline:
        for name, values in self.metrics.items():
            if len(values) != self.replications:
                raise ValueError(
                    f"metric {name!r} has {len(values)} values for {self.replications} replications"
                )
        return self

    def frame(self) -> pd.DataFrame:
        """Per-replication values as a frame like :func:`gate_metrics` (None becomes NaN)."""
        data = {k: [math.nan if x is None else x for x in v] for k, v in self.metrics.items()}
        return pd.DataFrame(data, index=pd.Index(range(self.replications), name="replication"))


def baseline_path(baseline_dir: str | Path, scenario_name: str) -> Path:
    """``<dir>/<scenario name>.json``, with characters unsafe in file names replaced by ``_``."""
    return Path(baseline_dir) / (re.sub(r"[^A-Za-z0-9._-]", "_", scenario_name) + ".json")


def _display_path(path: str | Path) -> str:
    """Relative to the working directory when below it (baselines move with the repository)."""
    p = Path(path).resolve()
    try:
        return p.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return p.as_posix()


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_baseline(path: str | Path) -> Baseline:
    """Read a baseline; raises :class:`BaselineMissing` or :class:`RegressError` (one line)."""
    path = Path(path)
    if not path.is_file():
        raise BaselineMissing(f"no baseline {path}")
    try:
        return Baseline.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RegressError(
            f"{path}: not a valid baseline ({where + ': ' if where else ''}{first['msg']}); "
            "re-record it with --update"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RegressError(f"{path}: cannot read baseline: {exc}") from None


def make_baseline(scenario_path: str | Path, result: RunResult) -> Baseline:
    """The baseline recording ``result`` (a run of the scenario file at ``scenario_path``)."""
    figures = gate_metrics(result)
    sc = result.scenario
    return Baseline(
        scenario=sc.name,
        scenario_file=_display_path(scenario_path),
        scenario_sha256=file_sha256(scenario_path),
        seed=result.seed,
        replications=result.replications,
        horizon_days=sc.horizon_days,
        warmup_hours=sc.warmup_hours,
        metrics={
            name: [None if math.isnan(x) else float(x) for x in figures[name]]
            for name in figures.columns
        },
    )


def write_baseline(baseline: Baseline, path: str | Path) -> Path:
    """Write sorted JSON, one line per figure, so a re-recorded baseline diffs readably in a PR."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = baseline.model_dump()
    metrics = data.pop("metrics")
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in sorted(data.items())]
    # one line per figure: a re-recorded figure shows up as exactly one changed line
    body = ",\n".join(f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in sorted(metrics.items()))
    lines.append('  "metrics": {\n' + body + "\n  }")
    write_text(path, "{\n" + "\n".join(lines) + "\n}\n")
    return path


# --------------------------------------------------------------------------- comparison


def _judge(
    b: np.ndarray, c: np.ndarray, confidence: float, exact: bool = False
) -> tuple[Verdict, str, float, float, float]:
    """Verdict, reason, mean difference and its CI for paired values ``b`` and ``c``;
    ``exact``: a figure without noise (any difference fails)."""
    b_nan, c_nan = np.isnan(b), np.isnan(c)
    if (b_nan != c_nan).any():
        return "FAIL", "defined in only one of the runs", math.nan, math.nan, math.nan
    b, c = b[~b_nan], c[~c_nan]
    if len(b) == 0:
        return "pass", "undefined in both", math.nan, math.nan, math.nan
    d = c - b
    d[np.abs(d) <= ABS_TOL + REL_TOL * np.maximum(np.abs(b), np.abs(c))] = 0.0
    mean = float(d.mean())
    if not d.any():
        return "pass", "identical", 0.0, 0.0, 0.0
    if exact:
        return "FAIL", "same drivers, other receipts", mean, float(d.min()), float(d.max())
    n = len(d)
    if n == 1:
        return "FAIL", "changed (1 replication, no spread to judge by)", mean, mean, mean
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        return "FAIL", "same shift in every replication", mean, mean, mean
    lo, hi = stats.t.interval(confidence, n - 1, loc=mean, scale=sd / math.sqrt(n))
    if lo > 0 or hi < 0:
        return "FAIL", f"{100 * confidence:g}% CI excludes 0", mean, float(lo), float(hi)
    return "pass", "within noise", mean, float(lo), float(hi)


def compare(
    baseline: pd.DataFrame, current: pd.DataFrame, confidence: float = GATE_CONFIDENCE
) -> pd.DataFrame:
    """Judge every figure on the replications both frames hold (indexes = replication numbers).

    Returns one row per figure: ``metric, n, baseline_mean, current_mean, diff_mean, ci_low,
    ci_high, verdict, reason``, in the current run's order, then figures it no longer has.
    """
    common = baseline.index.intersection(current.index).sort_values()
    names = list(current.columns) + [m for m in baseline.columns if m not in current.columns]
    rows = []
    for name in names:
        row: dict = {"metric": name, "n": len(common)}
        if name not in current.columns or name not in baseline.columns:
            side = baseline if name in baseline.columns else current
            row.update(
                baseline_mean=baseline[name].mean() if side is baseline else math.nan,
                current_mean=current[name].mean() if side is current else math.nan,
                diff_mean=math.nan,
                ci_low=math.nan,
                ci_high=math.nan,
                verdict="FAIL",
                reason="not in this run" if side is baseline else "not in the baseline",
            )
        else:
            b = baseline.loc[common, name].to_numpy(dtype=float)
            c = current.loc[common, name].to_numpy(dtype=float)
            verdict, reason, mean, lo, hi = _judge(
                b.copy(), c.copy(), confidence, exact=name in EXACT_FIGURES
            )
            row.update(
                baseline_mean=float(np.nanmean(b)) if (~np.isnan(b)).any() else math.nan,
                current_mean=float(np.nanmean(c)) if (~np.isnan(c)).any() else math.nan,
                diff_mean=mean,
                ci_low=lo,
                ci_high=hi,
                verdict=verdict,
                reason=reason,
            )
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- per scenario


@dataclass
class ScenarioCheck:
    """The gate's verdict for one scenario file."""

    scenario: str
    path: Path
    baseline_path: Path
    table: pd.DataFrame  # see compare()
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool((self.table["verdict"] == "pass").all())

    @property
    def identical(self) -> bool:
        return bool(self.table["reason"].isin(["identical", "undefined in both"]).all())

    @property
    def failures(self) -> pd.DataFrame:
        return self.table[self.table["verdict"] != "pass"]


@dataclass
class BaselineUpdate:
    """What ``--update`` wrote, and how it differs from the baseline it replaced (if any)."""

    scenario: str
    path: Path
    baseline: Baseline
    previous: Baseline | None
    table: pd.DataFrame | None  # compare(previous, new), None for a first recording

    @property
    def changed(self) -> pd.DataFrame:
        if self.table is None:
            return pd.DataFrame()
        return self.table[~self.table["reason"].isin(["identical", "undefined in both"])]


def study_kind(path: str | Path) -> str | None:
    """The ``kind:`` of a YAML study file that is not a parking scenario (e.g. a locking
    study shipped next to the scenarios), else None. Such files have no revenue or occupancy to
    gate, so ``scenarios/*.yaml`` may hold them; a file that does not parse is not skipped
    (loading it reports the problem)."""
    try:
        data = read_yaml(Path(path))
    except ScenarioError:
        return None
    kind = data.get("kind")
    return None if kind in (None, "scenario") else str(kind)


def _load(path: str | Path) -> Scenario:
    """Load a scenario; ScenarioError propagates (the CLI prints its one-line problems)."""
    return load_scenario(path)


def _run(scenario: Scenario, replications: int | None) -> RunResult:
    return run(scenario, replications=replications, seed=scenario.seed)


def check(
    scenario_path: str | Path,
    baseline_dir: str | Path,
    replications: int | None = None,
    confidence: float = GATE_CONFIDENCE,
) -> ScenarioCheck:
    """Run a scenario with its own seed and compare it with its stored baseline.

    Raises :class:`BaselineMissing` without a baseline and :class:`RegressError` when the
    baseline cannot be paired with this run (other seed, no replication in common).
    """
    scenario_path = Path(scenario_path)
    sc = _load(scenario_path)
    bpath = baseline_path(baseline_dir, sc.name)
    try:
        base = load_baseline(bpath)
    except BaselineMissing:
        raise BaselineMissing(
            f"no baseline for scenario {sc.name!r} ({bpath} does not exist); record one with "
            f"`parktwin regress {scenario_path} --baseline {baseline_dir} --update` "
            "and commit it"
        ) from None
    if base.scenario != sc.name:
        raise RegressError(f"{bpath} is the baseline of {base.scenario!r}, not of {sc.name!r}")
    if base.seed != sc.seed:
        raise RegressError(
            f"{bpath} was recorded with seed {base.seed} but {scenario_path} now has seed "
            f"{sc.seed}: runs can only be paired with the same seed; review the change and "
            "re-record with --update"
        )
    result = _run(sc, replications)
    current = gate_metrics(result)
    notes = []
    if base.scenario_sha256 != file_sha256(scenario_path):
        notes.append(f"{scenario_path} changed since the baseline was recorded")
    common = len(base.frame().index.intersection(current.index))
    if common == 0:
        raise RegressError(f"{bpath}: no replication in common with this run")
    if common != base.replications or common != len(current):
        notes.append(
            f"baseline has {base.replications} replications, this run {len(current)}: "
            f"compared on the {common} they share"
        )
    for what, old, new in (
        ("horizon_days", base.horizon_days, sc.horizon_days),
        ("warmup_hours", base.warmup_hours, sc.warmup_hours),
    ):
        if old != new:
            notes.append(f"{what} was {old:g} in the baseline, now {new:g}")
    table = compare(base.frame(), current, confidence)
    return ScenarioCheck(sc.name, scenario_path, bpath, table, notes)


def update(
    scenario_path: str | Path,
    baseline_dir: str | Path,
    replications: int | None = None,
) -> BaselineUpdate:
    """Run a scenario and (re)write its baseline; reports what changed against the old one."""
    scenario_path = Path(scenario_path)
    sc = _load(scenario_path)
    bpath = baseline_path(baseline_dir, sc.name)
    try:
        previous: Baseline | None = load_baseline(bpath)
    except RegressError:  # missing or unreadable: replaced either way
        previous = None
    result = _run(sc, replications)
    new = make_baseline(scenario_path, result)
    table = None
    if previous is not None:
        table = compare(previous.frame(), new.frame(), GATE_CONFIDENCE)
    write_baseline(new, bpath)
    return BaselineUpdate(sc.name, bpath, new, previous, table)


# --------------------------------------------------------------------------- formatting


def format_value(metric: str, value: float, signed: bool = False) -> str:
    """A gate figure (or, with ``signed``, a difference) in the unit planners read it in."""
    if signed:
        return figures.format_diff(metric, value, signed=True)
    return figures.format_value(metric, value)


def format_ci(metric: str, lo: float, hi: float) -> str:
    """``[low, high]`` of a difference; a dash when there is no interval (or it is just 0)."""
    if lo is None or math.isnan(lo) or lo == hi == 0:
        return "–"
    return f"[{format_value(metric, lo, True)}, {format_value(metric, hi, True)}]"
