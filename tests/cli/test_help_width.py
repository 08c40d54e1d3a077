"""Every command's `--help` reads whole in an 80-column terminal.

rich cuts a word wider than its table column with an ellipsis; typer's options table gives the
help text what the option, flag and type columns leave. Texts that were cut at 80 columns
(`run --start-state`, `sweep --grid`, `live --dead-letter`, `live --null-replications`' own
name...) were shortened, long examples moved to the command's description (full width), and
the `--x/--no-x` pairs whose second half nobody needs became single flags, which frees a column.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and sub-command with its path of names (the top level: ())."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from commands(sub, (*path, name))


ALL = list(commands(typer.main.get_command(app)))


def test_every_command_is_checked() -> None:
    names = {" ".join(path) for path, _ in ALL}
    assert {"run", "sweep", "live", "emit", "calibrate tickets", "backtest"} <= names
    assert len(names) >= 16


@pytest.mark.parametrize("path, command", ALL, ids=[" ".join(p) or "parktwin" for p, _ in ALL])
def test_help_is_not_cut_at_80_columns(path: tuple[str, ...], command: Any) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    cut = [line for line in lines if "…" in line]
    assert not cut, "\n".join(cut)
    # every option's names and every word of its help are there, whole
    shown = set(re.sub("[│╭╮╰╯─*]", " ", result.output).split())
    for param in command.params:
        for name in [*param.opts, *getattr(param, "secondary_opts", [])]:
            if name.startswith("-"):
                assert name in shown, f"{name} missing from {' '.join(path)} --help"
        help_text = getattr(param, "help", None) or ""
        for word in help_text.replace("`", "").split():  # markdown shows code spans bare
            if not re.search(r"[*<\\]", word):  # emphasis, escapes, placeholders: rendered
                assert word in shown, f"'{word}' of {' '.join(path)} {param.name} missing"
