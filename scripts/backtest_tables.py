"""Keep docs/validation.md's Birmingham backtest tables (and the README's summary of them) equal
to the backtest run committed in reports/backtest/.

The tables are rendered by :mod:`twin.calibrate.backtest_tables` from

* ``reports/backtest/birmingham.csv``: the run's ``backtest.csv``;
* ``reports/backtest/birmingham_families.csv``: the chosen rows of its ``families.csv``;
* ``reports/backtest/birmingham_unusable.csv``: its ``unusable.csv``;
* ``reports/backtest/birmingham_early.csv``: the ``backtest.csv`` of the earlier cut
  (``--train-until 2016-11-06 --test-days 14``) the settings were chosen on,

and written between ``<!-- backtest-tables:NAME:start/end -->`` markers in docs/validation.md
(and ``<!-- backtest-tables:headline --> … <!-- /backtest-tables -->`` in README.md).

Usage (from the repository root)::

    python scripts/backtest_tables.py --check                 # exit 1 naming every stale block
    python scripts/backtest_tables.py --update                # rewrite the docs' blocks
    python scripts/backtest_tables.py --update --run out/backtest --early-run out/backtest-early
        # first copy the new runs' tables (backtest.csv, families.csv, unusable.csv; the early
        # run's backtest.csv) into reports/backtest/ (families: the chosen rows only, to keep
        # the commit small)

The prose around the tables (which car parks miss and why) is not generated: after a new run,
read the "misses" block and update the sentences that discuss it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from twin.calibrate.backtest_tables import (
    FAMILY_COLUMNS,
    TABLE_COLUMNS,
    TablesInputError,
    blocks,
    headline,
    replace_blocks,
)
from twin.outputs import write_frame, write_text

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "reports" / "backtest"
DOCS = ROOT / "docs" / "validation.md"
README = ROOT / "README.md"
FILES = {"backtest": "birmingham.csv", "families": "birmingham_families.csv",
         "unusable": "birmingham_unusable.csv", "early": "birmingham_early.csv"}  # fmt: skip
REQUIRED = {"backtest": TABLE_COLUMNS, "families": FAMILY_COLUMNS, "unusable": ("site", "why"),
            "early": TABLE_COLUMNS}  # fmt: skip


def _read(path: Path, name: str) -> pd.DataFrame:
    if not path.is_file():
        raise TablesInputError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise TablesInputError(f"{path}: not a CSV table ({exc})") from None
    missing = [c for c in REQUIRED[name] if c not in frame.columns]
    if missing:
        raise TablesInputError(
            f"{path}: no column {', '.join(missing)} (needs {', '.join(REQUIRED[name])})"
        )
    return frame


def load(reports: Path = REPORTS) -> dict[str, pd.DataFrame]:
    """The committed run's tables."""
    return {name: _read(reports / file, name) for name, file in FILES.items()}


def import_run(run: Path | None, early: Path | None, reports: Path = REPORTS) -> None:
    """Copy a backtest output folder's tables into ``reports`` (families: chosen rows only),
    and the earlier cut's backtest.csv."""
    reports.mkdir(parents=True, exist_ok=True)
    if early is not None:
        write_frame(_read(early / "backtest.csv", "early"), reports / FILES["early"])
    if run is None:
        return
    frames = {
        name: _read(run / f"{name}.csv", name) for name in ("backtest", "families", "unusable")
    }
    fam = frames["families"]
    if "chosen" not in fam.columns:
        raise TablesInputError(f"{run / 'families.csv'}: no column chosen")
    frames["families"] = fam[fam["chosen"].astype(str).str.lower() == "true"]
    for name, frame in frames.items():
        write_frame(frame, reports / FILES[name])


def render(docs: str, readme: str, frames: dict[str, pd.DataFrame]) -> tuple[str, str, list]:
    """Both files with their blocks regenerated, and the names of the blocks that changed."""
    table = frames["backtest"]
    generated = blocks(table, frames["families"], frames["unusable"], frames["early"])
    new_docs, changed = replace_blocks(docs, generated)
    new_readme, changed_readme = replace_blocks(readme, {}, {"headline": headline(table)})
    return new_docs, new_readme, changed + [f"README {n}" for n in changed_readme]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 if a block is stale")
    mode.add_argument("--update", action="store_true", help="rewrite the blocks")
    ap.add_argument("--run", type=Path, help="backtest output folder to copy in first (--update)")
    ap.add_argument("--early-run", type=Path, help="the earlier cut's output folder (--update)")
    ap.add_argument("--reports", type=Path, default=REPORTS)
    ap.add_argument("--docs", type=Path, default=DOCS)
    ap.add_argument("--readme", type=Path, default=README)
    args = ap.parse_args(argv)
    try:
        if args.run is not None or args.early_run is not None:
            if not args.update:
                raise TablesInputError("--run, --early-run: only with --update")
            import_run(args.run, args.early_run, args.reports)
        frames = load(args.reports)
        docs = args.docs.read_text(encoding="utf-8")
        readme = args.readme.read_text(encoding="utf-8")
        new_docs, new_readme, changed = render(docs, readme, frames)
    except (TablesInputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if changed:
            print(f"stale: {', '.join(changed)} (run scripts/backtest_tables.py --update)")
            return 1
        print("backtest tables up to date")
        return 0
    if new_docs != docs:
        write_text(args.docs, new_docs)
    if new_readme != readme:
        write_text(args.readme, new_readme)
    print(f"rewrote: {', '.join(changed)}" if changed else "nothing changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
