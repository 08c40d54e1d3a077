"""What the duty manager reads: the forecast chart of ``parktwin live --report`` keeps its
legend off the lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin import api, outputs
from twin.live.emit import emit
from twin.live.view import write_report


def test_the_forecast_legend_sits_beside_the_lines_not_on_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = api.load("scenarios/downtown_garage.yaml")
    path = tmp_path / "feed.jsonl"
    path.write_text("\n".join(emit(scenario, days=0.75).lines) + "\n", encoding="utf-8")
    live = api.mirror(path, scenario, prediction=2)
    forecast = live.mirror.forecast(hours=1, replications=3)
    drawn = {}
    save = outputs.save_figure

    def keep(fig, where):
        drawn[Path(where).name] = fig
        return save(fig, where)

    monkeypatch.setattr(outputs, "save_figure", keep)
    write_report(live.mirror, tmp_path / "report", live.feed(), forecast)
    fig = drawn["forecast.png"]
    fig.canvas.draw()
    (ax,) = fig.axes
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 >= ax.get_window_extent().x1, "the legend covers the plotted lines"
