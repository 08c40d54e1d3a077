"""What a planner sees of a tariff search: the plot and the terminal table say what they show.

Issue 9 §5: the best point's star was red (the colour bar's ~92 %) when its value was 85.2 %,
points were numbered in evaluation order, axis labels were written beside the registry, and
table rows wrapped onto two or three lines ("pp" alone on a line).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from rich.console import Console

from twin import figures
from twin.optimize import make_spec, optimize
from twin.optimize.plots import PLOTTED, axis, optimization_figure
from twin.views.optimize import optimize_tables


def wtp_lot(days: float) -> dict:
    """60 drivers an hour paying up to U(0, 10) per visit, 10-minute stays, room for all."""
    return {
        "name": "wtp_lot",
        "horizon_days": days,
        "seed": 3,
        "facility": {"levels": [{"name": "G", "spots": {"REGULAR": 400}}]},
        "demand": [
            {
                "name": "drivers",
                "rate_per_hour": 60.0,
                "dwell": {"type": "constant", "value": 10, "unit": "min"},
                "willingness_to_pay": {
                    "per": "visit",
                    "distribution": {"type": "uniform", "low": 0, "high": 10.0},
                },
            }
        ],
        "tariff": {"flat": 3.0},
    }


@pytest.fixture(scope="module")
def two_keys():
    scenario = wtp_lot(days=0.5)
    scenario["tariff"] = {"period_minutes": 60, "per_period": 2.0, "daily_max": 8.0}
    spec = make_spec(
        params={"tariff.per_period": (0.5, 6.0), "tariff.daily_max": (2.0, 12.0)},
        method="scipy",
        max_evals=8,
        replications=2,
    )
    return optimize(scenario, spec)


@pytest.fixture(scope="module")
def one_key():
    spec = make_spec(params={"tariff.flat": (1.0, 9.0)}, grid_points=5, replications=2)
    return optimize(wtp_lot(days=0.5), spec)


def test_axis_labels_units_and_scales_come_from_the_figure_registry() -> None:
    for objective, names in PLOTTED.items():
        for name in names:
            _, label, scale, _kind = axis(name)
            assert label.replace("\n", " ").startswith(figures.label_of(name)), objective
            assert scale == figures.unit_of(name).scale
    assert axis("occupancy.window")[3] == "occ" and axis("revenue_per_day")[3] == "money"


def test_best_star_has_the_colour_of_its_own_value_and_points_are_labelled_by_tariff(
    two_keys,
) -> None:
    first = axis(PLOTTED["revenue"][0])
    fig = optimization_figure(two_keys)  # two parameters: a scatter of the objective
    ax = fig.axes[0]
    stars = [line for line in ax.get_lines() if line.get_marker() == "*"]
    assert len(stars) == 1
    scatter = ax.collections[0]
    value = two_keys.best.metrics[first[0]].to_numpy(dtype=float).mean() * first[2]
    expected = scatter.cmap(scatter.norm(value))
    assert np.allclose(to_rgba(stars[0].get_markerfacecolor()), expected)
    assert "best (" in stars[0].get_label() and "$" in stars[0].get_label()
    tags = [t.get_text() for t in ax.texts]
    assert tags, "some points carry a label"
    assert all(re.search(r"\$[\d.,]+, \$[\d.,]+", t.replace("\\", "")) for t in tags), tags
    assert not any(t.strip().isdigit() for t in tags)  # not the order they were tried in
    colour_bar = fig.axes[1].get_ylabel().replace("\\", "")
    assert colour_bar.startswith(figures.label_of("revenue_per_day"))


def test_one_key_plot_labels_its_panels_from_the_registry(one_key) -> None:
    first, second = (axis(n) for n in PLOTTED["revenue"])
    fig = optimization_figure(one_key)  # one parameter: panels over the tariff
    top, _, bottom = fig.axes[:3]
    assert top.get_ylabel() == first[1] and bottom.get_ylabel() == second[1]
    assert figures.label_of("no_space_pct") in bottom.get_ylabel().replace("\n", " ")


def test_terminal_table_has_one_line_per_tariff(two_keys) -> None:
    console = Console(width=150, record=True, color_system=None)
    points = optimize_tables(two_keys)[0]
    console.print(points)
    lines = console.export_text().splitlines()
    rule = next(k for k, line in enumerate(lines) if set(line.strip()) == {"─"})
    body = [line for line in lines[rule + 1 :] if line.strip()]
    assert len(body) == points.row_count
    assert all(re.match(r"\s*\d+\s", line) for line in body), body
    assert all("…" not in line and len(line.rstrip()) <= 150 for line in lines)
