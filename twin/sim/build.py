"""Build core objects (lot, tariff) from a scenario: the only bridge from files to core."""

from __future__ import annotations

import math

import pandas as pd

from twin.core.clock import Calendar
from twin.core.facility import Level, Spot, build_spots
from twin.core.lot import Lot
from twin.core.types import SpotType
from twin.scenario.model import LotSpec, Scenario


def calendar_for(scenario: Scenario) -> Calendar:
    return Calendar(epoch=scenario.start)


def build_lot(scenario: Scenario, calendar: Calendar | None = None) -> Lot:
    """A fresh core Lot for a one-lot scenario (the first lot of a network)."""
    calendar = calendar or calendar_for(scenario)
    return build_lot_from(scenario.lot_specs[0], calendar)


def build_lots(scenario: Scenario, calendar: Calendar | None = None) -> list[Lot]:
    """Fresh core Lots, one per facility (lots are stateful, so never shared between runs)."""
    calendar = calendar or calendar_for(scenario)
    return [build_lot_from(spec, calendar) for spec in scenario.lot_specs]


def build_lot_from(spec: LotSpec, calendar: Calendar) -> Lot:
    fac = spec.facility
    levels = [
        Level(
            index=k,
            name=level.name,
            entrance_distance=(
                level.entrance_distance_m
                if level.entrance_distance_m is not None
                else k * fac.level_distance_m
            ),
        )
        for k, level in enumerate(fac.levels)
    ]
    if fac.spots_csv is not None:
        spots = read_spot_list(fac.spots_csv, levels)
    else:
        counts = [
            (lv, {SpotType[t]: n for t, n in level.spots.items()})
            for lv, level in zip(levels, fac.levels, strict=True)
        ]
        spots = build_spots(counts, spacing_m=fac.spot_spacing_m)
    tariff = spec.tariff.build(calendar, lot=spec.name) if spec.tariff is not None else None
    return Lot(
        spots,
        levels,
        strategy=fac.strategy,
        tariff=tariff,
        ev_open_to_all=fac.ev_open_to_all,
        lot_id=spec.name,
    )


def read_spot_list(path, levels: list[Level]) -> list[Spot]:
    """Surveyed spots: CSV with columns id, level (name), type, distance_m."""
    frame = pd.read_csv(path)
    need = {"id", "level", "type", "distance_m"}
    if not need <= set(frame.columns):
        raise ValueError(f"{path}: needs columns {sorted(need)}, has {list(frame.columns)}")
    by_name = {lv.name: lv.index for lv in levels}
    spots = []
    for k, row in enumerate(frame.itertuples(index=False)):
        if str(row.level) not in by_name:
            raise ValueError(f"{path}: row {k + 2}: unknown level {row.level!r}")
        if str(row.type).upper() not in SpotType.__members__:
            raise ValueError(f"{path}: row {k + 2}: unknown spot type {row.type!r}")
        distance = pd.to_numeric(row.distance_m, errors="coerce")
        if not 0 <= distance < math.inf:
            raise ValueError(
                f"{path}: row {k + 2}, column 'distance_m': {row.distance_m!r} "
                "(allowed: a finite distance in metres >= 0)"
            )
        spots.append(
            Spot(
                index=k,
                id=str(row.id),
                level=by_name[str(row.level)],
                type=SpotType[str(row.type).upper()],
                distance=float(distance),
            )
        )
    return spots
