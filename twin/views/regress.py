"""What `parktwin regress` prints: the gate's diff table for one scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table


def regress_table(check: Any, confidence: float = 0.99, updating: bool = False) -> Table:
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


def update_report(up: Any, path: Path) -> list[str | Table]:
    """What a re-recorded baseline says: recorded, rewritten unchanged, or rewritten with the
    table of the figures that moved (and whether the gate would have flagged them)."""
    from twin.regress import ScenarioCheck

    what = (
        f"{up.baseline.replications} replications, seed {up.baseline.seed}, "
        f"{len(up.baseline.metrics)} figures"
    )
    where = escape(str(up.path))
    if up.previous is None:
        return [f"[green]recorded[/] {where} ({what})"]
    if up.changed.empty:
        return [f"rewrote {where} ({what}): no figure changed"]
    changed = ScenarioCheck(up.scenario, path, up.path, up.changed.copy())
    return [
        f"[yellow]rewrote[/] {where} ({what}): {len(up.changed)} figure(s) changed",
        regress_table(changed, updating=True),
    ]


def check_report(result: Any, confidence: float) -> list[str | Table]:
    """What the gate says about one scenario: its notes, then pass (identical, or moves within
    noise, with the diff table) or FAIL with the figures that moved."""
    name = escape(result.scenario)
    lines: list[str | Table] = [f"[yellow]note[/]: {name}: {escape(n)}" for n in result.notes]
    if result.identical:
        n = len(result.table)
        return [*lines, f"[green]pass[/] {name}: all {n} figures identical to the baseline"]
    lines.append(regress_table(result, confidence))
    if result.passed:
        lines.append(f"[green]pass[/] {name}: moves within replication noise")
    else:
        moved = ", ".join(escape(m) for m in result.failures["metric"])
        lines.append(f"[bold red]FAIL[/] {name}: {moved}")
    return lines


def moved_hint(failures: list[Path], baseline: Path) -> str:
    """After failures: how to re-record the baselines when the change is intended."""
    files = " ".join(escape(str(p)) for p in failures)
    return (
        f"[bold red]{len(failures)} scenario(s) moved.[/] If the change is intended, run "
        f"`parktwin regress {files} --baseline {escape(str(baseline))} --update`, then review "
        "and commit the baseline diff with it (see reports/README.md)."
    )
