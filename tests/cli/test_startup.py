"""`parktwin --help` and `--version` start fast because the CLI module imports no heavy stack;
commands that need an optional extra say which one instead of raising a traceback.

Checked in fresh interpreters (the test process has imported everything long ago). Startup
time itself is measured by benchmarks/bench_startup.py, not here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import typer
from typer.testing import CliRunner

import twin
from cli import app
from twin import api

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "scipy",
    "pandas",
    "pyarrow",
    "matplotlib",
    "dask",
    "distributed",
    "numpy",
    "pydantic",
    "yaml",
    "simpy",
)
runner = CliRunner()

LOADED = """
import io, json, sys
from contextlib import redirect_stdout
import cli
after_import = sorted({m.partition(".")[0] for m in sys.modules} & set(sys.argv[2:]))
with redirect_stdout(io.StringIO()):
    try:
        cli.app([sys.argv[1]])
    except SystemExit:
        pass
after_run = sorted({m.partition(".")[0] for m in sys.modules} & set(sys.argv[2:]))
print(json.dumps([after_import, after_run]))
"""


def _fresh(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_module_and_help_and_version_load_no_heavy_module() -> None:
    for option in ("--help", "--version"):
        out = _fresh(LOADED, option, *HEAVY)
        assert out.returncode == 0, out.stderr
        after_import, after_run = json.loads(out.stdout)
        assert after_import == [], f"import cli loaded {after_import}"
        assert after_run == [], f"parktwin {option} loaded {after_run}"


def test_the_check_sees_a_heavy_import() -> None:
    # control: the same script notices a heavy module once something imports it
    out = _fresh("import numpy\n" + LOADED, "--version", *HEAVY)
    assert json.loads(out.stdout)[0] == ["numpy"]


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"parktwin {twin.__version__}"
    assert version("parktwin") == twin.__version__  # pyproject reads it from twin/__init__.py


def test_run_min_replications_default_is_the_apis() -> None:
    run = typer.main.get_command(app).commands["run"]
    (option,) = [p for p in run.params if p.name == "min_replications"]
    assert option.default == api.MIN_SEQUENTIAL_REPLICATIONS


def test_help_texts_keep_their_placeholders() -> None:
    # rich's Markdown drops `<scenario name>` as an HTML tag unless it is in backticks
    group = typer.main.get_command(app)
    checked = 0
    for name, command in group.commands.items():
        texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
        wanted = {m for text in texts for m in re.findall(r"<[a-z][^<>]*>", text)}
        if not wanted:
            continue
        result = runner.invoke(app, [name, "--help"], env={"COLUMNS": "400"}, terminal_width=400)
        shown = " ".join(result.output.split())
        for placeholder in wanted:
            assert placeholder in shown, f"parktwin {name} --help lost {placeholder}"
            checked += 1
    assert checked >= 3


BLOCKED = """
import sys
sys.modules.update(dict.fromkeys(sys.argv[1].split(",")))  # None: "not installed"
sys.argv = ["parktwin", *sys.argv[2:]]
from cli import console_main
console_main()
"""


def test_a_command_needing_a_missing_extra_says_which(tmp_path) -> None:
    scenario = ROOT / "scenarios" / "surface_lot.yaml"
    out = _fresh(BLOCKED, "numpy,scipy,pandas", "run", str(scenario))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "pip install 'parktwin[sim]'" in " ".join(out.stderr.split())
    plot = _fresh(BLOCKED, "matplotlib", "report", str(tmp_path))
    assert "Traceback" not in plot.stderr
    assert "pip install 'parktwin[plot]'" in " ".join(plot.stderr.split())
    # light commands work without the simulation stack (pydantic comes with typer)
    light = _fresh(BLOCKED, "numpy,scipy,pandas,pyarrow,simpy,yaml", "examples")
    assert light.returncode == 0, light.stderr
    assert "surface_lot.yaml" in light.stdout
