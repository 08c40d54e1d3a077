"""The tidy frames agree on types, so they join as they are, and the data dictionary is theirs.

Issue 9 §6: ``vehicles.arrival_time`` was ``datetime64[ns]`` and ``occupancy.time``
``datetime64[us]`` (``merge_asof`` between them failed), ``replication`` int32 in one frame and
int64 in the others, an empty lanes frame all float64, and the occupancy groups' categories
alphabetical (``COMPACT, EV, G, HANDICAP, ..., P4, REGULAR, all``) instead of facility order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin import api, datadict
from twin.core.types import SpotType
from twin.scenario.loader import validate_scenario

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return datadict.sample_frames()


@pytest.fixture(scope="module")
def garage() -> api.RunResult:
    """Five levels (G, P1..P4), lanes, several spot types; two replications."""
    return api.run(ROOT / "scenarios/downtown_operations.yaml", days=1.5, replications=2)


def test_every_frame_has_the_same_column_types(frames):
    for name, frame in frames.items():
        assert frame["replication"].dtype == np.int64, name
        for col in frame.columns:
            if pd.api.types.is_datetime64_any_dtype(frame[col]):
                assert frame[col].dtype == np.dtype("datetime64[ns]"), (name, col)
    assert frames["occupancy"]["occupied"].dtype == np.int64
    assert frames["occupancy"]["capacity"].dtype == np.int64
    assert frames["lanes"]["queue"].dtype == np.int64
    assert sorted(frames["occupancy"]["replication"].unique()) == [0, 1]


def test_lot_without_lanes_gives_a_typed_empty_lanes_frame():
    plain = {k: v for k, v in datadict.SAMPLE.items() if k not in ("lanes", "pricing_policy")}
    result = api.run(validate_scenario(plain), replications=1)
    lanes = result.lanes
    assert len(lanes) == 0
    assert lanes["replication"].dtype == np.int64
    assert lanes["queue"].dtype == np.int64
    assert isinstance(lanes["lane"].dtype, pd.CategoricalDtype)


def test_merge_asof_of_vehicles_on_occupancy_works_as_is(garage):
    vehicles = garage.vehicles.sort_values("arrival_time")
    total = garage.occupancy[garage.occupancy["group_kind"] == "total"].sort_values("time")
    merged = pd.merge_asof(
        vehicles, total, left_on="arrival_time", right_on="time", by="replication"
    )
    assert len(merged) == len(vehicles)
    # every arrival sees the last sample at or before it
    assert (merged["time"] <= merged["arrival_time"]).all()
    step = pd.Timedelta(minutes=garage.scenario.output.interval_min)
    assert (merged["arrival_time"] - merged["time"] < step).all()
    assert merged["occupied"].notna().all()


def test_categories_follow_the_facility_not_the_alphabet(garage):
    levels = [lv.name for lv in garage.scenario.facility.levels]
    assert levels == ["G", "P1", "P2", "P3", "P4"]
    assert list(garage.vehicles["level"].cat.categories) == levels
    occupancy = garage.occupancy
    groups = list(occupancy["group"].cat.categories)
    assert groups[0] == "all"
    assert groups[1 : 1 + len(levels)] == levels
    types = groups[1 + len(levels) :]
    order = [t.name for t in SpotType]
    assert types == sorted(types, key=order.index)
    assert list(occupancy["group_kind"].cat.categories) == ["total", "lot", "level", "spot_type"]


def test_spot_types_are_written_one_way_in_frames_and_figures(garage):
    in_frames = set(garage.vehicles["spot_type"].dropna().astype(str))
    in_groups = set(
        garage.occupancy.loc[garage.occupancy["group_kind"] == "spot_type", "group"].astype(str)
    )
    assert in_frames and in_frames <= in_groups
    assert all(t == t.upper() for t in in_groups)
    names = [m for m in garage.metrics.columns if m.startswith("occupancy.spot_type[")]
    assert {n.split("[")[1].split("]")[0] for n in names} == in_groups


def test_data_dictionary_names_every_column_and_is_up_to_date(frames):
    assert datadict.undocumented(frames) == []
    assert datadict.DOC.read_text(encoding="utf-8") == datadict.render(frames), (
        "docs/data_dictionary.md is stale: run python -m twin.datadict"
    )


def test_data_dictionary_notices_an_undocumented_column(frames):
    changed = dict(frames, lanes=frames["lanes"].assign(extra=1))
    problems = datadict.undocumented(changed)
    assert len(problems) == 1 and "extra" in problems[0]
    with pytest.raises(ValueError, match="lanes"):
        datadict.render(changed)


def test_tables_write_spot_types_as_frames_do():
    from twin.figures import label_of

    assert "REGULAR bays" in label_of("occupancy.spot_type[REGULAR].mean")
    assert "HANDICAP bays" in label_of("revenue_per_day.spot_type[HANDICAP]")


# The operations components' frames (issue 9 §6 leftovers): before, `replication` came last,
# `payments_prepay.plate` was float64 when empty, permits/sensors lots were plain strings,
# reservations named spots by index and used -1 for "none".


def test_component_frames_follow_the_main_frames_rules(frames):
    lots = ["Downtown Garage"]
    for name in datadict.COMPONENT_FRAMES:
        frame = frames[name]
        assert frame.columns[0] == "replication", name
        assert frame["replication"].dtype == np.int64, name
        if "lot" in frame:
            assert list(frame["lot"].cat.categories) == lots, name
            assert frame["lot"].notna().all(), name
        for col in ("plate", "spot", "ref", "authorization_id"):
            if col in frame:
                assert pd.api.types.is_string_dtype(frame[col]), (name, col)
        if "driver" in frame:
            assert frame["driver"].dtype in (np.int64, "Int64"), name
            assert not (frame["driver"] < 0).any(), name  # no -1 for "none"
        for col in frame.columns:
            if col.endswith("_cents"):
                assert frame[col].dtype == np.int64, (name, col)
    bookings = frames["reservations_bookings"]
    assert bookings["reservation"].dtype == "Int64"
    assert bookings["reservation"].isna().any() and (bookings["reservation"].dropna() >= 0).all()


def test_component_frames_are_typed_even_when_empty(frames):
    """A run where no plate is blocklisted asks no prepayment: the frame is empty yet typed."""
    prepay = frames["payments_prepay"]
    assert prepay["plate"].dtype != np.float64
    assert pd.api.types.is_string_dtype(prepay["plate"])
    assert prepay["quote_cents"].dtype == np.int64
    assert isinstance(prepay["outcome"].dtype, pd.CategoricalDtype)


def test_component_rows_join_the_vehicles_frame_by_driver_and_spot_id():
    """`driver` is the vehicles frame's `vehicle`; spots are named by the same ids."""
    result = api.run(datadict.OPERATIONS, days=1, replications=1)
    vehicles = result.vehicles.rename(columns={"vehicle": "driver"})
    bills = result.extra_frames["payments_bills"]
    keys = ["replication", "driver"]
    joined = bills.merge(vehicles[[*keys, "leave_s", "spot"]], on=keys, suffixes=("", "_v"))
    assert len(joined) == len(bills) > 100
    np.testing.assert_array_equal(joined["leave_s"], joined["leave_s_v"])
    charging = result.extra_frames["permits_charging"].dropna(subset=["driver"])
    joined = charging.merge(vehicles[[*keys, "spot"]], on=keys, suffixes=("", "_v"))
    assert len(joined) == len(charging) > 10
    assert (joined["spot"] == joined["spot_v"]).all()
    held = result.extra_frames["reservations_bookings"]["spot"].dropna()
    assert len(held) and held.str.fullmatch(r"[A-Z0-9]+-[A-Z]\d{4}").all()


def test_documented_category_values_are_the_frames_categories(frames):
    for (name, col), values in datadict.VALUES.items():
        dtype = frames[name][col].dtype
        if isinstance(dtype, pd.CategoricalDtype) and name != "occupancy":
            assert list(dtype.categories) == [v for v, _ in values], (name, col)
