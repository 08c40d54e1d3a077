"""Does the regression gate catch a change to each pricing feature? Change one thing at a time
in a copy of a shipped scenario and run ``parktwin regress``'s check against the shipped
baseline; print which figures fail.

    .venv/bin/python scripts/regress_mutations.py

Each change is small on purpose (a multiplier by 0.05, an event price by $1, a window cap by
$0.50, the day boundary by 30 minutes, a grace period by 2 minutes): the kind of edit a
reviewer could miss. Not part of CI (about a minute); the unit test
``tests/experiments/test_receipts.py`` checks the same changes on the receipts figure alone.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from twin.regress import RECEIPTS, check  # noqa: E402

RAMP = "city_ramp_tariff"
#: (label, scenario, dotted path into the file, new value)
MUTATIONS = [
    ("dynamic multiplier 1.2 -> 1.25", RAMP, "tariff.dynamic.time_bands.0.multiplier", 1.25),
    ("event price $10 -> $11", RAMP, "tariff.events.0.flat", 11.0),
    ("event buyers 60 % -> 50 %", RAMP, "tariff.events.0.share", 0.5),
    ("event sold at lane 1 -> lane 2", RAMP, "tariff.events.0.lanes", [2]),
    ("event sold at lane 1 -> lanes 1-2", RAMP, "tariff.events.0.lanes", [1, 2]),
    ("flat market morning $6 -> $7", RAMP, "tariff.events.1.flat", 7.0),
    ("early-bird flat $9 -> $9.50", RAMP, "tariff.bands.0.flat", 9.5),
    ("evening window cap $5 -> $5.50", RAMP, "tariff.windows.0.max", 5.5),
    ("day boundary 03:00 -> 03:30", RAMP, "tariff.day_starts", "03:30"),
    ("day max $12 -> $12.50", RAMP, "tariff.daily_max", 12.5),
    ("weekend day max $8 -> $8.50", RAMP, "tariff.bands.1.daily_max", 8.5),
    ("holiday moved a day", RAMP, "tariff.special_days.0.dates", ["2026-03-05"]),
    ("cinema validation 180 -> 150 min", RAMP, "tariff.validations.0.free_minutes", 150),
    ("shop validation $2 -> $2.50 off", RAMP, "tariff.validations.1.amount_off", 2.5),
    ("grace 10 -> 12 min (airport)", "airport_long_stay", "tariff.grace_minutes", 12),
]


def mutate(data: dict, dotted: str, value: object) -> None:
    *path, last = dotted.split(".")
    node = data
    for key in path:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def main() -> None:
    baselines = ROOT / "reports" / "baselines"
    header = f"{'change':34s} {'verdict':7s} {'failing figures (of)':>20s}"
    print(header + "  simulated figures that fail")
    with tempfile.TemporaryDirectory() as tmp:
        for label, name, dotted, value in MUTATIONS:
            data = yaml.safe_load((ROOT / "scenarios" / f"{name}.yaml").read_text())
            mutate(data, dotted, value)
            path = Path(tmp) / f"{name}.yaml"
            path.write_text(yaml.safe_dump(data, sort_keys=False))
            result = check(path, baselines)
            failed = result.failures["metric"].tolist()
            simulated = [m for m in failed if m != RECEIPTS]
            verdict = "pass" if result.passed else "FAIL"
            count = f"{len(failed)} of {len(result.table)}"
            print(f"{label:34s} {verdict:7s} {count:>20s}  {', '.join(simulated) or '-'}")


if __name__ == "__main__":
    main()
