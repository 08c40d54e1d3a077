"""Every way a driver's run can end that has a nonzero share shows in the run summary table.

An overloaded barrier once ended 97.8 % of drivers ``in_entry_lane`` while the table showed
only arrivals, parked and blocked.
"""

from __future__ import annotations

import pytest
from rich.console import Console

from twin import api
from twin.scenario.loader import validate_scenario
from twin.views.run import summary_tables

#: The summary figure that reports each outcome (parked as a count, deterred per day).
FIGURE_OF = {
    "parked": "parked (after warm-up)",
    "blocked": "blocked (no spot)",
    "balked": "balked (price)",
    "reneged": "reneged (gave up waiting)",
    "waiting": "still waiting for a spot at the end",
    "in_entry_lane": "still in the entry lane at the end",
    "deterred": "stayed away at the price, per day",
    "diverting": "driving to another lot at the end",
    "turned_away": "turned away before the barrier (display FULL)",
}
ONE_LOT = {"levels": [{"name": "G", "spots": {"REGULAR": 20}}]}
DEMAND = [
    {"name": "d", "rate_per_hour": 90, "dwell": {"type": "constant", "value": 2, "unit": "h"}}
]
SCENARIOS = {
    # one slow barrier: most arrivals are still queueing when the run ends
    "overloaded barrier": {
        "facility": ONE_LOT,
        "lanes": {
            "entry": {"count": 1, "service": {"type": "constant", "value": 2, "unit": "min"}}
        },
    },
    # a full lot with patient drivers: a long line at the end
    "waiting line": {
        "facility": ONE_LOT,
        "behaviour": {
            "when_full": "wait",
            "patience": {"type": "constant", "value": 5, "unit": "h"},
        },
    },
    # a full lot whose turned-away drivers have a long drive to the next
    "network": {
        "demand": [{**DEMAND[0], "lot": "A"}],
        "lots": [
            {"name": "A", "x_km": 0, "y_km": 0, "facility": ONE_LOT},
            {"name": "B", "x_km": 40, "y_km": 0, "facility": ONE_LOT},
        ],
        "network": {
            "speed_kmh": 20,
            "diversion": {"base_probability": 1, "per_minute": 0, "max_tries": 1},
        },
    },
}


@pytest.mark.parametrize("case", list(SCENARIOS))
def test_every_outcome_with_a_share_is_in_the_summary(case: str) -> None:
    sc = validate_scenario(
        {"name": case.replace(" ", "_"), "horizon_days": 0.25, "demand": DEMAND, **SCENARIOS[case]}
    )
    result = api.run(sc, replications=2)
    shares = result.vehicles["outcome"].value_counts(normalize=True)
    nonzero = shares.index[shares > 0].tolist()
    console = Console(record=True, width=200)
    for table in summary_tables(result):
        console.print(table)
    text = console.export_text()
    missing = [name for name in nonzero if FIGURE_OF[name] not in text]
    assert not missing, f"{case}: outcomes {missing} have a share but no row in\n{text}"
    ended = {
        "overloaded barrier": "in_entry_lane",
        "waiting line": "waiting",
        "network": "diverting",
    }[case]
    assert ended in nonzero  # the case does what it is for
