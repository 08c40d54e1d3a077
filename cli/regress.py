"""`parktwin regress`: the pricing-regression gate (diff table in twin/views/regress.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from twin import installed

from .common import app, console, err_console, fail, load_or_exit, wide_console


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
    from twin.views.regress import regress_table

    paths = list(scenarios) if scenarios else installed.gate_scenarios()
    baseline = installed.baselines_dir() if baseline is None else baseline
    if baseline.exists() and not baseline.is_dir():
        fail([f"--baseline {baseline} is not a folder"])
    names: dict[str, Path] = {}
    studies = {p: kind for p in paths if (kind := rg.study_kind(p)) is not None}
    for path, kind in studies.items():
        console.print(
            f"skip {escape(str(path))}: a {escape(kind)} file, not a parking scenario",
            highlight=False,
        )
    paths = [p for p in paths if p not in studies]
    for path in paths:  # validate every file before spending time on runs
        sc = load_or_exit(path)
        if sc.name in names:
            fail(
                [
                    f"{names[sc.name]} and {path} are both named {sc.name!r}; baselines are "
                    "stored per scenario name"
                ]
            )
        names[sc.name] = path
    out = wide_console()
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
                out.print(regress_table(changed, updating=True))
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
        out.print(regress_table(result, confidence))
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
