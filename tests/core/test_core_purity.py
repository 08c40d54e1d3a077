"""The production core imports nothing from the simulation, data or plotting stack.

Checked in a fresh interpreter, because in the test process pytest plugins and other test
modules have long since imported numpy, pandas and friends.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FORBIDDEN = ("simpy", "pandas", "numpy", "matplotlib", "scipy", "pydantic", "yaml")

SCRIPT = """
import importlib, json, pkgutil, sys
import twin.core
names = sorted(m.name for m in pkgutil.walk_packages(twin.core.__path__, "twin.core."))
for name in names:
    importlib.import_module(name)
forbidden = set(sys.argv[1:])
print(json.dumps({
    "submodules": names,
    "loaded": sorted(m for m in sys.modules if m.startswith("twin")),
    "forbidden": sorted(m for m in sys.modules if m.partition(".")[0] in forbidden),
}))
"""


def run_fresh(script: str, *args: str) -> dict:
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


def test_core_and_every_submodule_import_without_heavy_dependencies():
    result = run_fresh(SCRIPT, *FORBIDDEN)
    # the walk really found the core's modules (an empty walk would pass vacuously)
    expected = {"allocation", "clock", "errors", "facility", "lot", "pricing", "types"}
    assert {f"twin.core.{m}" for m in expected} <= set(result["submodules"])
    assert set(result["submodules"]) <= set(result["loaded"])
    assert result["forbidden"] == [], f"twin.core pulled in {result['forbidden']}"
    # nothing outside the core package (sim, scenario, results...) is imported either
    assert all(m in ("twin", "twin.core") or m.startswith("twin.core.") for m in result["loaded"])


def test_the_check_detects_a_forbidden_import():
    # control: the same script in an interpreter that did import one of them reports it
    result = run_fresh("import json\n" + SCRIPT, "json")
    assert "json" in result["forbidden"]
