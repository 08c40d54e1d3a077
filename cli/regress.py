"""`parktwin regress`: the pricing-regression gate (diff table in twin/views/regress.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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
    from twin.views.regress import check_report, moved_hint, update_report

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

    def show(parts: list[Any]) -> None:  # markup lines and tables (twin.views.regress)
        for part in parts:
            if isinstance(part, str):
                out.print(part, highlight=False, soft_wrap=True)
            else:
                out.print(part)

    errors = 0
    failures: list[Path] = []
    for path in paths:
        if update:
            show(update_report(rg.update(path, baseline, replications), path))
            continue
        try:
            result = rg.check(path, baseline, replications, confidence)
        except rg.RegressError as exc:
            err_console.print(
                f"[bold red]error[/]: {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            errors += 1
            continue
        show(check_report(result, confidence))
        if not result.identical and not result.passed:
            failures.append(path)
    if update:
        return
    if failures:
        show([moved_hint(failures, baseline)])
    if errors:
        raise typer.Exit(code=2)
    if failures:
        raise typer.Exit(code=1)
