"""What `parktwin calibrate occupancy` prints fits an 80-column terminal whole: the site name a
row is read by, every header and every cell (they were cut to 'Others-…', 'capaci…')."""

from __future__ import annotations

from pathlib import Path

import pytest
from bham import BIRMINGHAM
from typer.testing import CliRunner

from cli import app

COLUMNS = "time=LastUpdated,occupied=Occupancy,capacity=Capacity,site=SystemCodeNumber"


@pytest.mark.skipif(not BIRMINGHAM.is_file(), reason=f"no {BIRMINGHAM}")
def test_the_fitted_sites_table_is_whole_at_80_columns(tmp_path: Path) -> None:
    args = ["calibrate", "occupancy", str(BIRMINGHAM), "--columns", COLUMNS, "--no-plots"]
    args += ["--sites", "Others-CCCPS135a", "--train-until", "2016-11-20"]
    result = CliRunner().invoke(
        app, [*args, "--out", str(tmp_path / "cal")], env={"COLUMNS": "80"}, terminal_width=80
    )
    assert result.exit_code == 0, result.output
    table = result.output.split("rows: used readings")[0]
    assert "…" not in table, table
    assert "Others-CCCPS135a" in table and "held-out" in table and "capacity" in table
    assert max(len(line) for line in table.splitlines()) <= 80
