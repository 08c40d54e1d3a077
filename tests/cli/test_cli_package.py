"""The CLI package stays thin: every command module is registered, none builds tables (they
live in twin/views/), and the package runs as `python -m parktwin.cli`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import typer

import twin
from cli import app

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "cli"
SHARED = {"__init__", "__main__", "common"}


def _command_modules() -> set[str]:
    return {p.stem for p in CLI.glob("*.py")} - SHARED


def test_every_command_module_is_imported_by_the_package() -> None:
    # a new cli/<command>.py that __init__ forgets to import would silently not exist
    tree = ast.parse((CLI / "__init__.py").read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is None
        for alias in node.names
    }
    assert _command_modules() == imported, sorted(_command_modules() ^ imported)
    names = set(typer.main.get_command(app).commands)
    assert {"run", "compare", "sweep", "regress", "report", "locking", "optimize"} <= names
    assert {"emit", "examples", "calibrate"} <= names


def test_command_modules_build_no_tables() -> None:
    # presentation lives beside what it presents (twin/views/), the CLI only prints it
    offenders = []
    for path in sorted(CLI.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "rich.table":
                offenders.append(f"{path.name}:{node.lineno} imports rich.table")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Table":
                offenders.append(f"{path.name}:{node.lineno} builds a Table")
    assert offenders == [], offenders


def test_the_package_runs_as_a_module() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "parktwin.cli", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"parktwin {twin.__version__}"
