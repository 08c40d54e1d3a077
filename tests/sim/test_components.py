"""The operations-component framework: hooks fire, and a component can free spots and park cars."""

from __future__ import annotations

from twin.core.types import SpotStatus
from twin.scenario.loader import validate_scenario
from twin.sim.components import TURN_AWAY, Component, ModelContext
from twin.sim.model import PARKED, TURNED_AWAY, ParkingModel

SCENARIO = {
    "name": "hooks",
    "horizon_days": 1,
    "facility": {"levels": [{"name": "G", "spots": {"REGULAR": 1}}]},
    "demand": [
        {
            "name": "one",
            "trace": {"path": "PLACEHOLDER", "time_unit": "s", "dwell_column": "dwell"},
        }
    ],
    "behaviour": {
        "when_full": "wait",
        "patience": {"type": "constant", "value": 2000, "unit": "s"},
    },
}


class Holder(Component):
    """Keeps the only spot until t=1000, then frees it and tells the model."""

    name = "holder"

    def __init__(self) -> None:
        self.events: list[tuple[str, int, float]] = []

    def start(self, ctx: ModelContext) -> None:
        super().start(ctx)
        lot = ctx.lots[0]
        self.spot = lot.hold_spot(lot.spots[0].type, 0.0)
        ctx.call_at(1000.0, self.release)

    def release(self, t: float) -> None:
        self.ctx.lots[0].set_status(self.spot.index, SpotStatus.AVAILABLE, t)
        self.ctx.spot_freed(0, t)

    def on_refused(self, i: int, k: int, t: float) -> None:
        self.events.append(("refused", i, t))

    def on_park(self, i, k, session, t) -> None:
        self.events.append(("park", i, t))

    def on_leave(self, i, k, session, t) -> float:
        self.events.append(("leave", i, t))
        return 0.0


class Bouncer(Component):
    name = "bouncer"

    def on_arrival(self, i: int, k: int, t: float):
        return TURN_AWAY if i == 1 else None


def _scenario(tmp_path, rows: str):
    path = tmp_path / "trace.csv"
    path.write_text("arrival,dwell\n" + rows)
    data = {**SCENARIO, "demand": [{**SCENARIO["demand"][0]}]}
    data["demand"][0]["trace"] = {**data["demand"][0]["trace"], "path": str(path)}
    return validate_scenario(data)


def test_a_component_freeing_a_spot_serves_the_waiting_driver(tmp_path) -> None:
    model = ParkingModel(_scenario(tmp_path, "500,30\n"))
    holder = Holder()
    model.components = [holder]
    rec = model.run()
    assert rec.outcome[0] == PARKED
    assert rec.entry_t[0] == 1000.0  # parked the moment the hold ended, not at arrival
    assert holder.events == [("refused", 0, 500.0), ("park", 0, 1000.0), ("leave", 0, 2800.0)]


def test_turn_away_verdict(tmp_path) -> None:
    model = ParkingModel(_scenario(tmp_path, "100,1\n200,1\n"))
    model.components = [Bouncer()]
    rec = model.run()
    assert rec.outcome[0] == PARKED and rec.outcome[1] == TURNED_AWAY
