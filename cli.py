"""`parktwin`: command-line front end. Thin on purpose: every command is a call into twin.api."""

from __future__ import annotations

import importlib.util
import math
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

import twin
from twin import installed
from twin.executors import ExecutorName
from twin.outputs import OutputError, claim

if TYPE_CHECKING:
    from twin import api
else:
    # `parktwin --help` and `--version` must not wait ~1 s for scipy, pandas and pydantic:
    # twin.api is executed at a command's first `api.` lookup (tests/test_startup.py).
    _spec = importlib.util.find_spec("twin.api")
    _spec.loader = importlib.util.LazyLoader(_spec.loader)
    api = sys.modules.setdefault("twin.api", importlib.util.module_from_spec(_spec))
    if api.__spec__ is _spec:
        _spec.loader.exec_module(api)

app = typer.Typer(
    help="ParkTwin: simulate parking facilities to plan capacity, allocation and pricing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # reflow docstring paragraphs to the terminal's width
)
console = Console()
err_console = Console(stderr=True)


#: Options shared by every command that runs replications (run, sweep).
ExecutorOption = Annotated[
    ExecutorName | None,
    typer.Option(
        help="Where runs execute: serial (this process), processes (a local pool) or dask "
        "(a local cluster, or --scheduler). The numbers are the same with each."
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(help="Worker processes (processes: default all cores; dask: 2).", min=1),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        metavar="ADDRESS",
        help="Dask scheduler to use, e.g. tcp://10.0.0.5:8786 (implies --executor dask).",
    ),
]


class Format(StrEnum):
    parquet = "parquet"
    csv = "csv"


def _print_version(value: bool) -> None:
    if value:
        console.print(f"parktwin {twin.__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """ParkTwin: simulate parking facilities to plan capacity, allocation and pricing.

    Describe a facility and its demand in a YAML scenario (`parktwin examples --copy DIR`
    copies the shipped ones to start from; see the README), then `parktwin run SCENARIO`.
    """


def _load_or_exit(path: Path, overrides: dict | None = None) -> api.Scenario:
    try:
        return api.load(path, overrides)
    except api.ScenarioError as exc:
        for problem in exc.problems:
            err_console.print(
                f"[bold red]error[/]: {escape(exc.source)}: {escape(problem)}",
                highlight=False,
                soft_wrap=True,
            )
        raise typer.Exit(code=2) from None


def summary_tables(result: api.RunResult) -> list[Table]:
    """Headline figures and occupancy by level and spot type, each ± its 95% CI; then each
    operations component's figures (labels and units from twin.figures)."""
    from twin import figures
    from twin.tables import MAX_GROUP_ROWS, busiest, cell, figure_table, operations_tables

    sc = result.scenario
    n = result.replications
    ci = n > 1
    summary = result.summary()
    title = (
        f"{sc.name}: {sc.horizon_days - sc.warmup_hours / 24:g} days measured after a "
        f"{sc.warmup_hours:g} h warm-up, "
        f"{n} replication{'s' * (n > 1)}, seed {result.seed}" + (" — mean (95% CI)" if ci else "")
    )
    main = [n for n in figures.headline(summary.index) if not figures.lookup(n).section.component]
    per_lot = figures.matching(list(summary.index), "revenue_per_day.lot[{lot}]")
    shown, hidden = busiest(per_lot, lambda name: summary.loc[name, "mean"])
    head = figure_table(title, main + shown, summary, ci)
    if hidden:
        more = f"[dim]… {hidden} more lots in summary.json[/]"
        head.add_row(more, *[""] * (len(head.columns) - 1))
    n_levels = sum(n.startswith("occupancy.level[") and n.endswith(".mean") for n in summary.index)
    occ = Table(
        title="occupancy by level and spot type"
        + (f" (the {MAX_GROUP_ROWS} highest peaks of each)" if n_levels > MAX_GROUP_ROWS else ""),
        title_justify="left",
    )
    occ.add_column("level / spot type")
    occ.add_column("mean", justify="right")
    occ.add_column("peak", justify="right")
    for kind in ("lot", "level", "spot_type"):
        prefix = f"occupancy.{kind}["
        groups = [
            name[len(prefix) : -len("].mean")]
            for name in summary.index
            if name.startswith(prefix) and name.endswith(".mean")
        ]
        shown, hidden = busiest(  # highest peak first, then highest mean
            groups,
            lambda g, p=prefix: (
                summary.loc[f"{p}{g}].peak", "mean"],
                summary.loc[f"{p}{g}].mean", "mean"],
            ),
        )
        for group in shown:
            peak = summary.loc[f"{prefix}{group}].peak"]
            label = f"{kind} {group}" if kind in ("lot", "level") else group.lower()
            occ.add_row(
                escape(label),
                cell(f"{prefix}{group}].mean", summary.loc[f"{prefix}{group}].mean"], ci),
                cell(f"{prefix}{group}].peak", peak, ci),
            )
        if hidden:
            occ.add_row(f"[dim]… {hidden} more {kind}s in summary.json[/]", "", "")
    return [head, occ, *operations_tables(summary, ci)]


@app.command()
def run(
    ctx: typer.Context,
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file (see scenarios/).")],
    seed: Annotated[int | None, typer.Option(help="Random seed; default: the scenario's.")] = None,
    days: Annotated[
        float | None, typer.Option(help="Simulated days; overrides horizon_days.")
    ] = None,
    replications: Annotated[
        int | None, typer.Option(help="Independent replications; default: the scenario's.", min=1)
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for vehicles/occupancy/lanes tables and summary.json."),
    ] = None,
    format: Annotated[Format, typer.Option(help="Table format for --out.")] = Format.parquet,
    no_vehicles: Annotated[
        bool,
        typer.Option(
            "--no-vehicles",
            help="Write no per-vehicle table to --out (memory then stays flat however many "
            "replications and days; the figures are the same). Without --out none is kept.",
        ),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace the outputs of an earlier run in --out (only ParkTwin's own files "
            "there are deleted). Without it such a folder is refused.",
        ),
    ] = False,
    executor: ExecutorOption = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    warmup: Annotated[
        str | None,
        typer.Option(
            help="Warm-up excluded from every figure: HOURS, or 'auto' to detect it with MSER-5 "
            "on the mean occupancy of 5 pilot replications. Default: the scenario's warmup_hours."
        ),
    ] = None,
    precision: Annotated[
        float | None,
        typer.Option(
            help="Instead of a fixed number of replications, add them until the 95% CI "
            "half-width of --metric is at most this (in the figure's units, e.g. 0.5 = ±0.5 "
            "percentage points of blocked_pct; with --relative a fraction of the mean).",
        ),
    ] = None,
    metric: Annotated[
        str, typer.Option(help="Figure --precision watches, as named in summary.json.")
    ] = "blocked_pct",
    relative: Annotated[
        bool, typer.Option(help="--precision is relative: half-width <= precision x |mean|.")
    ] = False,
    min_replications: Annotated[
        int, typer.Option(help="With --precision: never stop before this many.", min=2)
    ] = 5,  # api.MIN_SEQUENTIAL_REPLICATIONS, spelled out to keep --help light (tested)
    max_replications: Annotated[
        int, typer.Option(help="With --precision: stop here even if the target is not met.", min=2)
    ] = 100,
    start_state: Annotated[
        str | None,
        typer.Option(
            "--start-state",
            help="Begin from a state instead of an empty lot: a JSON/YAML state file (its time "
            "becomes the start; see docs/start_state.md), or 'steady' (the lot's typical state "
            "at the start's time of day). Warm-up 0 unless --warmup is given.",
        ),
    ] = None,
) -> None:
    """Simulate SCENARIO and print arrivals, blocking, occupancy, revenue and lane waits.

    With several replications every figure comes with its 95% t confidence interval. The same
    scenario and seed always give the same numbers. With --precision the run adds replications
    until the chosen figure is known to the precision asked (replication r is always the same,
    so stopping at n gives exactly the numbers of a plain run with n replications).
    """
    sc = _load_or_exit(scenario, {"warmup_hours": warmup} if warmup is not None else None)
    if start_state is not None:
        sc = _start_state_or_exit(sc, start_state, warmup is not None)
    _hold_out(ctx, out, run_overwrite=overwrite)
    reps = replications or sc.replications
    if precision is not None:
        reps = max_replications
    pool = _executor_or_exit(executor, workers, scheduler)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    try:
        with Progress(
            *columns, console=err_console, transient=True, disable=not err_console.is_terminal
        ) as bar:
            task = bar.add_task(f"{sc.name}: {reps} replication(s)", total=reps)

            def progress(r: int, fraction: float) -> None:
                bar.update(task, completed=r + fraction)

            result = api.run(
                sc,
                seed=seed,
                days=days,
                replications=replications,
                progress=progress,
                executor=pool,
                precision=precision,
                metric=metric,
                relative=relative,
                min_replications=min_replications,
                max_replications=max_replications,
                frames=_kept_frames(out, no_vehicles),
            )
    except ValueError as exc:
        err_console.print(
            f"[bold red]error[/]: {escape(str(scenario))}: {escape(str(exc))}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=2) from None
    except api.ExecutorError as exc:
        _fail([str(exc)])
    finally:
        if pool is not None:
            pool.close()
    for table in summary_tables(result):
        console.print(table)
    _print_statistics_notes(result)
    if result.trace_dropped:
        console.print(
            f"[yellow]note[/]: {result.trace_dropped} trace rows fell outside the horizon "
            "and were not replayed"
        )
    if out is not None:
        written = result.write(out, format.value, overwrite=overwrite)
        console.print(
            f"wrote {len(written)} files to {out}/: " + ", ".join(p.name for p in written)
        )


def _start_state_or_exit(sc: api.Scenario, start_state: str, keep_warmup: bool) -> api.Scenario:
    """The scenario beginning from ``--start-state``; a bad state file exits 2 with one line."""
    state = start_state if start_state in ("steady", "empty") else Path(start_state)
    try:
        return api.start_from(sc, state, warmup_hours=sc.warmup_hours if keep_warmup else 0.0)
    except api.StateError as exc:
        _fail([str(exc)])


def _kept_frames(out: Path | None, no_vehicles: bool) -> tuple[str, ...]:
    """The tables ``run`` keeps: none without --out (the terminal shows figures only, so
    memory stays flat however many replications and days), and for --out every one but the
    per-vehicle table with --no-vehicles."""
    if out is None:
        return ()
    return tuple(f for f in api.FRAMES if not (no_vehicles and f == "vehicles"))


def _print_statistics_notes(result: api.RunResult) -> None:
    """What the automatic warm-up cut and how a --precision run stopped (warning at the cap)."""
    w = result.warmup
    if w is not None:
        console.print(
            f"warm-up: auto → cut the first {w.hours:g} h ({w.hours / 24:.1f} days), found by "
            f"{w.method} on the mean total occupancy of {w.pilot_replications} pilot "
            "replications",
            highlight=False,
            soft_wrap=True,
        )
        if w.at_boundary:
            err_console.print(
                "[yellow]warning[/]: the detected warm-up is at the end of the searched first "
                "half of the horizon: the lot may not have settled; simulate more days",
                highlight=False,
                soft_wrap=True,
            )
    s = result.stopping
    if s is None:
        return
    target = f"{s.precision:g}"
    if s.relative:
        target += f" x |mean| = {s.target_half_width:.4g}"
    if s.met:
        console.print(
            f"precision: {s.metric} 95% half-width {s.half_width:.4g} <= {target} after "
            f"{s.replications} replications",
            highlight=False,
            soft_wrap=True,
        )
    else:
        err_console.print(
            f"[yellow]warning[/]: stopped at the cap of {s.replications} replications: "
            f"{s.metric} 95% half-width {s.half_width:.4g} is above the target {target}; "
            "raise --max-replications or relax --precision",
            highlight=False,
            soft_wrap=True,
        )


def _regress_table(check, confidence: float = 0.99, updating: bool = False) -> Table:
    """The gate's diff table for one scenario: failing rows red, noise-level moves dim.

    With ``updating`` it describes a re-recorded baseline: old against new, and which moves
    the gate would have flagged.
    """
    from twin.regress import format_ci, format_value

    t = check.table
    n = int(t["n"].max()) if len(t) else 0
    bad = len(check.failures)
    level = f"{100 * confidence:g}%"
    paired = f"paired over {n} replication{'s' * (n != 1)}"
    if updating:
        title = f"{check.scenario}: {len(t)} figures changed, {bad} beyond noise ({paired})"
    else:
        title = f"{check.scenario}: {bad} of {len(t)} figures fail ({paired})"
    table = Table(title=title, title_justify="left")
    for name, justify in (
        ("metric", "left"),
        ("old baseline" if updating else "baseline mean", "right"),
        ("new baseline" if updating else "current mean", "right"),
        ("difference", "right"),
        (f"{level} CI of difference", "right"),
        ("gate verdict" if updating else "verdict", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=name == "metric")  # type: ignore[arg-type]
    for row in t.itertuples():
        m = row.metric
        failed = row.verdict != "pass"
        if updating:
            style = "yellow" if failed else ""
            verdict = f"would fail: {row.reason}" if failed else f"would pass: {row.reason}"
        else:
            style = "bold red" if failed else ("dim" if row.reason == "identical" else "")
            verdict = f"[bold red]FAIL[/] {row.reason}" if failed else f"pass {row.reason}"
        table.add_row(
            escape(m),
            format_value(m, row.baseline_mean),
            format_value(m, row.current_mean),
            format_value(m, row.diff_mean, signed=True),
            format_ci(m, row.ci_low, row.ci_high),
            verdict,
            style=style or None,
        )
    return table


def _wide_console() -> Console:
    """CI logs are not terminals (rich assumes 80 columns there): give the diff table room."""
    return console if console.is_terminal else Console(width=max(console.width, 150))


@app.command()
def regress(
    scenarios: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Scenario YAML files; default: every shipped scenario (`parktwin examples`).",
            show_default=False,
        ),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(
            help="Folder of baselines, one `<scenario name>.json` per scenario; default: the "
            "baselines of the shipped scenarios.",
            show_default=False,
        ),
    ] = None,
    replications: Annotated[
        int | None,
        typer.Option(help="Replications to run; default: the scenario's own.", min=1),
    ] = None,
    update: Annotated[
        bool,
        typer.Option(
            "--update",
            help="Re-record the baselines from this code instead of checking (for an intended "
            "change: review the printed differences and the JSON diff in the PR).",
        ),
    ] = False,
    confidence: Annotated[
        float,
        typer.Option(help="Confidence of the paired t interval.", min=0.5, max=0.9999),
    ] = 0.99,
) -> None:
    """Pricing-regression gate: rerun scenarios, compare revenue and occupancy with baselines.

    Each scenario runs with its own seed, so replication r sees the same drivers as replication
    r of the baseline. Per figure (revenue per day by spot type and by tariff band, mean price,
    mean and peak occupancy, blocked/balked/reneged %) the paired differences current − baseline
    are tested: identical numbers pass; the same nonzero shift in every replication fails;
    otherwise the figure fails when the 99% paired t interval of the mean difference excludes 0.
    See reports/README.md.

    Exit codes: 0 all pass, 1 a figure moved, 2 missing baseline or bad input.
    """
    from twin import regress as rg

    paths = list(scenarios) if scenarios else installed.gate_scenarios()
    baseline = installed.baselines_dir() if baseline is None else baseline
    if baseline.exists() and not baseline.is_dir():
        err_console.print(
            f"[bold red]error[/]: --baseline {escape(str(baseline))} is not a folder",
            highlight=False,
        )
        raise typer.Exit(code=2)
    names: dict[str, Path] = {}
    studies = {p: kind for p in paths if (kind := rg.study_kind(p)) is not None}
    for path, kind in studies.items():
        console.print(
            f"skip {escape(str(path))}: a {escape(kind)} file, not a parking scenario",
            highlight=False,
        )
    paths = [p for p in paths if p not in studies]
    for path in paths:  # validate every file before spending time on runs
        sc = _load_or_exit(path)
        if sc.name in names:
            err_console.print(
                f"[bold red]error[/]: {escape(str(names[sc.name]))} and {escape(str(path))} are "
                f"both named {escape(sc.name)!r}; baselines are stored per scenario name",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(code=2)
        names[sc.name] = path
    out = _wide_console()
    errors = 0
    failures: list[Path] = []
    for path in paths:
        if update:
            up = rg.update(path, baseline, replications)
            what = (
                f"{up.baseline.replications} replications, seed {up.baseline.seed}, "
                f"{len(up.baseline.metrics)} figures"
            )
            if up.previous is None:
                out.print(f"[green]recorded[/] {escape(str(up.path))} ({what})", highlight=False)
            elif up.changed.empty:
                out.print(
                    f"rewrote {escape(str(up.path))} ({what}): no figure changed", highlight=False
                )
            else:
                out.print(
                    f"[yellow]rewrote[/] {escape(str(up.path))} ({what}): "
                    f"{len(up.changed)} figure(s) changed",
                    highlight=False,
                )
                changed = rg.ScenarioCheck(up.scenario, path, up.path, up.changed.copy())
                out.print(_regress_table(changed, updating=True))
            continue
        try:
            result = rg.check(path, baseline, replications, confidence)
        except rg.RegressError as exc:
            err_console.print(
                f"[bold red]error[/]: {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            errors += 1
            continue
        for note in result.notes:
            out.print(
                f"[yellow]note[/]: {escape(result.scenario)}: {escape(note)}", highlight=False
            )
        if result.identical:
            out.print(
                f"[green]pass[/] {escape(result.scenario)}: all {len(result.table)} figures "
                "identical to the baseline",
                highlight=False,
            )
            continue
        out.print(_regress_table(result, confidence))
        if result.passed:
            out.print(f"[green]pass[/] {escape(result.scenario)}: moves within replication noise")
        else:
            failures.append(path)
            out.print(
                f"[bold red]FAIL[/] {escape(result.scenario)}: "
                + ", ".join(escape(m) for m in result.failures["metric"]),
                highlight=False,
                soft_wrap=True,
            )
    if update:
        return
    if failures:
        files = " ".join(escape(str(p)) for p in failures)
        out.print(
            f"[bold red]{len(failures)} scenario(s) moved.[/] If the change is intended, run "
            f"`parktwin regress {files} --baseline {escape(str(baseline))} --update`, then review "
            "and commit the baseline diff with it (see reports/README.md).",
            highlight=False,
            soft_wrap=True,
        )
    if errors:
        raise typer.Exit(code=2)
    if failures:
        raise typer.Exit(code=1)


@app.command()
def report(
    results_dir: Annotated[
        Path, typer.Argument(help="Folder written by `parktwin run SCENARIO --out DIR`.")
    ],
    scenario: Annotated[
        Path | None,
        typer.Option(
            help="The scenario YAML the run used, to split revenue by tariff band; default: "
            "`scenarios/<scenario name>.yaml` in the working folder, beside the results folder "
            "or among the shipped examples."
        ),
    ] = None,
) -> None:
    """Write RESULTS_DIR/report.html: a self-contained page to forward (charts embedded).

    It holds the run parameters, the headline figures with 95% intervals and charts (also
    saved as PNGs in RESULTS_DIR/plots/): occupancy by level and hour, occupancy over time with
    the spread of replications, arrivals and lost drivers by hour, barrier queues, revenue by
    tariff band and spot type, the intervals of the headline figures, and rate trajectories
    when the folder holds rates.parquet (adaptive pricing).
    """
    from twin.report import ReportError, build_report

    try:
        page = build_report(results_dir, scenario)
    except (ReportError, OutputError) as exc:
        err_console.print(
            f"[bold red]error[/]: {escape(str(exc))}", highlight=False, soft_wrap=True
        )
        raise typer.Exit(code=2) from None
    plots = sorted((results_dir / "plots").glob("*.png"))
    console.print(
        f"wrote {escape(str(page))} ({page.stat().st_size / 1e6:.1f} MB, self-contained) and "
        f"{len(plots)} charts in {escape(str(results_dir / 'plots'))}/",
        highlight=False,
        soft_wrap=True,
    )


def _comparison_table(comparison: api.Comparison) -> Table:
    """Headline figures of A and B and the paired difference with its 95% interval."""
    from twin import figures
    from twin.tables import comparison_cells

    t = comparison.table
    table = Table(
        title=f"B − A over {comparison.replications} paired replications, seed "
        f"{comparison.seed} (common random numbers) — mean (95% CI)",
        title_justify="left",
    )
    for name, justify in (("figure", "left"), ("A", "right"), ("B", "right")):
        table.add_column(name, justify=justify)
    table.add_column("B − A (95% CI)", justify="right")
    table.add_column("CRN variance cut", justify="right")
    for metric in figures.headline(t.index):
        if math.isnan(t.loc[metric, "a_mean"]):
            continue
        row = t.loc[metric]
        cut = row["variance_reduction"]
        unchanged = row["sd"] == 0 and row["diff"] == 0  # B changed nothing: no CRN figure
        table.add_row(
            escape(figures.label_of(metric)),
            *comparison_cells(metric, row),
            "–" if math.isnan(cut) or unchanged else f"{100 * cut:.0f} %",
        )
    return table


@app.command()
def compare(
    ctx: typer.Context,
    a: Annotated[Path, typer.Argument(help="Scenario A, the reference (YAML file).")],
    b: Annotated[
        Path | None,
        typer.Argument(help="Scenario B (YAML file); default: A with the --set changes."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Change a setting of B: KEY=VALUE with a dotted key as in the scenario file, "
            "e.g. facility.strategy=spread, tariff.per_period=3, demand.0.multiplier=1.2 "
            "(values read as YAML). Repeatable. Applied to B's file, or to A's without B.",
        ),
    ] = None,
    replications: Annotated[
        int | None,
        typer.Option(help="Paired replications of each; default: A's replications.", min=2),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed both scenarios share; default: A's.")
    ] = None,
    days: Annotated[
        float | None, typer.Option(help="Simulated days for both; overrides horizon_days.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for comparison.csv (every figure) and comparison.json."),
    ] = None,
) -> None:
    """Compare scenario B against A: what does the change do, and is it more than noise?

    Both run with the same seed and replication indexes, so each replication of A and of B sees
    the same drivers (common random numbers). For every figure the paired differences B − A
    give a mean and a 95% paired t interval, and each headline figure gets a verdict: raised or
    lowered by so much, or unchanged within a bound the data can vouch for. Units: percentage
    points for % figures and occupancy, $/day for revenue, seconds for lane waits.
    """
    from twin.compare import describe_sets, load_variant, parse_sets

    try:
        overrides = parse_sets(set_ or [])
    except ValueError as exc:
        err_console.print(f"[bold red]error[/]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(code=2) from None
    if b is None and not overrides:
        err_console.print(
            "[bold red]error[/]: give a second scenario B or at least one --set KEY=VALUE",
            highlight=False,
        )
        raise typer.Exit(code=2)
    sc_a = _load_or_exit(a)
    b_path = a if b is None else b
    try:
        sc_b = load_variant(b_path, overrides)
    except api.ScenarioError as exc:
        for problem in exc.problems:
            err_console.print(
                f"[bold red]error[/]: {escape(exc.source)}: {escape(problem)}",
                highlight=False,
                soft_wrap=True,
            )
        raise typer.Exit(code=2) from None
    _hold_out(ctx, out)
    label_a = str(a)
    label_b = describe_sets(str(b_path), overrides)
    reps = replications or sc_a.replications
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(
            *columns, console=err_console, transient=True, disable=not err_console.is_terminal
        ) as bar:
            task = bar.add_task(f"A and B: {reps} replications each", total=2 * reps)

            def progress(k: int, fraction: float) -> None:
                bar.update(task, completed=k + fraction)

            comparison = api.compare(
                sc_a,
                sc_b,
                replications=replications,
                seed=seed,
                days=days,
                label_a=label_a,
                label_b=label_b,
                progress=progress,
            )
    except ValueError as exc:
        err_console.print(f"[bold red]error[/]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(code=2) from None
    wide = _wide_console()
    wide.print(f"A: {escape(label_a)}", highlight=False, soft_wrap=True)
    wide.print(f"B: {escape(label_b)}", highlight=False, soft_wrap=True)
    wide.print(_comparison_table(comparison))
    for line in comparison.verdicts:
        wide.print(f"• {escape(line)}", highlight=False, soft_wrap=True)
    for line in comparison.crn_lines():
        wide.print(f"[dim]{escape(line)}[/]", highlight=False, soft_wrap=True)
    for line in comparison.notes:
        wide.print(f"[yellow]note[/]: {escape(line)}", highlight=False, soft_wrap=True)
    if out is not None:
        written = comparison.write(out)
        wide.print(
            f"wrote {', '.join(p.name for p in written)} to {escape(str(out))}/ "
            f"({len(comparison.table)} figures)",
            highlight=False,
            soft_wrap=True,
        )


# -- sweeps and parallel runs -----------------------------------------------------------------
def _fail(lines: list[str], source: str | None = None) -> NoReturn:
    """Print user errors one per line and exit 2 (the CLI's code for 'fix your input')."""
    for line in lines:
        where = f"{escape(source)}: " if source else ""
        err_console.print(
            f"[bold red]error[/]: {where}{escape(line)}", highlight=False, soft_wrap=True
        )
    raise typer.Exit(code=2)


def _hold_out(ctx: typer.Context, out: Path | None, run_overwrite: bool | None = None) -> None:
    """Claim ``--out`` for the rest of the command, before anything is simulated: a path that
    cannot be a folder, a folder another process is writing, or (``run``) a folder holding
    another run without ``--overwrite`` ends the command at once with one line (exit 2).
    The claim (:func:`twin.outputs.claim`) is released when the command ends, however it ends.
    """
    if out is None:
        return
    try:
        ctx.with_resource(claim(out))
        if run_overwrite is not None:
            from twin.experiments import prepare_run_folder

            prepare_run_folder(out, run_overwrite)
    except OutputError as exc:
        _fail([str(exc)])


def _executor_or_exit(
    name: ExecutorName | None, workers: int | None, scheduler: str | None
) -> api.Executor | None:
    """The executor the options ask for; None for serial (then `run` keeps its fine progress)."""
    try:
        executor = api.make_executor(name, workers=workers, scheduler=scheduler)
    except api.ExecutorError as exc:
        _fail([str(exc)])
    return None if executor.name == "serial" else executor


class _RunsPerSecond(ProgressColumn):
    """Throughput of the runs finished in this session (resumed runs do not inflate it)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        text = "– runs/s" if speed is None else f"{speed:.2f} runs/s"
        return Text(text, style="progress.data.speed")


SWEEP_TABLE_ROWS = 40


def sweep_table(result: api.SweepResult) -> Table:
    """One row per point: its parameters, then each compact figure (twin.figures) as mean ±
    95% half-width (units in the headers, so the cells stay narrow enough for a terminal)."""
    from twin import figures

    plan = result.plan
    reps = plan.replications
    title = (
        f"{plan.base.name}: {len(plan.points)} points × {reps} replication{'s' * (reps > 1)}, "
        f"seed {plan.seed} (same drivers at every point)"
        + (" — mean ± 95% CI half-width" if reps > 1 else "")
    )
    table = Table(title=title, title_justify="left")
    table.add_column("point", justify="right")
    for key in plan.grid:
        table.add_column(escape(key), no_wrap=True)
    summary = result.summary.set_index(["point", "metric"])
    first = plan.points[0].index
    shown = figures.compact(list(summary.loc[first].index))
    for name in shown:  # the unit in the header keeps the cells narrow enough for a terminal
        table.add_column(escape(figures.column_header(name)), justify="right")
    for point in plan.points[:SWEEP_TABLE_ROWS]:
        cells = [str(point.index), *(escape(str(v)) for v in point.overrides.values())]
        for name in shown:
            row = summary.loc[(point.index, name)]
            text = figures.format_number(name, row["mean"])
            if reps > 1 and not math.isnan(row["half_width"]) and not math.isnan(row["mean"]):
                text += f" [dim]± {figures.format_number(name, row['half_width'])}[/]"
            cells.append(text)
        table.add_row(*cells)
    if len(plan.points) > SWEEP_TABLE_ROWS:
        more = len(plan.points) - SWEEP_TABLE_ROWS
        table.caption = f"… {more} more points in summary.parquet"
    return table


@app.command()
def sweep(
    ctx: typer.Context,
    scenario: Annotated[
        Path | None, typer.Argument(help="Scenario YAML file (or give a sweep --file).")
    ] = None,
    grid: Annotated[
        list[str] | None,
        typer.Option(
            "--grid",
            "-g",
            metavar="KEY=V1,V2,...",
            help="A scenario setting (dotted key, as in the file) and the values to try, e.g. "
            "facility.strategy=nearest,spread or demand.0.multiplier=0.8,1.0,1.2. Values are "
            "YAML scalars (quote one that holds a comma). Repeat for more keys: every "
            "combination is a point; the first key is the x axis of the plots.",
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            help="Sweep YAML file: scenario (relative to the file), grid (each key with a "
            "list of values), replications, seed, days. Options given here override its values.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the sweep: runs/ (one file per finished run), sweep.json, "
            "sweep.parquet, summary.parquet and plots/. Required."
        ),
    ] = None,
    replications: Annotated[
        int | None,
        typer.Option(help="Replications per point; default: the scenario's.", min=1),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed shared by every point; default: the scenario's.")
    ] = None,
    days: Annotated[
        float | None, typer.Option(help="Simulated days at every point; overrides horizon_days.")
    ] = None,
    executor: ExecutorOption = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the sweep stored in --out: runs already on disk are skipped. "
            "Refused if the sweep's definition (scenario, grid, seed, ...) changed.",
        ),
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Delete a sweep stored in --out and start again.")
    ] = False,
    keep_occupancy: Annotated[
        bool,
        typer.Option(
            "--keep-occupancy", help="Also keep each run's occupancy time series in runs/."
        ),
    ] = False,
    plots: Annotated[bool, typer.Option(help="Draw `plots/<figure>.png`.")] = True,
) -> None:
    """Run SCENARIO at every combination of --grid values, with common random numbers.

    Every point runs the same replications with the same seed, so points differ only by their
    settings. Each finished run is written to disk at once: an interrupted sweep continues with
    --resume. At the end: sweep.parquet (one row per point and replication), summary.parquet
    (mean and 95% CI per point and figure), plots/ and a table of the headline figures.
    """
    if out is None:
        _fail(["--out DIR is required: a sweep writes each finished run there"])
    if file is None and (scenario is None or not grid):
        _fail(["give SCENARIO and at least one --grid KEY=V1,V2,..., or a sweep --file"])
    try:
        grid_values = api.parse_grid(grid or [])
    except api.ScenarioError as exc:
        _fail(exc.problems, exc.source)
    _hold_out(ctx, out)
    pool = _executor_or_exit(executor, workers, scheduler)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs"),
        _RunsPerSecond(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    name = (file or scenario).stem  # type: ignore[union-attr]
    try:
        with Progress(
            *columns, console=err_console, transient=True, disable=not err_console.is_terminal
        ) as bar:
            task_id: list[TaskID] = []

            def progress(done: int, total: int) -> None:
                if not task_id:
                    task_id.append(bar.add_task(f"sweep {name}", total=total, completed=done))
                bar.update(task_id[0], completed=done)

            result = api.sweep(
                scenario,
                grid_values,
                out=out,
                file=file,
                replications=replications,
                seed=seed,
                days=days,
                keep_occupancy=keep_occupancy,
                executor=pool,
                resume=resume,
                overwrite=overwrite,
                plots=plots,
                progress=progress,
            )
    except api.ScenarioError as exc:
        _fail(exc.problems, exc.source)
    except api.ExecutorError as exc:
        _fail([str(exc)])
    except KeyboardInterrupt:
        err_console.print(
            f"interrupted: {api.runs_on_disk(out)} finished runs are saved in {escape(str(out))}"
            "/runs; run the same command with --resume to finish the sweep",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=130) from None
    finally:
        if pool is not None:
            pool.close()
    wide = _wide_console()
    for path, reason in result.unreadable:
        wide.print(
            f"[yellow]note[/]: {escape(str(path))} was unreadable ({escape(reason)}); ran it again",
            highlight=False,
            soft_wrap=True,
        )
    wide.print(sweep_table(result))
    done = f"ran {result.ran} runs" + (
        f" ({result.skipped} already on disk)" if result.skipped else ""
    )
    wide.print(
        f"{done}; wrote {escape(str(out))}/sweep.parquet ({len(result.table)} rows), "
        f"summary.parquet and {len(result.plots)} plots in plots/",
        highlight=False,
        soft_wrap=True,
    )


# -- locking under contention (docs/locking.md) -----------------------------------------------
DEFAULT_LOCKING_STUDY = installed.locking_study()


def _ms(value: float, roof_ms: float) -> str:
    """A latency in ms; one that was never reached before the run ended reads '> roof'."""
    return f"> {roof_ms:,.0f}" if not math.isfinite(value) or value > roof_ms else f"{value:,.1f}"


def locking_tables(result) -> list[Table]:
    """Strategy × offered load (throughput, p95, conflicts, retries, failures) and ceilings."""
    from twin.sim.locking_study import ceiling_text

    spec, roof = result.spec, result.spec.measure.drain_s * 1000
    slo = f"p95 ≤ {spec.slo.p95_ms:g} ms, achieved ≥ {spec.slo.tracking:.0%} of arrivals"
    points = Table(title=f"{spec.name}: claims by strategy and offered load", title_justify="left")
    for header in ("strategy", "offered TPS", "achieved TPS", "p50 ms", "p95 ms"):
        points.add_column(header, justify="left" if header == "strategy" else "right")
    for header in ("conflicts", "retries", "failed", "refused", "unfinished", "within"):
        points.add_column(header, justify="right")
    previous = None
    for row in result.table.itertuples(index=False):
        ok = row.tracks and row.within_slo
        points.add_row(
            row.strategy if row.strategy != previous else "",
            f"{row.offered_tps:,.0f}",
            f"{row.achieved_tps:,.0f}",
            _ms(row.p50_ms, roof),
            _ms(row.p95_ms, roof),
            f"{row.conflicts:,}",
            f"{row.retries:,}",
            f"{row.failed:,}",
            f"{row.refused:,}",
            f"{row.unfinished:,}",
            "[green]yes[/]" if ok else "[red]no[/]",
            end_section=False,
        )
        previous = row.strategy
    ceilings = Table(title=f"ceilings ({slo})", title_justify="left")
    ceilings.add_column("strategy")
    ceilings.add_column("ceiling TPS", justify="right")
    ceilings.add_column("ended by")
    ceilings.add_column("peak TPS (at offered)", justify="right")
    low = min(spec.offered_tps)
    for row in result.ceilings.itertuples(index=False):
        ceilings.add_row(
            row.strategy,
            ceiling_text(result.ceilings.set_index("strategy").loc[row.strategy], low),
            row.limited_by,
            f"{row.peak_tps:,.0f} ({row.peak_offered_tps:,.0f})",
        )
    return [points, ceilings]


@app.command()
def locking(
    ctx: typer.Context,
    study: Annotated[
        Path | None,
        typer.Argument(
            help="Locking study YAML; default: the shipped `studies/locking_study.yaml` "
            "(`parktwin examples`).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for locking_study and locking_ceilings tables and locking_study.png."
        ),
    ] = None,
    format: Annotated[Format, typer.Option(help="Table format for --out.")] = Format.parquet,
    seed: Annotated[int | None, typer.Option(help="Random seed; default: the study's.")] = None,
    strategy: Annotated[
        list[str] | None,
        typer.Option(
            help="Run only this strategy (repeatable): pessimistic, optimistic, atomic, queue.",
            metavar="NAME",
            show_default=False,
        ),
    ] = None,
    backend: Annotated[
        list[str] | None,
        typer.Option(
            help="Measure on a real store instead of simulating (repeatable): "
            "postgres://... runs pessimistic and optimistic, redis://... atomic and queue. "
            "Needs the 'stores' extra.",
            metavar="URL",
            show_default=False,
        ),
    ] = None,
    clients: Annotated[
        int, typer.Option(min=1, help="With --backend: client processes, one connection each.")
    ] = 8,
) -> None:
    """Claim strategies under contention: how many claims per second each one sustains.

    Claims for lot/type counter units arrive as a Poisson process at each offered rate of the
    study's sweep and are decided by a pessimistic row lock, an optimistic version check with
    retries, an atomic INCR/DECR counter or a single serialising queue, with latencies from the
    study file (round trip, lock hold, DB and Redis service, back-off, consumer time). Prints
    achieved throughput, latency and conflict counts per strategy and load, and each strategy's
    ceiling: the load where it stops keeping up or breaks the p95 objective. See
    docs/locking.md. The same study and seed always give the same table.

    With --backend the same sweep runs against real PostgreSQL / Redis stores with --clients
    processes, and the tables report what was measured.
    """
    from twin.core.locking import CLAIM_STRATEGIES
    from twin.scenario.locking import load_locking_study
    from twin.sim.locking_study import run_locking_study

    path = study if study is not None else DEFAULT_LOCKING_STUDY
    try:
        spec = load_locking_study(path, None if seed is None else {"seed": seed})
    except api.ScenarioError as exc:
        _fail(exc.problems, exc.source)
    chosen = list(dict.fromkeys(strategy)) if strategy else list(spec.strategies)
    unknown = [s for s in chosen if s not in CLAIM_STRATEGIES]
    if unknown:
        _fail([f"unknown strategy {unknown[0]!r} (allowed: {', '.join(CLAIM_STRATEGIES)})"])
    _hold_out(ctx, out)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(
        *columns, console=err_console, transient=True, disable=not err_console.is_terminal
    ) as bar:
        task = bar.add_task("locking study", total=len(chosen) * len(spec.offered_tps))

        def progress(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, description=label)

        if backend:
            from parktwin.adapters.stores import StoreUnavailable
            from twin.locking_live import run_live_study

            try:
                result = run_live_study(
                    spec,
                    backend,
                    strategies=strategy and chosen,
                    clients=clients,
                    progress=progress,
                )
            except (ValueError, StoreUnavailable) as exc:
                _fail([str(exc)])
        else:
            result = run_locking_study(spec, strategies=chosen, progress=progress)
    wide = _wide_console()
    for table in locking_tables(result):
        wide.print(table)
    if out is not None:
        try:
            written = result.write(out, format.value)
        except OSError as exc:
            _fail([f"cannot write to {out}: {exc.strerror or exc}"])
        console.print(
            f"wrote {', '.join(p.name for p in written)} to {escape(str(out))}/",
            highlight=False,
            soft_wrap=True,
        )


# -- tariff optimisation ----------------------------------------------------------------------
class ObjectiveName(StrEnum):
    revenue = "revenue"
    occupancy_target = "occupancy-target"
    blocking = "blocking"


class SearchMethod(StrEnum):
    grid = "grid"
    scipy = "scipy"


OPTIMIZE_TABLE_ROWS = 40


def _pm(mean: float, lo: float, hi: float, unit: str) -> str:
    """``$12,215 ± $181`` / ``0.16 ± 0.28 pp``: a mean and its 95% half-width, compactly."""
    from twin.figures import quantity
    from twin.figures import significant_decimals as decimals

    if math.isnan(mean):
        return "–"
    if math.isnan(lo):
        return quantity(mean, unit, 2)
    hw = (hi - lo) / 2
    d = decimals(hw, mean)
    return f"{quantity(mean, unit, d)} [dim]± {quantity(hw, unit, d)}[/]"


def optimize_tables(result: api.OptimizationResult) -> list[Table]:
    """Every simulated point (best first) and the best tariff against the current one."""
    from twin import figures
    from twin.optimize import key_figures
    from twin.tables import cell, comparison_cells

    objective = result.spec.objective
    unit = "$" if objective == "revenue" else "pp"
    t = result.table
    points = Table(
        title=f"{len(t)} tariffs simulated, best first — mean ± 95% half-width over "
        f"{result.replications} replications; 'vs best': paired difference point − best",
        title_justify="left",
    )
    points.add_column("#", justify="right")
    for p in result.params:
        points.add_column(escape(p.key), justify="right", no_wrap=True)
    points.add_column(escape(result.objective_label), justify="right")
    points.add_column("vs best", justify="right")
    present = [c.removesuffix("_mean") for c in t.columns if c.endswith("_mean")]
    companions = [n for n in figures.compact(present) if n != result.objective_metric]
    for name in companions:
        points.add_column(escape(figures.column_header(name)), justify="right")
    points.add_column("")
    for _, row in t.head(OPTIMIZE_TABLE_ROWS).iterrows():
        is_best = int(row["point"]) == result.best.index
        notes = ["[bold green]best[/]"] if is_best else []
        if row["baseline"]:
            notes.append("current")
        if not row["feasible"]:
            notes.append("[red]misses constraint[/]")
        elif row["tied_with_best"] and not is_best:
            notes.append("[dim]tied[/]")
        if not row["searched"]:
            notes.append("[dim]outside the ranges[/]")
        vs = (
            "–"
            if is_best
            else _pm(row["vs_best_mean"], row["vs_best_ci_low"], row["vs_best_ci_high"], unit)
        )
        points.add_row(
            str(int(row["rank"])),
            *(p.label(row[p.key]) for p in result.params),
            _pm(row["objective_mean"], row["objective_ci_low"], row["objective_ci_high"], unit),
            vs,
            *(figures.format_number(name, row[f"{name}_mean"]) for name in companions),
            ", ".join(notes),
        )
    cmp = result.baseline_comparison
    ct = cmp.table
    best = Table(
        title=f"best tariff against the current one — mean (95% CI); B − A paired over "
        f"{result.replications} replications (common random numbers)",
        title_justify="left",
    )
    for name, justify in (("figure", "left"), ("current (A)", "right"), ("best (B)", "right")):
        best.add_column(name, justify=justify)
    best.add_column("B − A (95% CI)", justify="right")
    summaries = (result.baseline.run.summary(), result.best.run.summary())
    for metric in key_figures(list(ct.index)):
        if math.isnan(ct.loc[metric, "a_mean"]):
            continue
        label = figures.label_of(metric)
        if metric == "occupancy.window":
            label = f"occupancy, {result.window.describe()}"
        cells = [cell(metric, summary.loc[metric], True) for summary in summaries]
        best.add_row(escape(label), *cells, comparison_cells(metric, ct.loc[metric])[2])
    return [points, best]


@app.command()
def optimize(
    ctx: typer.Context,
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file with a tariff: section.")],
    objective: Annotated[
        ObjectiveName,
        typer.Option(
            help="revenue: maximise revenue per day (with --max-blocking as a constraint). "
            "occupancy-target: bring occupancy in the busy window to --target. blocking: "
            "turn the fewest drivers away (blocked + reneged) while earning at least "
            "--min-revenue."
        ),
    ] = ObjectiveName.revenue,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            metavar="KEY=LOW:HIGH",
            help="A numeric tariff key (dotted, as in the file) and its range, money in "
            "dollars: tariff.per_period=0.5:6.0, tariff.daily_max=10:40, "
            "tariff.bands.0.per_period=1:8, tariff.free_minutes=0:60. Repeat for more keys. "
            "Default: tariff.per_period from half to three times its current value.",
            show_default=False,
        ),
    ] = None,
    target: Annotated[
        float,
        typer.Option(
            help="occupancy-target: the occupancy to aim for, as a fraction (Shoup: 0.85)."
        ),
    ] = 0.85,
    window: Annotated[
        str | None,
        typer.Option(
            metavar="'DAYS HH:MM-HH:MM'",
            help="Days and hours in which occupancy is measured for the target, e.g. "
            "'weekdays 11:00-15:00' or '12:00-16:00' (every day). Default: the busiest 4 "
            "consecutive hours of the busier day type at the current tariff.",
            show_default=False,
        ),
    ] = None,
    max_blocking: Annotated[
        float | None,
        typer.Option(
            help="revenue: at most this % of drivers turned away (blocked + reneged), on "
            "average. Points above it are penalised by a day's current revenue per point over.",
            show_default=False,
        ),
    ] = None,
    min_revenue: Annotated[
        float | None,
        typer.Option(
            help="blocking: earn at least this many $/day. Default: the current tariff's "
            "revenue; 0 for no floor.",
            show_default=False,
        ),
    ] = None,
    replications: Annotated[
        int, typer.Option(help="Paired replications per tariff (the same ones for every tariff).")
    ] = 5,
    seed: Annotated[
        int | None, typer.Option(help="Seed shared by every tariff; default: the scenario's.")
    ] = None,
    method: Annotated[
        SearchMethod,
        typer.Option(
            help="grid: every combination of --grid-points values per key. scipy: bounded "
            "Brent (one key, plus both ends) or Nelder-Mead (several keys), --max-evals calls."
        ),
    ] = SearchMethod.grid,
    grid_points: Annotated[int, typer.Option(help="grid: values per key, ends included.")] = 7,
    max_evals: Annotated[
        int, typer.Option(help="scipy: objective calls at most (repeated points are cached).")
    ] = 30,
    days: Annotated[
        float | None,
        typer.Option(help="Simulated days per replication; default: the scenario's horizon."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for optimize.csv (one row per tariff, every figure with its 95% CI), "
            "optimize.json and optimize.png (1 or 2 keys).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Search tariff parameters for an objective: which price does what you want, and how sure?

    Every tariff tried runs with the same seed and replication indexes, so each replication
    sees the same drivers under every tariff (common random numbers): the search is
    deterministic, and differences between tariffs are paired, with 95% paired t intervals.
    Prints every tariff simulated (best first), whether the best is distinguishable from the
    runner-up, and the best against the current tariff (paired verdicts). See docs/optimize.md.
    """
    sc = _load_or_exit(scenario)
    _hold_out(ctx, out)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(
            *columns, console=err_console, transient=True, disable=not err_console.is_terminal
        ) as bar:
            task = bar.add_task("current tariff", total=None)

            def progress(done: int, total: int, label: str) -> None:
                bar.update(task, completed=done, total=total, description=label or "tariffs")

            result = api.optimize(
                sc,
                objective.value,
                param or [],
                method=method.value,
                grid_points=grid_points,
                max_evals=max_evals,
                replications=replications,
                seed=seed,
                days=days,
                target=target,
                window=window,
                max_blocking=max_blocking,
                min_revenue=min_revenue,
                progress=progress,
            )
    except (api.OptimizeError, api.ScenarioError) as exc:
        _fail(exc.problems, getattr(exc, "source", str(scenario)))
    except ValueError as exc:
        _fail([str(exc)], str(scenario))
    spec = result.spec
    wide = _wide_console()
    s = result.scenario
    cap = spec.max_blocking
    what = {
        "revenue": "maximise revenue per day"
        + ("" if cap is None else f", at most {cap:g} % turned away"),
        "occupancy-target": f"occupancy {100 * spec.target:g} % in {result.window.describe()}",
        "blocking": "turn the fewest drivers away"
        + (f", earning at least ${result.min_revenue:,.0f}/day" if result.min_revenue else ""),
    }[spec.objective]
    ranges = ", ".join(f"{p.key} {p.label(p.low)}…{p.label(p.high)}" for p in result.params)
    wide.print(
        f"{escape(s.name)}: {escape(what)}; {escape(ranges)}; {spec.method} search, "
        f"{len(result.evaluations)} tariffs × {result.replications} paired replications, seed "
        f"{result.seed}, {s.horizon_days - s.warmup_hours / 24:g} days measured after a "
        f"{s.warmup_hours:g} h warm-up",
        highlight=False,
        soft_wrap=True,
    )
    tables = optimize_tables(result)
    wide.print(tables[0])
    if len(result.table) > OPTIMIZE_TABLE_ROWS:
        wide.print(
            f"[dim]… {len(result.table) - OPTIMIZE_TABLE_ROWS} more in optimize.csv (--out)[/]"
        )
    wide.print(tables[1])
    for line in result.statements():
        wide.print(f"• {escape(line)}", highlight=False, soft_wrap=True)
    for line in result.notes:
        wide.print(f"[yellow]note[/]: {escape(line)}", highlight=False, soft_wrap=True)
    if out is not None:
        try:
            written = result.write(out)
        except OSError as exc:
            _fail([f"cannot write to {out}: {exc.strerror or exc}"])
        wide.print(
            f"wrote {', '.join(p.name for p in written)} to {escape(str(out))}/",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def emit(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML (one lot).")],
    mqtt: Annotated[
        str | None,
        typer.Option(
            metavar="HOST:PORT", help="Publish to this MQTT broker (QoS 1).", show_default=False
        ),
    ] = None,
    topic: Annotated[str, typer.Option(help="MQTT topic.")] = "parktwin/events",
    out: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE.jsonl", help="Write the feed as JSON lines.", show_default=False
        ),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(
            help="Feed time per wall time (1: real time, 60: a minute a second); "
            "default as fast as possible.",
            show_default=False,
        ),
    ] = None,
    days: Annotated[float | None, typer.Option(help="Simulated days.", show_default=False)] = None,
    seed: Annotated[int | None, typer.Option(help="Seed.", show_default=False)] = None,
    faults: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE.yaml", help="Fault schedule (see twin/live/emit.py).", show_default=False
        ),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE.json",
            help="Ground truth of the injected faults (default: beside --out as NAME.faults.json).",
            show_default=False,
        ),
    ] = None,
    heartbeat_min: Annotated[float, typer.Option(help="Sensor heartbeat period, minutes.")] = 15.0,
    counter_min: Annotated[float, typer.Option(help="Counter snapshot period, minutes.")] = 5.0,
) -> None:
    """Run a simulated lot and publish its gate, sensor and payment events (MQTT or JSONL),
    with faults injected on a schedule, so the twin can be shown and tested without hardware.
    """
    from twin.live import emit as feed

    if mqtt is None and out is None:
        _fail(["give --mqtt HOST:PORT or --out FILE.jsonl (or both)"])
    for name, value in (
        ("--speed", speed),
        ("--heartbeat-min", heartbeat_min),
        ("--counter-min", counter_min),
        ("--days", days),
    ):
        if value is not None and not (math.isfinite(value) and value > 0):
            _fail([f"{name} must be a number > 0, got {value:g}"])
    address = None
    if mqtt is not None:
        from parktwin.adapters.sources.mqtt import parse_address

        try:
            address = parse_address(mqtt)
        except ValueError as exc:
            _fail([f"--mqtt: {exc}"])
    if truth is None and out is not None:
        truth = out.with_name(f"{out.stem}.faults.json")
    for flag, path in (("--out", out), ("--truth", truth)):
        # Checked before simulating: a week of the downtown garage takes seconds.
        if path is not None and (path.is_dir() or not path.parent.is_dir()):
            _fail([f"{flag} {path}: must be a file in an existing folder"])
    sc = _load_or_exit(scenario)
    try:
        schedule = [] if faults is None else feed.load_faults(faults, sc.start)
        emitted = feed.emit(
            sc,
            faults=schedule,
            seed=seed,
            days=days,
            heartbeat_min=heartbeat_min,
            counter_min=counter_min,
        )
    except (feed.FaultError, ValueError) as exc:
        _fail([str(exc)])
    try:
        if out is not None:
            from parktwin.adapters.sources.files import write_jsonl

            write_jsonl(out, emitted.lines)
            console.print(f"wrote {len(emitted.lines):,} events to {escape(str(out))}")
        if truth is not None:
            feed.write_ground_truth(emitted, truth)
            console.print(f"fault ground truth: {escape(str(truth))} ({len(schedule)} faults)")
    except OSError as exc:
        _fail([f"cannot write {exc.filename or out}: {exc.strerror or exc}"])
    if address is not None:
        from parktwin.adapters.sources.mqtt import MqttPublisher

        pub = MqttPublisher(address[0], address[1], topic)
        n = feed.send(emitted, pub.publish, speed)
        missing = pub.close()
        if missing:
            _fail([f"the broker at {mqtt} did not acknowledge {missing} of {n} events"])
        console.print(f"published {n:,} events to mqtt://{escape(mqtt)}/{escape(topic)} (QoS 1)")
    kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(emitted.counts.items()))
    console.print(f"events by kind: {kinds}")


@app.command()
def live(
    ctx: typer.Context,
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML describing the lot (one lot).")],
    source: Annotated[
        str | None,
        typer.Option(
            metavar="mqtt://HOST:PORT/TOPIC", help="Mirror a live MQTT feed.", show_default=False
        ),
    ] = None,
    replay: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE", help="Replay a recorded feed (JSONL/CSV).", show_default=False
        ),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE.yaml",
            help="Column mapping of a foreign ticket export given to --replay.",
            show_default=False,
        ),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(
            help="Replay pace: feed time per wall time (1: real time); default as fast as "
            "possible.",
            show_default=False,
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="Write actual-vs-predicted charts (PNG) and an HTML page here.",
            show_default=False,
        ),
    ] = None,
    dead_letter: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE.jsonl",
            help="Bad events with their reason (default: DIR/dead_letter.jsonl with --report).",
            show_default=False,
        ),
    ] = None,
    replications: Annotated[
        int, typer.Option(help="Replications of the model for the prediction (0: none).", min=0)
    ] = 20,
    hours: Annotated[float, typer.Option(help="Forecast horizon, hours (0: no forecast).")] = 4.0,
    idle: Annotated[
        float, typer.Option(help="MQTT: stop after this many quiet seconds.")
    ] = 30.0,
    clock_checks: Annotated[
        bool,
        typer.Option(
            help="Judge devices' clocks by receive times (future timestamps, skew). Turn off "
            "for a feed played faster than real time (emit --speed N), whose receive times "
            "say nothing about the devices' clocks."
        ),
    ] = True,
) -> None:
    """Mirror a running lot from its feed: levels like the lot's display boards, the forecast
    with its band and fill time, alerts where reality leaves the model, and the feed's applied
    and dead-lettered counts. `--report DIR` writes the comparison for a duty manager."""
    if (source is None) == (replay is None):
        _fail(["give one of --source mqtt://HOST:PORT/TOPIC or --replay FILE"])
    if source is not None and not source.startswith("mqtt://"):
        _fail([f"--source: expected mqtt://HOST:PORT/TOPIC, got '{source}'"])
    if mapping is not None and replay is None:
        _fail(["--mapping goes with --replay (a foreign export file)"])
    for name, value in (("--speed", speed), ("--idle", idle)):
        if value is not None and not (math.isfinite(value) and value > 0):
            _fail([f"{name} must be a number > 0, got {value:g}"])
    if not (math.isfinite(hours) and hours >= 0):
        _fail([f"--hours must be a number >= 0, got {hours:g}"])
    sc = _load_or_exit(scenario)
    if len(sc.lot_specs) != 1:
        _fail([f"{scenario}: live mirrors one lot; this scenario has {len(sc.lot_specs)}"])
    from rich.live import Live

    from parktwin.adapters.sources import Intake, MappingError, Tolerances
    from twin.live.divergence import for_scenario
    from twin.live.mirror import Live as Session
    from twin.live.mirror import Mirror, open_source
    from twin.live.view import board, write_report

    _hold_out(ctx, report)  # claimed (checked, locked) before anything runs
    if report is not None:
        dead_letter = dead_letter or report / "dead_letter.jsonl"
    try:
        feed = open_source(
            source or replay, mapping=mapping, speed=speed, idle_s=idle  # type: ignore[arg-type]
        )
    except (FileNotFoundError, MappingError, ValueError) as exc:
        _fail([str(exc)])
    divergence = None
    if replications:
        with console.status(f"model prediction: {replications} replications of {sc.name}"):
            divergence = for_scenario(sc, replications)
    tolerances = Tolerances() if clock_checks else Tolerances(future_s=math.inf, skew_s=math.inf)
    session = Session(
        Mirror(sc, divergence=divergence), Intake(dead_letter=dead_letter, tolerances=tolerances)
    )
    live_view = Live(console=console, refresh_per_second=2, transient=speed is None)
    try:
        with live_view:
            session.run(feed, every=lambda s: live_view.update(board(s.mirror, s.feed())))
    except KeyboardInterrupt:
        session.mirror.flush()
    finally:
        session.intake.close()
        if hasattr(feed, "stop"):
            feed.stop()
    forecast = None
    if hours > 0 and session.mirror.fold.kinds:
        forecast = session.mirror.forecast(hours=hours)
    console.print(board(session.mirror, session.feed(), forecast))
    if report is not None:
        try:
            page = write_report(session.mirror, report, session.feed(), forecast)
        except ValueError as exc:
            _fail([f"--report: {exc}"])
        console.print(f"report: {escape(str(page))}")


@app.command()
def examples(
    copy: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="Copy every example to DIR (keeping its studies/, sweeps/ and scale/ folders) "
            "to run or edit; never overwrites a file.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """List the example scenarios, studies and sweeps shipped with ParkTwin, or copy them.

    `parktwin examples --copy my_lots` then `parktwin run my_lots/surface_lot.yaml`. The
    regression gate (`parktwin regress`) and `parktwin locking` use the shipped files by default.
    """
    if copy is not None:
        try:
            installed.copy_examples(copy)
        except installed.ExamplesError as exc:
            _fail([str(exc)])
    console.print(installed.examples_table(copy))
    if copy is None:
        console.print("Copy them with `parktwin examples --copy DIR` to run or edit them.")


def console_main() -> None:
    """The `parktwin` command: the app, plus a one-line hint instead of a traceback when a
    command needs an optional extra that is not installed (the base install is light)."""
    try:
        app()
    except Exception as exc:
        message = installed.missing_extra(exc)
        if message is None:
            raise
        err_console.print(f"[bold red]error[/]: {escape(message)}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    console_main()
