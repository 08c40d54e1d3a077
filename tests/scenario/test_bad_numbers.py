"""Bad numbers are refused at load with one line naming the file and the field, exit 2.

NaN and infinity pass ``ge``/``le`` bounds unnoticed, overflowing parameters reach scipy, and a
file that is not YAML text or nests thousands deep used to end in a traceback. Each case here
goes through ``parktwin run`` as a user types it.
"""

from __future__ import annotations

import ast
import copy
import decimal
import importlib
import math
import pkgutil
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError
from typer.testing import CliRunner

import twin.scenario
from cli import app
from twin.scenario.common import Spec
from twin.scenario.model import Scenario

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def surface_lot(**top: Any) -> dict:
    """The shipped surface lot, one short replication: a valid base to break one thing in."""
    data = yaml.safe_load((ROOT / "scenarios" / "surface_lot.yaml").read_text())
    data.update({"replications": 1, "horizon_days": 1, "warmup_hours": 0, **top})
    return data


def run_cli(tmp_path: Path, data: dict | str | bytes, *args: str) -> tuple[int, list[str]]:
    """``parktwin run FILE``: exit code and the lines written to stderr."""
    path = tmp_path / "bad.yaml"
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    result = runner.invoke(app, ["run", str(path), *args])
    return result.exit_code, result.stderr.splitlines()


def assert_refused(code: int, lines: list[str], *words: str) -> None:
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert "bad.yaml" in lines[0] and "Traceback" not in lines[0]
    for word in words:
        assert word in lines[0], lines[0]


# -- every float of the schema must be finite ---------------------------------------------
def _schema_models() -> list[type[Spec]]:
    """Every section model of the scenario schema (all Spec subclasses, however deep)."""
    for info in pkgutil.iter_modules(twin.scenario.__path__):
        importlib.import_module(f"twin.scenario.{info.name}")
    found, todo = [], [Spec]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def _holding(annotation: Any, bad: float) -> Any:
    """A value of type ``annotation`` with ``bad`` in every float (or Decimal) place, or None
    when the type holds no float."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in (float, decimal.Decimal):
        return bad
    if origin is typing.Annotated:
        return _holding(args[0], bad)
    if origin in (typing.Union, types.UnionType):
        return next((v for a in args if (v := _holding(a, bad)) is not None), None)
    if origin is list:
        inner = _holding(args[0], bad)
        return None if inner is None else [inner]
    if origin is tuple:
        inner = [_holding(a, bad) for a in args if a is not Ellipsis]
        return None if all(v is None for v in inner) else inner
    if origin is dict:
        inner = _holding(args[1], bad)
        if inner is None:
            return None
        key_type = args[0]
        key = typing.get_args(key_type)[0] if typing.get_origin(key_type) else "x"
        return {key: inner}
    return None


FLOAT_FIELDS = [
    (model, name, field.annotation)
    for model in _schema_models()
    for name, field in model.model_fields.items()
    if _holding(field.annotation, math.nan) is not None
]


def test_the_walk_finds_the_float_fields() -> None:
    found = {(m.__name__, n) for m, n, _ in FLOAT_FIELDS}
    assert {("Lognormal", "sd"), ("Empirical", "values"), ("StreamSpec", "rate_per_hour")} <= found
    assert ("ProfileSpec", "weekday") in found and ("Scenario", "horizon_days") in found
    assert len(found) > 80  # every section contributes


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_every_float_field_of_the_schema_rejects_nan_and_inf(bad: float) -> None:
    accepted = []
    for model, name, annotation in FLOAT_FIELDS:
        try:
            model.model_validate({name: _holding(annotation, bad)}, context={"base_dir": None})
        except ValidationError as exc:
            if any(err["loc"][:1] == (name,) for err in exc.errors()):
                continue
        accepted.append(f"{model.__name__}.{name}")
    assert not accepted, f"{bad} accepted by {accepted}"


def test_a_new_section_inherits_the_rule() -> None:
    class Later(Spec):
        share: float = 0.5

    with pytest.raises(ValidationError, match="finite"):
        Later(share=math.nan)
    assert issubclass(Scenario, BaseModel)


# -- the examples, through the CLI ------------------------------------------------
def test_nan_willingness_to_pay_is_refused(tmp_path: Path) -> None:
    data = surface_lot()
    data["behaviour"]["willingness_to_pay"]["distribution"] = {
        "type": "empirical",
        "values": [math.nan, 1],
    }
    code, lines = run_cli(tmp_path, data)
    assert_refused(code, lines, "behaviour.willingness_to_pay.distribution.values[0]", "finite")


def test_nan_exit_service_and_patience_are_refused(tmp_path: Path) -> None:
    data = surface_lot()
    data["lanes"]["exit"]["service"] = {"type": "empirical", "values": [math.nan, 600]}
    assert_refused(*run_cli(tmp_path, data), "lanes.exit.service.values[0]", "finite")
    data = surface_lot()
    data["behaviour"]["patience"] = {"type": "exponential", "mean": math.inf}
    assert_refused(*run_cli(tmp_path, data), "behaviour.patience.mean", "finite")


@pytest.mark.parametrize(
    ("dwell", "words"),
    [
        ({"type": "lognormal", "mean": 8, "sd": 1e300}, ["demand[0].dwell", "sd/mean"]),
        ({"type": "lognormal", "mean": 1e200, "sd": 1}, ["demand[0].dwell", "sd/mean"]),
        ({"type": "exponential", "mean": 1e300}, ["demand[0].dwell"]),
        ({"type": "gamma", "mean": 2, "shape": 1e-320}, ["demand[0].dwell"]),
        ({"type": "constant", "value": 1e9, "unit": "h"}, ["demand[0].dwell", "366 days"]),
    ],
    ids=["lognormal-sd-overflow", "lognormal-collapses", "huge-mean", "gamma-shape", "too-long"],
)
def test_unusable_distribution_parameters_are_named(
    tmp_path: Path, dwell: dict, words: list[str]
) -> None:
    data = surface_lot()
    data["demand"][0]["dwell"] = dwell
    assert_refused(*run_cli(tmp_path, data), *words)


def test_a_start_pandas_cannot_hold_is_named(tmp_path: Path) -> None:
    assert_refused(*run_cli(tmp_path, surface_lot(start="9999-12-31")), "start", "2262")
    late = surface_lot(start="2261-12-01", horizon_days=60)
    assert_refused(*run_cli(tmp_path, late), "horizon_days")


def test_a_start_with_a_utc_offset_is_named(tmp_path: Path) -> None:
    # it used to be a TypeError traceback (an aware date-time against the naive bounds)
    aware = surface_lot(start="2026-01-05T08:00:00+01:00")
    assert_refused(*run_cli(tmp_path, aware), "start", "without a UTC offset")


def test_a_binary_file_is_refused(tmp_path: Path) -> None:
    assert_refused(*run_cli(tmp_path, bytes(range(256)) * 4), "UTF-8")


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    code, lines = run_cli(tmp_path, "a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert_refused(code, lines, "nested more than")
    data = surface_lot()
    node = data["facility"]
    for _ in range(200):
        node["x"] = {}
        node = node["x"]
    assert_refused(*run_cli(tmp_path, copy.deepcopy(data)), "facility", "nested more than")


# -- trace CSVs: every cell read as written, or refused with its row ------------------------
def trace_scenario(tmp_path: Path, csv: str, **trace: Any) -> dict:
    """A small lot replaying ``csv`` (columns t in minutes, stay in minutes, ev)."""
    (tmp_path / "trace.csv").write_text(csv)
    return {
        "name": "trace",
        "horizon_days": 1,
        "facility": {"levels": [{"name": "G", "spots": {"REGULAR": 5, "EV": 5}}]},
        "demand": [
            {
                "name": "log",
                "trace": {
                    "path": str(tmp_path / "trace.csv"),
                    "time_column": "t",
                    "time_unit": "min",
                    "dwell_column": "stay",
                    "ev_column": "ev",
                    **trace,
                },
            }
        ],
    }


def test_trace_yes_no_cells_are_read_as_written(tmp_path: Path) -> None:
    from twin.experiments import simulate
    from twin.scenario.loader import validate_scenario

    words = ["yes", "no", "No", "TRUE", "false", "0", "1", " Yes ", ""]
    rows = "".join(f"{k},30,{w}\n" for k, w in enumerate(words))
    rec = simulate(validate_scenario(trace_scenario(tmp_path, "t,stay,ev\n" + rows)))
    # the empty cell is not recorded: drawn from the stream's ev_share (0 here)
    assert rec.drivers.ev.tolist() == [True, False, False, True, False, False, True, True, False]


@pytest.mark.parametrize(
    ("csv", "words"),
    [
        ("t,stay,ev\n1,30,no\n2,30,maybe\n", ["row 3", "'ev'", "maybe", "yes/no"]),
        ("t,stay,ev\n1,30,no\n2,-5,no\n3,-1,no\n", ["rows 3, 4 (2 rows)", "'stay'", ">= 0"]),
        ("t,stay,ev\n1,30,no\n,30,no\n", ["row 3", "'t'", "a number of min"]),
        ("t,stay,ev\n1,30,no\nnan,30,no\n", ["row 3", "'t'", "nan"]),
        ("t,stay,ev\n1,30,no\n2,inf,no\n", ["row 3", "'stay'", "inf"]),
        ("t,stay,ev\nsoon,30,no\n", ["row 2", "'t'", "soon"]),
    ],
    ids=["bad-boolean", "negative-dwell", "blank-time", "nan-time", "inf-dwell", "text-time"],
)
def test_bad_trace_cells_are_refused_with_their_row(
    tmp_path: Path, csv: str, words: list[str]
) -> None:
    code, lines = run_cli(tmp_path, trace_scenario(tmp_path, csv))
    assert_refused(code, lines, "trace.csv", *words)


@pytest.mark.parametrize(
    "when",
    ["05/01/2026 08:00", "2026-01-05T08:00:00+01:00", "2026-02-30 08:00"],
    ids=["not-iso", "utc-offset", "no-such-day"],
)
def test_bad_trace_datetimes_are_refused_with_their_row(tmp_path: Path, when: str) -> None:
    csv = f"t,stay,ev\n2026-01-05 08:00:00,30,no\n{when},30,no\n"
    code, lines = run_cli(tmp_path, trace_scenario(tmp_path, csv, time_unit="datetime"))
    assert_refused(code, lines, "trace.csv", "'t'")
    assert "row 3" in lines[0] or "offset" in lines[0]


def test_rows_outside_the_horizon_are_reported_once(tmp_path: Path) -> None:
    csv = "t,stay,ev\n-5,30,no\n10,30,no\n2000,30,no\n3000,30,yes\n"
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(trace_scenario(tmp_path, csv)))
    result = runner.invoke(app, ["run", str(path), "--replications", "3"])
    assert result.exit_code == 0, result.output
    assert "3 trace rows fell outside the horizon" in result.stdout


@pytest.mark.parametrize("distance", ["nan", "inf", "-3", "far"])
def test_spot_list_distances_must_be_finite(tmp_path: Path, distance: str) -> None:
    (tmp_path / "spots.csv").write_text(
        f"id,level,type,distance_m\nA1,G,REGULAR,10\nA2,G,REGULAR,{distance}\n"
    )
    data = surface_lot()
    data["facility"]["spots_csv"] = str(tmp_path / "spots.csv")
    assert_refused(*run_cli(tmp_path, data), "spots.csv", "row 3", "distance_m")


# -- absurd sizes: refused before simulating, through the installed command ----------------
def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))


def _set(data: dict, dotted: str, value: Any) -> dict:
    node = data
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[last] = value
    return data


SIZES = {
    "spots": ("facility.levels.0.spots.REGULAR", 1_000_000_000, "facility.levels[0].spots"),
    "lanes": ("lanes.entry.count", 1e9, "lanes.entry.count"),
    "rate": ("demand.2.rate_per_hour", 1e7, "demand[2] ('riders')"),
    "interval": ("output.interval_min", 1e-6, "output.interval_min"),
    "multiplier": ("demand.0.multiplier", 1e300, "demand[0] ('commuters')"),
    "horizon": ("horizon_days", 1e7, "(top level): horizon_days"),
    "long": ("horizon_days", 20_000, "demand["),
    "replications": ("replications", 10**9, "replications"),
}


# One interpreter under the memory limit loads the installed `parktwin` command's entry point
# and its imports once, then forks one child per file, all at once: each refusal runs in its own
# process (own exit code, own stderr, the same 3 GiB address space) as eight `parktwin run`
# commands did, without paying the ~2 s CPU start-up eight times (the test took 16 s of CPU).
_FORKED_RUNS = """
import os, sys, traceback
from importlib.metadata import entry_points

main = entry_points(group="console_scripts")["parktwin"].load()
import parktwin.cli.run, twin.api  # what `parktwin run` imports; the children inherit them

children = []
for path in sys.argv[1:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.dup2(write, 2)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stdout carries the parent's results
        sys.argv = ["parktwin", "run", path]
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stderr.flush()
        os._exit(code)
    os.close(write)
    children.append((path, pid, read))
for path, pid, read in children:
    with os.fdopen(read) as pipe:
        err = pipe.read()
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    print(repr((path, code, err)))
"""


def test_absurd_sizes_are_refused_quickly_in_little_memory(tmp_path: Path) -> None:
    """The issue's examples (a hang at 3.6 GB, MemoryError, 10.7 GiB, 'lam value too large')
    each end in one line naming the setting, within a 3 GiB address space; all run at once,
    each in its own process running the installed command's entry point."""
    paths = []
    for name, (dotted, value, _) in SIZES.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(_set(surface_lot(), dotted, value)))
        paths.append(str(path))
    done = subprocess.run(
        [sys.executable, "-c", _FORKED_RUNS, *paths],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_memory,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = [ast.literal_eval(line) for line in done.stdout.splitlines()]
    assert [Path(path).stem for path, _, _ in results] == list(SIZES)
    for path, code, err in results:
        name = Path(path).stem
        lines = err.splitlines()
        assert code == 2 and len(lines) == 1, (name, err[-2000:])
        assert f"{name}.yaml: {SIZES[name][2]}" in lines[0], lines[0]


def test_a_gamma_stay_given_by_its_shape_loads_and_is_bounded_by_its_mean() -> None:
    """``{type: gamma, mean, shape}`` states no sd: the duration bound must read the mean only
    (it used to take max() over [mean, None] and fail with a TypeError)."""
    from pydantic import TypeAdapter

    from twin.scenario.dists import Duration

    adapter = TypeAdapter(Duration)
    stay = adapter.validate_python({"type": "gamma", "mean": 3, "shape": 2, "unit": "h"})
    assert stay.frozen().mean() == pytest.approx(3)
    with pytest.raises(ValidationError, match="at most 366 days"):
        adapter.validate_python({"type": "gamma", "mean": 400, "shape": 2, "unit": "d"})
