"""The analyst notebooks run top to bottom on the current API and show what they promise.

Executed with a real Jupyter kernel (nbclient + ipykernel), so a renamed column or API call
breaks the suite rather than the next analyst's afternoon.
"""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _execute(path: Path):
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()  # raises CellExecutionError naming the cell on any failure
    return nb


def _texts(nb) -> str:
    out = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            out.append(output.get("text", ""))
            out.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(out)


def test_there_is_a_notebook() -> None:
    assert sorted(NOTEBOOKS.glob("*.ipynb")), "notebooks/ holds the analysts' walkthroughs"


def test_planning_walkthrough_runs_and_shows_intervals_plot_and_verdicts() -> None:
    nb = _execute(NOTEBOOKS / "planning_walkthrough.ipynb")
    text = _texts(nb)
    assert "ci_low" in text and "revenue_per_day" in text  # figures come with intervals
    assert "unchanged" in text or "raises" in text or "lowers" in text  # compare's verdicts
    pngs = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(pngs) == 1  # the occupancy-by-level plot


def test_operator_twin_replays_a_faulty_feed_and_finds_every_fault() -> None:
    nb = _execute(NOTEBOOKS / "operator_twin.ipynb")
    text = _texts(nb)
    assert "dead_sensor" in text and "payment_outage" in text and "sensor_vs_gate" in text
    assert "alerts no fault explains: 0" in text
    assert "index.html" in text
    pngs = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(pngs) == 1  # the forecast bands
