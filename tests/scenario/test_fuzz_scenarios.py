"""Fuzz: broken copies of every shipped scenario end in exit 2 with a field-naming line, or run.

Each case breaks one place of a shipped scenario (a wrong type, NaN or infinity, a huge or
negative number, an empty list, an unknown name, deep nesting) on a short horizon and runs
``parktwin run`` on it. Never a traceback, a hang or a memory blow-up: the cases run in one
child process with an address-space limit (``RLIMIT_AS``) and an alarm per case, so a case
that would eat the machine's memory or hang fails the test instead.

Seeded and bounded: the same cases every time, about ten seconds in all.
"""

from __future__ import annotations

import json
import math
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
CASES_PER_SCENARIO = 5
SEED = 20261205
#: Address space the child may use: imports take ~0.6 GiB, a short run far less than the rest.
ADDRESS_SPACE = 3 * 2**30
SECONDS_PER_CASE = 30

HUGE = [1e9, 1e300, 10**20, -1, -1e9, 0]
WRONG = ["text", [1, 2], {"x": 1}, True, None]
SPECIAL = [math.nan, math.inf, -math.inf]
DEEP = "deep-nesting-"


def _unshared(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _unshared(v) for k, v in node.items()}
    return [_unshared(v) for v in node] if isinstance(node, list) else node


def _places(node: Any, path: tuple = ()) -> list[tuple]:
    """Every key path in the mapping (containers and leaves)."""
    out = [path] if path else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _places(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _places(v, (*path, i))
    return out


def _mutated(value: Any, rng: random.Random) -> tuple[str, Any]:
    kind = rng.choice(["wrong", "special", "huge", "empty", "enum", "deep"])
    if kind == "special" or (kind == "huge" and not isinstance(value, int | float)):
        return "special", rng.choice(SPECIAL)
    if kind == "huge":
        return "huge", rng.choice(HUGE)
    if kind == "empty":
        return "empty", [] if isinstance(value, list) else {}
    if kind == "enum" and isinstance(value, str):
        return "enum", "no_such_" + value
    if kind == "deep":  # written into the text after dumping (PyYAML recurses per level)
        return "deep", f"{DEEP}{rng.choice([70, 5000])}"
    return "wrong", rng.choice(WRONG)


def _short(data: dict) -> dict:
    """A few hours after the warm-up, one replication: the fuzz tests inputs, not the model."""
    warmup = data.get("warmup_hours", 0)
    data["warmup_hours"] = warmup if isinstance(warmup, int | float) else 0
    data["horizon_days"] = min(data.get("horizon_days", 1), data["warmup_hours"] / 24 + 0.25)
    data["replications"] = 1
    return data


def make_cases(folder: Path) -> list[dict]:
    """Write the seeded cases to ``folder``; return what each breaks."""
    rng = random.Random(SEED)
    cases = []
    for path in SCENARIOS:
        base = yaml.safe_load(path.read_text())
        for k in range(CASES_PER_SCENARIO):
            # a copy without YAML anchors: one change must change one place
            data = _short(_unshared(yaml.safe_load(path.read_text())))
            place = rng.choice(_places(base))
            node = data
            for part in place[:-1]:
                node = node[part]
            kind, node[place[-1]] = _mutated(node[place[-1]], rng)
            out = folder / f"{path.stem}-{k}.yaml"
            # relative paths in the scenario (traces, spot lists) stay relative to scenarios/
            text = yaml.safe_dump(data, sort_keys=False).replace("path: ", f"path: {path.parent}/")
            text = re.sub(DEEP + r"(\d+)", lambda m: "[" * int(m[1]) + "1" + "]" * int(m[1]), text)
            out.write_text(text)
            cases.append({"file": str(out), "place": [str(p) for p in place], "kind": kind})
    return cases


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _child(files: list[str]) -> None:
    """In the limited child: run each file through the CLI, print one JSON line per case."""
    import signal

    from typer.testing import CliRunner

    from parktwin.cli import app

    class Hang(Exception):
        pass

    def alarm(*_: object) -> None:
        raise Hang

    signal.signal(signal.SIGALRM, alarm)
    runner = CliRunner()
    for file in files:
        signal.alarm(SECONDS_PER_CASE)
        try:
            result = runner.invoke(app, ["run", file])
            exc = result.exception
            code = result.exit_code if not isinstance(exc, Hang) else "hang"
            stderr = result.stderr
            if exc is not None and not isinstance(exc, SystemExit):
                stderr += f"\nTraceback: {type(exc).__name__}: {exc}"
        except Hang:
            code, stderr = "hang", ""
        finally:
            signal.alarm(0)
        print(json.dumps({"file": file, "code": code, "stderr": stderr}), flush=True)


def problems(cases: list[dict], outcomes: dict[str, dict]) -> list[str]:
    """Cases that did not end in a normal run or one field-naming line with exit 2."""
    bad = []
    for case in cases:
        got = outcomes.get(case["file"])
        where = f"{Path(case['file']).name} ({case['kind']} at {'.'.join(case['place'])})"
        if got is None:
            bad.append(f"{where}: no outcome (child died: memory or crash)")
            continue
        lines = got["stderr"].strip().splitlines()
        if got["code"] == 0:
            continue
        names = [p for p in case["place"] if not p.isdigit()]
        if case["kind"] == "deep":
            names.append(": line ")  # found before parsing: the file's line is named
        named = any(p in lines[0] for p in names) if lines else False
        if got["code"] != 2 or len(lines) != 1 or not lines[0].startswith("error: ") or not named:
            bad.append(f"{where}: exit {got['code']}: {got['stderr'].strip()[-300:]}")
    return bad


def run_cases(tmp_path: Path) -> tuple[list[dict], dict[str, dict]]:
    cases = make_cases(tmp_path)
    proc = subprocess.run(
        [sys.executable, __file__, *(c["file"] for c in cases)],
        capture_output=True,
        text=True,
        timeout=SECONDS_PER_CASE * len(cases),
        preexec_fn=_limit_memory,
        cwd=ROOT,
    )
    outcomes = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            got = json.loads(line)
            outcomes[got["file"]] = got
    return cases, outcomes


def test_fuzzed_shipped_scenarios_fail_cleanly_or_run(tmp_path: Path) -> None:
    cases, outcomes = run_cases(tmp_path)
    kinds = {c["kind"] for c in cases}
    assert {"wrong", "special", "huge", "empty", "deep"} <= kinds
    bad = problems(cases, outcomes)
    assert not bad, f"{len(bad)} of {len(cases)} cases:\n" + "\n".join(bad)
    assert sum(o["code"] == 2 for o in outcomes.values()) >= len(cases) // 2


if __name__ == "__main__":
    _child(sys.argv[1:])
