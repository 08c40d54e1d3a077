"""Grid sweeps: run a scenario at every combination of a few overridden settings.

A sweep is a scenario file, a grid (dotted scenario key → list of values, e.g.
``facility.strategy: [nearest, spread]`` and ``demand.0.multiplier: [0.8, 1.0, 1.2]``), a number
of replications and a seed. Each combination of values is a *point*, numbered in the order of
the cartesian product (the first key varies slowest). Every point runs the same replication
indexes with the same seed, so points differ only by their settings and not by the drivers they
happen to draw (common random numbers): differences between points are sharper than their
separate confidence intervals suggest.

Sweeps are built for long, interruptible batches:

* every point is validated before anything runs, so a typo fails in a second, not after an hour;
* every finished replication goes straight to ``DIR/runs/point=<k>/rep=<r>.parquet`` (written to
  a temporary name and renamed, so a half-written file never looks finished), and nothing else
  is kept in memory;
* ``DIR/sweep.json`` records the definition; ``resume=True`` skips runs whose file exists and
  refuses to mix results of a different definition;
* runs are issued replication by replication across all points, so an interrupted sweep is a
  complete sweep with fewer replications;
* at the end ``DIR/sweep.parquet`` (one row per point × replication), ``DIR/summary.parquet``
  (mean and 95% t interval per point and figure) and ``DIR/plots/<figure>.png``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import json
import math
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from twin import figures
from twin.executors import Executor, SerialExecutor, Task
from twin.experiments import figure_interval
from twin.outputs import (
    atomic_write,
    claim,
    remove_temporaries,
    save_figure,
    write_frame,
    write_json,
)
from twin.scenario.loader import (
    ScenarioError,
    apply_overrides,
    check_kind,
    format_errors,
    read_yaml,
    validate_scenario,
)
from twin.scenario.model import Scenario

#: A grid value: what a YAML scalar can be (dates are kept as their ISO text).
Scalar = StrictBool | StrictInt | StrictFloat | StrictStr | None

#: Keys the sweep itself controls; overriding them per point would break common random numbers.
RESERVED_KEYS = {"seed": "the sweep's seed", "replications": "the sweep's replications"}

#: sweep.json fields that must match for ``resume`` to continue a stored sweep.
DEFINITION_KEYS = (
    "scenario_digest",
    "grid",
    "replications",
    "seed",
    "days",
    "keep_occupancy",
    "first_replication",
)
#: What a stored definition written before a key existed means by it.
_DEFINITION_DEFAULTS: dict[str, Any] = {"first_replication": 0}

SweepProgress = Callable[[int, int], None]  # (runs done, total), skipped runs included


class SweepError(ScenarioError):
    """A sweep cannot run as asked; ``problems`` holds one readable line per problem."""


# -- definition --------------------------------------------------------------------------------
class SweepSpec(BaseModel):
    """What a sweep file holds (and the CLI options build): scenario, grid, replications, seed.

    ``replications`` and ``seed`` default to the scenario's own; ``days`` overrides the horizon
    of every point (handy for a quick trial of a long sweep). ``first_replication`` is the
    index of the first replication of every point (replications are
    ``first_replication .. first_replication + replications − 1``), so a second sweep can add
    independent replications to a first.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenario: Path
    grid: dict[str, list[Scalar]] = Field(min_length=1)
    replications: int | None = Field(default=None, ge=1)
    seed: int | None = Field(default=None, ge=0)
    days: float | None = Field(default=None, gt=0)
    keep_occupancy: bool = False
    first_replication: int = Field(default=0, ge=0)

    @field_validator("grid")
    @classmethod
    def _grid(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            if not key or any(not part for part in key.split(".")):
                raise ValueError(f"{key!r} is not a dotted scenario key like facility.strategy")
            if key in RESERVED_KEYS:
                raise ValueError(f"{key} cannot be swept: every point uses {RESERVED_KEYS[key]}")
            if not values:
                raise ValueError(f"{key}: give at least one value")
            seen = [json.dumps(v) for v in values]
            dupes = sorted({s for s in seen if seen.count(s) > 1})
            if dupes:
                raise ValueError(f"{key}: repeated values {', '.join(dupes)}")
        return grid


def parse_grid_option(text: str) -> tuple[str, list[Any]]:
    """``"demand.0.multiplier=0.8,1.0,1.2"`` → ``("demand.0.multiplier", [0.8, 1.0, 1.2])``.

    Values are read as a YAML flow list, so they get the types they would have in a scenario
    file (numbers, ``true``/``false``, ``null``, text) and a value containing a comma can be
    quoted: ``tariff.name='a,b',c``.
    """
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SweepError(
            "--grid", [f"{text!r}: expected KEY=V1,V2,... (e.g. facility.strategy=nearest,spread)"]
        )
    try:
        parsed = yaml.safe_load(f"[{values}]")
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        raise SweepError(
            "--grid", [f"{key}: cannot read the values {values!r}: {problem}"]
        ) from None
    out: list[Any] = []
    for value in parsed:
        if isinstance(value, dt.date | dt.datetime):
            value = value.isoformat()
        if isinstance(value, list | dict):
            raise SweepError("--grid", [f"{key}: {value!r} is not a single value"])
        out.append(value)
    if not out:
        raise SweepError("--grid", [f"{key}: give at least one value after '='"])
    return key, out


def parse_grid(options: Sequence[str]) -> dict[str, list[Any]]:
    """Several ``--grid`` options into one ordered grid; a key given twice is an error."""
    grid: dict[str, list[Any]] = {}
    for text in options:
        key, values = parse_grid_option(text)
        if key in grid:
            raise SweepError("--grid", [f"{key}: given twice; put all its values in one --grid"])
        grid[key] = values
    return grid


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, first key varying slowest (point k = row k)."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


def load_sweep_file(path: str | Path) -> SweepSpec:
    """Read a sweep YAML file; its ``scenario`` path is relative to the sweep file."""
    path = Path(path)
    data = read_yaml(path)
    check_kind(data, "sweep", str(path))
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise SweepError(str(path), format_errors(exc, SweepSpec)) from None
    if not spec.scenario.is_absolute():
        spec = spec.model_copy(update={"scenario": path.parent / spec.scenario})
    return spec


def make_spec(
    scenario: str | Path,
    grid: Mapping[str, Sequence[Any]],
    *,
    replications: int | None = None,
    seed: int | None = None,
    days: float | None = None,
    keep_occupancy: bool = False,
    first_replication: int = 0,
) -> SweepSpec:
    """Build and validate a sweep definition from arguments (the CLI's and the API's path)."""
    data = {
        "scenario": scenario,
        "grid": {k: list(v) for k, v in grid.items()},
        "replications": replications,
        "seed": seed,
        "days": days,
        "keep_occupancy": keep_occupancy,
        "first_replication": first_replication,
    }
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise SweepError("sweep", format_errors(exc, SweepSpec)) from None


@dataclass(frozen=True)
class Point:
    """One grid combination and its validated scenario."""

    index: int
    overrides: dict[str, Any]
    scenario: Scenario

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.overrides.items())


@dataclass
class SweepPlan:
    """A validated sweep: every point's scenario, the resolved seed and replications."""

    spec: SweepSpec
    base: Scenario
    points: list[Point]
    replications: int
    seed: int

    @property
    def total(self) -> int:
        return len(self.points) * self.replications

    @property
    def indexes(self) -> range:
        """The replication indexes every point runs."""
        first = self.spec.first_replication
        return range(first, first + self.replications)

    @property
    def grid(self) -> dict[str, list[Any]]:
        return self.spec.grid

    def definition(self) -> dict[str, Any]:
        """What ``sweep.json`` stores; :data:`DEFINITION_KEYS` of it must match to resume."""
        digest = hashlib.sha256(self.base.model_dump_json().encode()).hexdigest()
        return {
            "version": 1,
            "scenario": str(Path(self.spec.scenario).resolve()),
            "scenario_name": self.base.name,
            "scenario_digest": digest,
            "grid": self.spec.grid,
            "replications": self.replications,
            "seed": self.seed,
            "days": self.spec.days,
            "keep_occupancy": self.spec.keep_occupancy,
            "first_replication": self.spec.first_replication,
            "points": [{"point": p.index, "overrides": p.overrides} for p in self.points],
        }


def plan_sweep(spec: SweepSpec) -> SweepPlan:
    """Validate the scenario and every point's overrides before anything runs.

    Raises :class:`SweepError` with the loader's readable lines, each prefixed by the point it
    concerns; a problem shared by several points is listed once, naming them all.
    """
    path = Path(spec.scenario)
    raw = read_yaml(path)  # ScenarioError (unreadable, bad YAML) propagates as is
    # (apply_overrides works on an unshared copy: YAML anchors stay independent per point)
    base_overrides: dict[str, Any] = {} if spec.days is None else {"horizon_days": spec.days}
    base = validate_scenario(apply_overrides(raw, base_overrides), str(path), path.parent)
    problems: dict[str, list[tuple[int, str]]] = {}
    points: list[Point] = []
    for k, overrides in enumerate(expand_grid(spec.grid)):
        label = ", ".join(f"{key}={v}" for key, v in overrides.items())
        try:
            data = apply_overrides(raw, {**base_overrides, **overrides})
            points.append(Point(k, overrides, validate_scenario(data, str(path), path.parent)))
        except ScenarioError as exc:
            for line in exc.problems:
                problems.setdefault(line, []).append((k, label))
    if problems:
        out = []
        for line, where in problems.items():
            k, label = where[0]
            more = (
                f" (also points {', '.join(str(p) for p, _ in where[1:])})"
                if len(where) > 1
                else ""
            )
            out.append(f"point {k} ({label}){more}: {line}")
        raise SweepError(str(path), out)
    return SweepPlan(
        spec=spec,
        base=base,
        points=points,
        replications=spec.replications or base.replications,
        seed=base.seed if spec.seed is None else spec.seed,
    )


# -- files ------------------------------------------------------------------------------------
def run_path(out: Path, point: int, replication: int) -> Path:
    """Where one finished run's metrics row lives; its existence means the run is done."""
    return out / "runs" / f"point={point}" / f"rep={replication}.parquet"


def occupancy_path(out: Path, point: int, replication: int) -> Path:
    """Where one run's occupancy frame lives (``keep_occupancy`` only)."""
    return out / "runs" / f"point={point}" / f"occupancy-rep={replication}.parquet"


def _write_json(path: Path, data: dict) -> None:
    write_json(path, data, sort_keys=False)


def _run_row(point: Point, replication: int, seed: int, metrics: dict[str, float]) -> pa.Table:
    """One run's file content: the point, its parameters, replication, seed and figures.

    Built with pyarrow directly: a third of the cost of a one-row pandas frame, which matters
    when the simulation itself takes milliseconds."""
    row: dict[str, Any] = {"point": point.index, **point.overrides}
    row.update(replication=replication, seed=seed)
    row.update({k: float(v) for k, v in metrics.items()})
    return pa.Table.from_pylist([row])


def _prepare_dir(out: Path, plan: SweepPlan, resume: bool, overwrite: bool) -> None:
    """Check ``out`` against the stored definition, clear it if asked, record the definition."""
    stored_path = out / "sweep.json"
    definition = plan.definition()
    if stored_path.exists() and overwrite:
        shutil.rmtree(out / "runs", ignore_errors=True)
        shutil.rmtree(out / "plots", ignore_errors=True)
        for name in ("sweep.json", "sweep.parquet", "summary.parquet"):
            with contextlib.suppress(FileNotFoundError):
                (out / name).unlink()
    elif stored_path.exists() and not resume:
        raise SweepError(
            str(out),
            [
                "already holds a sweep (sweep.json): add --resume to continue it, "
                "--overwrite to start again, or choose another --out folder"
            ],
        )
    elif stored_path.exists():
        try:
            stored = json.loads(stored_path.read_text())
        except (OSError, ValueError) as exc:
            raise SweepError(str(stored_path), [f"cannot read the stored sweep: {exc}"]) from None
        differ = [
            key
            for key in DEFINITION_KEYS
            if json.dumps(stored.get(key, _DEFINITION_DEFAULTS.get(key)))
            != json.dumps(definition[key])
        ]
        if differ:
            lines = []
            for key in differ:
                if key == "scenario_digest":
                    lines.append("--resume: the scenario's content differs from the stored sweep's")
                else:
                    was, now = json.dumps(stored.get(key)), json.dumps(definition[key])
                    lines.append(f"--resume: {key} differs (stored {was}, now {now})")
            lines.append("run it without --resume into another folder, or add --overwrite")
            raise SweepError(str(stored_path), lines)
        remove_temporaries(out / "runs", recursive=True)
    _write_json(stored_path, definition)


# -- results ----------------------------------------------------------------------------------
def _param_column(values: list[Any]) -> list[Any]:
    """A parameter's values as one parquet-friendly column: mixed types become text."""
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {int, float} or len(kinds) <= 1:
        return values
    return [None if v is None else str(v) for v in values]


def _with_params(frame: pd.DataFrame, plan: SweepPlan) -> pd.DataFrame:
    """Insert the grid's parameter columns (from the plan, not the files) after ``point``."""
    params = pd.DataFrame(
        {key: _param_column([p.overrides[key] for p in plan.points]) for key in plan.grid},
        index=pd.Index([p.index for p in plan.points], name="point"),
    )
    values = params.loc[frame["point"].to_numpy()].reset_index(drop=True)
    rest = frame.drop(columns=[c for c in plan.grid if c in frame.columns])
    return pd.concat([rest[["point"]], values, rest.drop(columns=["point"])], axis=1)


def read_table(out: Path, plan: SweepPlan) -> pd.DataFrame:
    """One row per point × replication (point, then replication order) from the run files.

    Files are read by a few threads (pyarrow decodes without the GIL): about 0.7 ms per run
    file on a 2-core machine, so assembling a 10,000-run sweep takes seconds.
    """
    params = set(plan.grid)
    paths = [run_path(out, p.index, r) for p in plan.points for r in plan.indexes]

    def read(path: Path) -> pa.Table:
        table = pq.ParquetFile(path).read()
        return table.drop_columns([c for c in table.column_names if c in params])

    with ThreadPoolExecutor(max_workers=4) as pool:
        tables = list(pool.map(read, paths))
    merged = pa.concat_tables(tables, promote_options="default").to_pandas()
    return _with_params(merged, plan)


def summarise(table: pd.DataFrame, plan: SweepPlan, confidence: float = 0.95) -> pd.DataFrame:
    """Per point and figure: mean, sd and the interval of the mean over the replications, as
    ``run().summary()`` gives them (:func:`twin.experiments.figure_interval`: the t interval,
    pooled counts for shares of drivers), with its ``unreliable`` flag."""
    skip = {"point", "replication", "seed", *plan.grid}
    metric_names = [c for c in table.columns if c not in skip]
    rows = []
    for point, group in table.groupby("point", sort=True):
        for name in metric_names:
            row = figure_interval(group, name, confidence)
            rows.append({"point": point, "metric": name, **row})
    return _with_params(pd.DataFrame(rows), plan)


def _same(a: Any, b: Any) -> bool:
    """Grid values compare by type as well as value (``1`` is not ``true``, nor ``1.0``)."""
    return type(a) is type(b) and a == b


def _point_of(plan: SweepPlan, overrides: Mapping[str, Any]) -> int:
    return next(
        p.index for p in plan.points if all(_same(p.overrides[k], v) for k, v in overrides.items())
    )


def plot_sweep(summary: pd.DataFrame, plan: SweepPlan, folder: Path) -> list[Path]:
    """One PNG per headline figure: mean and 95% CI against the first grid key, one series per
    combination of the other keys.

    A numeric first key gets a numeric axis (sorted, series joined by lines); any other gets
    one slot per value in grid order, with markers only, since a line between categories
    would suggest values in between. Series are shifted sideways a little so their error bars
    do not hide each other. Percentages are clipped to 0..100 like the CLI's tables. Uses
    matplotlib's object API, so it never changes a notebook's pyplot backend.
    """
    from matplotlib.figure import Figure

    folder.mkdir(parents=True, exist_ok=True)
    keys = list(plan.grid)
    x_key, line_keys = keys[0], keys[1:]
    x_values = plan.grid[x_key]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in x_values)
    slots = sorted(range(len(x_values)), key=lambda i: x_values[i]) if numeric else None
    series = expand_grid({k: plan.grid[k] for k in line_keys}) if line_keys else [{}]
    span = (max(x_values) - min(x_values)) if numeric and len(x_values) > 1 else 1.0
    step = (0.012 * span if numeric else 0.08) if len(series) > 1 else 0.0
    reps = plan.replications
    indexed = summary.set_index(["point", "metric"])
    written = []
    names = list(pd.unique(indexed.index.get_level_values("metric")))
    for name in figures.headline(names):
        found = figures.lookup(name)
        if found.section.component:  # the report's business; a sweep plots the lot's figures
            continue
        rows = indexed.xs(name, level="metric")
        if rows["mean"].isna().all():
            continue
        title = found.label[:1].upper() + found.label[1:]
        ylabel = found.unit.shown or "value"
        scale = found.unit.scale
        top = found.unit.high * scale if found.unit.high is not None else math.inf
        fig = Figure(figsize=(8, 4.6), dpi=120)
        ax = fig.add_subplot()
        for j, fixed in enumerate(series):
            order = slots if slots is not None else range(len(x_values))
            points = [_point_of(plan, {x_key: x_values[i], **fixed}) for i in order]
            offset = (j - (len(series) - 1) / 2) * step
            xs = np.array([x_values[i] if numeric else i for i in order], dtype=float) + offset
            sel = rows.loc[points]
            means = sel["mean"].to_numpy(dtype=float) * scale
            lo = np.clip(
                sel["ci_low"].to_numpy(dtype=float) * scale,
                0.0 if top < math.inf else -math.inf,
                top,
            )
            hi = np.clip(sel["ci_high"].to_numpy(dtype=float) * scale, None, top)
            err = None
            if not np.isnan(lo).all():
                err = np.vstack([np.nan_to_num(means - lo), np.nan_to_num(hi - means)])
            ax.errorbar(
                xs,
                means,
                yerr=err,
                marker="o",
                markersize=5,
                capsize=4,
                linewidth=1.6 if numeric else 0,
                elinewidth=1.3,
                color=f"C{j % 10}",
                label=", ".join(str(v) for v in fixed.values()) if fixed else None,
            )
        if numeric:
            ax.set_xticks(sorted(x_values))
        else:
            ax.set_xticks(range(len(x_values)), [str(v) for v in x_values])
            ax.set_xlim(-0.5, len(x_values) - 0.5)
        ax.set_xlabel(x_key)
        ax.set_ylabel(ylabel)
        if np.nanmin(rows["mean"].to_numpy(dtype=float)) >= 0:
            ax.set_ylim(bottom=0)  # then pad below 0 so markers at zero are not cut in half
            ax.set_ylim(bottom=-0.02 * ax.get_ylim()[1])
        if top < math.inf and ax.get_ylim()[1] > top:
            ax.set_ylim(top=top * 1.03)
        ax.grid(True, alpha=0.3)
        note = f"mean and 95% CI over {reps} replications" if reps > 1 else "1 replication, no CI"
        fig.suptitle(f"{title} by {x_key}", fontsize=11.5, x=0.015, ha="left")
        ax.set_title(
            f"{plan.base.name}: {note}, seed {plan.seed} (same drivers at every point)",
            fontsize=8.5,
            loc="left",
            color="0.35",
        )
        right = 0.97
        if line_keys:
            title = "\n".join(line_keys)  # one key per line keeps the legend narrow
            ax.legend(
                title=title,
                fontsize=9,
                title_fontsize=9,
                frameon=False,
                loc="upper left",
                bbox_to_anchor=(1.01, 1.0),
            )
            # Room for the legend from its longest line (about 0.0095 of the width per
            # character at 9 pt): fixed margins instead of tight_layout, which would draw
            # every figure twice.
            labels = [", ".join(str(v) for v in s.values()) for s in series]
            longest = max(len(text) for text in [*line_keys, *labels])
            right = min(0.85, max(0.5, 0.94 - 0.0095 * longest - 0.05))
        fig.subplots_adjust(left=0.09, right=right, top=0.86, bottom=0.12)
        path = folder / f"{name}.png"
        save_figure(fig, path)
        written.append(path)
    return written


@dataclass
class SweepResult:
    """A finished sweep: the tidy table, the per-point summary and where things were written."""

    out: Path | None  # None: a sweep run without an output folder (nothing written)
    plan: SweepPlan
    table: pd.DataFrame  # one row per point × replication: parameters, then figures
    summary: pd.DataFrame  # one row per point × figure: mean, sd, ci_low, ci_high, half_width, n
    plots: list[Path]
    ran: int  # runs simulated by this call
    skipped: int  # runs found finished on disk (resume)
    #: run files found unreadable on resume (path under ``out``, reason): deleted and run again
    unreadable: list[tuple[Path, str]] = field(default_factory=list)

    def wide(self, metrics: Sequence[str] | None = None) -> pd.DataFrame:
        """The summary with one row per point and ``<figure>`` / ``<figure>.half_width``
        columns, for a quick look in a notebook."""
        s = self.summary
        if metrics is not None:
            s = s[s["metric"].isin(metrics)]
        keys = ["point", *self.plan.grid]
        mean = s.pivot(index="point", columns="metric", values="mean")
        half = s.pivot(index="point", columns="metric", values="half_width").add_suffix(
            ".half_width"
        )
        params = s.drop_duplicates("point").set_index("point")[keys[1:]]
        return pd.concat([params, mean, half], axis=1).reset_index()


def _finished(
    out: Path, plan: SweepPlan, keep: tuple[str, ...]
) -> tuple[set[tuple[int, int]], list[tuple[Path, str]]]:
    """The runs on disk that are complete, and the files that are not: a run file (or its
    occupancy file) that is empty, truncated or otherwise unreadable is deleted and named, so
    the run is done again instead of crashing ``--resume`` later."""

    def check(key: tuple[int, int]) -> tuple[tuple[int, int], Path | None, str]:
        paths = [run_path(out, *key)]
        if keep:
            paths.append(occupancy_path(out, *key))
        for path in paths:
            try:
                rows = pq.read_table(path).num_rows
            except FileNotFoundError:
                if path is paths[0]:
                    return key, None, ""  # not run yet
                rows, error = -1, "missing"
            except (OSError, pa.ArrowException) as exc:
                rows, error = -1, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            else:
                error = "" if rows >= 1 else "no rows"
            if error:
                return key, path, error
        return key, None, "done"

    keys = [(p.index, r) for p in plan.points for r in plan.indexes]
    done: set[tuple[int, int]] = set()
    unreadable: list[tuple[Path, str]] = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        for key, bad, state in pool.map(check, keys):
            if bad is not None:
                unreadable.append((bad.relative_to(out), state))
                run_path(out, *key).unlink(missing_ok=True)
                occupancy_path(out, *key).unlink(missing_ok=True)
            elif state == "done":
                done.add(key)
    return done, unreadable


def _tasks(
    plan: SweepPlan, keep: tuple[str, ...], finished: set[tuple[int, int]]
) -> Iterator[Task]:
    """Runs still to do, replication by replication across all points (lazy)."""
    for r in plan.indexes:
        for point in plan.points:
            if (point.index, r) not in finished:
                yield Task(point.scenario, r, plan.seed, keep=keep, tag=point.index)


def run_sweep(
    plan: SweepPlan,
    out: str | Path | None,
    *,
    executor: Executor | None = None,
    resume: bool = False,
    overwrite: bool = False,
    plots: bool = True,
    progress: SweepProgress | None = None,
) -> SweepResult:
    """Run every point × replication not yet on disk, streaming each to its own file.

    ``executor`` defaults to :class:`SerialExecutor`; the table does not depend on it. Raises
    :class:`SweepError` if ``out`` holds a different sweep (or any sweep, without ``resume`` or
    ``overwrite``), :class:`~twin.outputs.OutputError` if ``out`` cannot be a folder or another
    process is writing it. A run file found unreadable on resume is run again
    (``SweepResult.unreadable`` names it). Interrupting (KeyboardInterrupt) loses at most the
    runs in flight.

    With ``out`` None nothing is written: the runs are kept in memory (figures only; no
    occupancy, no plots) and the result's ``table`` and ``summary`` are all there is;
    ``resume`` and ``overwrite`` do not apply.
    """
    if out is None:
        return _sweep_in_memory(plan, executor, progress)
    with claim(out) as folder:
        return _run_sweep(plan, folder, executor, resume, overwrite, plots, progress)


def _run_sweep(
    plan: SweepPlan,
    out: Path,
    executor: Executor | None,
    resume: bool,
    overwrite: bool,
    plots: bool,
    progress: SweepProgress | None,
) -> SweepResult:
    _prepare_dir(out, plan, resume, overwrite)
    keep = ("occupancy",) if plan.spec.keep_occupancy else ()
    by_index = {p.index: p for p in plan.points}
    finished, unreadable = _finished(out, plan, keep)
    skipped = done = len(finished)
    if progress is not None:
        progress(done, plan.total)
    own = executor is None
    executor = executor or SerialExecutor()
    try:
        for task, rep in executor.map_tasks(_tasks(plan, keep, finished)):
            point = by_index[task.tag]
            if keep:
                write_frame(rep.occupancy, occupancy_path(out, point.index, task.replication))
            row = _run_row(point, task.replication, task.seed, rep.metrics)
            atomic_write(
                run_path(out, point.index, task.replication),
                lambda p, t=row: pq.write_table(t, p),
            )
            done += 1
            if progress is not None:
                progress(done, plan.total)
    finally:
        if own:
            executor.close()
    table = read_table(out, plan)
    summary = summarise(table, plan)
    write_frame(table, out / "sweep.parquet")
    write_frame(summary, out / "summary.parquet")
    written = plot_sweep(summary, plan, out / "plots") if plots else []
    return SweepResult(
        out, plan, table, summary, written, done - skipped, skipped, unreadable=unreadable
    )


def _sweep_in_memory(
    plan: SweepPlan, executor: Executor | None, progress: SweepProgress | None
) -> SweepResult:
    """Every point × replication, figures only, collected in memory (``out`` None)."""
    rows: list[dict[str, Any]] = []
    if progress is not None:
        progress(0, plan.total)
    own = executor is None
    executor = executor or SerialExecutor()
    try:
        for task, rep in executor.map_tasks(_tasks(plan, (), set())):
            # the parameters come from the plan (_with_params), as when read back from disk
            row = {"point": task.tag, "replication": task.replication, "seed": task.seed}
            rows.append(row | {k: float(v) for k, v in rep.metrics.items()})
            if progress is not None:
                progress(len(rows), plan.total)
    finally:
        if own:
            executor.close()
    merged = (
        pd.DataFrame(rows)
        .sort_values(["point", "replication"], kind="stable")
        .reset_index(drop=True)
    )
    table = _with_params(merged, plan)
    return SweepResult(None, plan, table, summarise(table, plan), [], len(rows), 0)


def runs_on_disk(out: str | Path) -> int:
    """How many runs of the sweep in ``out`` are finished (for an interrupted sweep's message)."""
    return sum(1 for _ in Path(out).glob("runs/point=*/rep=*.parquet"))
