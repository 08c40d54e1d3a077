"""docs/validation.md's Birmingham backtest tables are generated from reports/backtest/ and
cannot drift from it (scripts/backtest_tables.py); the counts follow the stated rules."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.calibrate.backtest_tables import (
    TablesInputError,
    misses,
    per_site_table,
    replace_blocks,
    targets_table,
    within,
)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "backtest_tables.py"


def _script():
    spec = importlib.util.spec_from_file_location("backtest_tables_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_and_readme_tables_equal_what_the_committed_run_renders(capsys):
    script = _script()
    docs = script.DOCS.read_text(encoding="utf-8")
    readme = script.README.read_text(encoding="utf-8")
    new_docs, new_readme, changed = script.render(docs, readme, script.load())
    assert changed == [], (
        f"stale backtest tables {changed}: run `python scripts/backtest_tables.py --update`"
    )
    assert new_docs == docs and new_readme == readme
    # every site of the committed run has its row, and the unusable ones are named
    table = pd.read_csv(script.REPORTS / "birmingham.csv")
    for site in table["site"].unique():
        assert f"\n| {site} | " in docs
    for site in pd.read_csv(script.REPORTS / "birmingham_unusable.csv")["site"]:
        assert f"**{site}**: " in docs


def _rows(site: str, h: int, n: int, twin: float, naive: float, ets: float, c80, c95):
    base = {"site": site, "horizon_h": h, "n": n, "rmse": np.nan}
    return [
        {**base, "method": "twin", "mae": twin, "coverage80": c80, "coverage95": c95},
        {**base, "method": "seasonal_naive", "mae": naive, "coverage80": np.nan,
         "coverage95": np.nan},
        {**base, "method": "ets", "mae": ets, "coverage80": np.nan, "coverage95": np.nan},
    ]  # fmt: skip


@pytest.fixture
def small() -> pd.DataFrame:
    rows = []
    # site A: beats both at 1 h; at 4 h ties naive (not below) with 80% at exactly 45/60
    rows += _rows("A", 1, 100, 0.02, 0.05, 0.03, 0.70, 0.95)
    rows += _rows("A", 4, 60, 0.04, 0.04, 0.05, 45 / 60, 0.899)
    rows += _rows("B", 1, 300, 0.01, 0.02, 0.005, 0.90, 0.96)
    rows += _rows("B", 4, 60, 0.03, 0.05, 0.06, 51 / 60, 1.0)
    return pd.DataFrame(rows)


def test_within_counts_the_boundary_and_not_beyond():
    assert within([45 / 60, 0.85, 0.80], 0.80).all()
    assert not within([0.7499, 0.8501, np.nan], 0.80).any()
    assert within([0.90, 1.0], 0.95).all() and not within([0.8999], 0.95).any()


def test_targets_table_counts_pooled_and_ranges(small):
    t = targets_table(small)
    lines = {line.split(" | ")[0].lstrip("| "): line for line in t.splitlines()}
    assert lines["car parks where the twin's MAE < seasonal naive's (of 2)"].endswith(
        "| **2** | 1 |"
    )  # a tie is not below
    assert lines["car parks where the twin's MAE < ETS's (of 2)"].endswith("| 1 | 2 |")
    # pooled over actuals, not the mean of the car parks: (100·0.70 + 300·0.90) / 400
    assert "| 85.0% |" in lines["80% band: actuals inside, pooled over car parks"]
    assert lines["car parks with 80% coverage within 75–85%"].endswith("| 0 | **2** |")
    assert lines["car parks with 95% coverage within 90–100%"].endswith("| **2** | 1 |")
    assert lines["80% coverage per car park, lowest–highest"].endswith("| 70–90% | 75–85% |")
    assert "| 1.50 / 3.50 / 1.75 |" in lines["mean MAE, twin / naive / ETS (points of capacity)"]


def test_misses_name_each_site_horizon_with_figures(small):
    m = misses(small)
    assert "A 4 h (4.00 against 4.00)" in m.splitlines()[0]
    assert "B 1 h (1.00 against 0.50)" in m.splitlines()[1]
    assert "A 1 h (70.0%)" in m and "B 1 h (90.0%)" in m and "A 4 h (75.0%)" not in m
    assert m.splitlines()[3].endswith("A 4 h (89.9%).")


def test_per_site_table_marks_and_choice(small):
    fam = pd.DataFrame(
        {
            "site": ["A", "A", "B"],
            "family": ["gamma", "lognormal", "exponential"],
            "profile": ["shared", "own", "own"],
            "stay_mean_min": [292.5, 100.0, 318.0],
            "weight": [0.25, 0.0, 1.0],
            "recent_level": ["flow", "none", "flow2"],
            "chosen": [True, False, True],
        }
    )
    rows = per_site_table(small, fam).splitlines()
    assert rows[0].startswith("| car park | n (1/4 h) | twin MAE 1/4 h |")
    assert rows[2] == (
        "| A | 100 / 60 | 2.0 / 4.0 | 5.0 / 4.0 | 3.0 / 5.0 | 70 / 75 | 95 / 90 | ✓✗ | ✓✓ "
        "| gamma 4.9 h · Mon–Fri · flow 1 wk · 0.25 |"
    )
    assert rows[3].endswith("| ✓✓ | ✗✓ | exponential 5.3 h · own weekdays · flow 2 wk · 1 |")


def test_replace_blocks_only_between_markers_and_needs_them():
    text = "a\n<!-- backtest-tables:x:start -->\nold\n<!-- backtest-tables:x:end -->\nb\n"
    new, changed = replace_blocks(text, {"x": "new\n"})
    assert new == text.replace("old", "new") and changed == ["x"]
    assert replace_blocks(new, {"x": "new\n"})[1] == []
    with pytest.raises(TablesInputError, match="backtest-tables:y"):
        replace_blocks(text, {"y": "z\n"})


def _copy(tmp_path: Path) -> Path:
    for name in _script().FILES.values():
        shutil.copy(ROOT / "reports" / "backtest" / name, tmp_path / name)
    shutil.copy(ROOT / "docs" / "validation.md", tmp_path / "validation.md")
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    return tmp_path


def _run(tmp_path: Path, *args: str, command: bool = False) -> subprocess.CompletedProcess:
    """The script on the copies: as a command (``command=True``: a new interpreter, ~1-2 s of
    CPU start-up) or through its ``main`` in this process, same arguments, exit code and
    output."""
    paths = ["--reports", str(tmp_path), "--docs", str(tmp_path / "validation.md")]
    paths += ["--readme", str(tmp_path / "README.md")]
    argv = [*args, *paths]
    if command:
        return subprocess.run(
            [sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, cwd=ROOT
        )
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = _script().main(argv)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def test_check_exits_1_on_drift_and_update_repairs_it(tmp_path):
    d = _copy(tmp_path)
    assert _run(d, "--check", command=True).returncode == 0
    table = pd.read_csv(d / "birmingham.csv")
    twin = table.index[table["method"] == "twin"][0]
    table.loc[twin, "coverage80"] = 0.5
    table.to_csv(d / "birmingham.csv", index=False)
    stale = _run(d, "--check")
    assert stale.returncode == 1
    assert "per-site" in stale.stdout and "targets" in stale.stdout and "headline" in stale.stdout
    assert _run(d, "--update").returncode == 0
    assert _run(d, "--check").returncode == 0
    assert "| 50 / " in (d / "validation.md").read_text(encoding="utf-8")


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    d = _copy(tmp_path)
    pd.read_csv(d / "birmingham.csv").drop(columns="coverage80").to_csv(
        d / "birmingham.csv", index=False
    )
    bad = _run(d, "--check")
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        f"error: {d / 'birmingham.csv'}: no column coverage80 (needs site, horizon_h, method, n, "
        "mae, coverage80, coverage95)"
    )
