"""How long `parktwin --help` and `parktwin --version` take, and what the CLI module imports.

    .venv/bin/python benchmarks/bench_startup.py [runs]

Each command runs `runs` times (default 10) in a fresh process; the table gives the best and
median wall time and the best CPU time (user + system of the child: on a shared machine the
wall time mostly measures the neighbours). The target is under 0.3 s for both (issue 9).
`python -c pass` is the floor every command pays. The last lines list the heaviest imports
of `import cli` (`python -X importtime`), cumulative, to show where the time goes.
"""

from __future__ import annotations

import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def measure(argv: list[str], runs: int) -> tuple[float, float, float]:
    """(best wall, median wall, best CPU) in seconds over ``runs`` fresh processes."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, capture_output=True, check=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return min(walls), statistics.median(walls), min(cpus)


def heaviest_imports(n: int = 8) -> list[tuple[int, str]]:
    """The n largest cumulative import times (µs) of `import cli` in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import cli"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in out.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s*(\S+)", line)
        if match:
            rows.append((int(match.group(1)), match.group(2)))
    return sorted(rows, reverse=True)[:n]


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "parktwin --version": [str(BIN / "parktwin"), "--version"],
        "parktwin --help": [str(BIN / "parktwin"), "--help"],
    }
    print(f"{'command':<22}{'best s':>9}{'median s':>10}{'best CPU s':>12}   ({runs} runs)")
    for label, argv in commands.items():
        best, median, cpu = measure(argv, runs)
        print(f"{label:<22}{best:>9.3f}{median:>10.3f}{cpu:>12.3f}")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("heaviest imports of `import cli` (cumulative ms):")
    for micros, name in heaviest_imports():
        print(f"  {micros / 1000:8.1f}  {name}")


if __name__ == "__main__":
    main()
