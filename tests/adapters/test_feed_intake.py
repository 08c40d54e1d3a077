"""The feed intake: every bad payload counted by reason and dead-lettered (never fatal,
applied + dead-lettered = received), file replay pacing, foreign exports through a mapping."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from parktwin.adapters.events import EVENT_TYPES, KINDS, SpotReading, parse_json, to_json
from parktwin.adapters.sources import (
    REASONS,
    FileReplay,
    Intake,
    MappedExport,
    Mapping,
    MappingError,
    Raw,
    Tolerances,
)

T0 = datetime(2026, 1, 5, 8, tzinfo=UTC)


def ev(i: int, device: str = "g1", dt: float = 0.0, **extra) -> dict:
    base = {
        "kind": "gate_entry",
        "id": f"e{i}",
        "refDevice": device,
        "dateObserved": (T0 + timedelta(seconds=dt)).isoformat(),
    }
    return {**base, **extra}


def line(d: dict) -> str:
    return json.dumps(d)


def test_schema_round_trip_and_kinds() -> None:
    assert set(KINDS) == {
        "gate_entry",
        "gate_exit",
        "plate_read",
        "spot_reading",
        "heartbeat",
        "counter",
        "payment",
        "reservation",
    }
    assert len(EVENT_TYPES) == len(KINDS)
    reading = parse_json(
        line(ev(1, "s1", kind="spot_reading", spaceId="P1-001", status="occupied"))
    )
    assert isinstance(reading, SpotReading) and reading.status == "occupied"
    assert parse_json(to_json(reading)) == reading


def test_times_are_held_in_utc_whatever_offset_the_payload_wrote() -> None:
    """Every time is validated into datetime.UTC (the same instant), so the intake's and the
    mirror's arithmetic on it never goes through pydantic-core's own zone; a time without a
    zone is still refused."""
    exit_ = ev(
        1,
        kind="gate_exit",
        dateObserved="2026-01-05T13:30:00+05:30",
        actualStart="2026-01-05T03:00:00-05:00",
    )
    event = parse_json(line(exit_))
    assert event.dateObserved == T0 and event.dateObserved.tzinfo is UTC
    assert event.actualStart == T0 and event.actualStart.tzinfo is UTC
    assert parse_json(to_json(event)) == event  # written back as UTC, read back the same
    intake = Intake()
    assert intake.offer(Raw(line(ev(2, dt=60)), T0)) is not None
    assert intake.offer(Raw(line(ev(3, dateObserved="2026-01-05T08:00:00")), T0)) is None
    assert intake.report()["by_reason"] == {"invalid_field": 1}


def test_every_bad_kind_is_counted_and_dead_lettered(tmp_path: Path) -> None:
    dead = tmp_path / "dead.jsonl"
    now = T0 + timedelta(minutes=10)
    intake = Intake(dead_letter=dead, tolerances=Tolerances(out_of_order_s=5, future_s=300))
    feed = [
        (line(ev(1)), None),  # ok
        ("{not json", "malformed_json"),
        ("[1, 2]", "malformed_json"),
        (line({**ev(2), "v": 2}), "unsupported_version"),
        (line({**ev(3), "kind": "teleport"}), "unknown_kind"),
        (line({k: v for k, v in ev(4).items() if k != "refDevice"}), "missing_field"),
        (line(ev(5, kind="spot_reading", spaceId="P1", status="busy")), "invalid_field"),
        (line(ev(6, dateObserved="2026-01-05T08:00:00")), "invalid_field"),  # no zone
        (line(ev(1)), "duplicate"),
        (line(ev(7, dt=3600)), "future_timestamp"),
        (line(ev(8, dt=-60)), "out_of_order"),  # g1 already at T0
        (line(ev(9, dt=-3)), None),  # within the 5 s tolerance
        (line(ev(10, device="g2", dt=-120)), None),  # another device: any order
    ]
    got = [intake.offer(Raw(p, now, f"t:{i}")) for i, (p, _) in enumerate(feed)]
    assert [g is not None for g in got] == [want is None for _, want in feed]
    report = intake.report()
    assert report["received"] == len(feed)
    assert report["applied"] + report["dead_lettered"] == report["received"]
    expected: dict[str, int] = {}
    for _, want in feed:
        if want:
            expected[want] = expected.get(want, 0) + 1
    assert report["by_reason"] == expected
    letters = [json.loads(x) for x in dead.read_text().splitlines()]
    assert [x["reason"] for x in letters] == [w for _, w in feed if w]
    assert letters[0]["raw"] == "{not json" and letters[0]["where"] == "t:1"
    assert all(x["detail"] for x in letters)


def test_clock_skew_between_devices() -> None:
    """A device whose clock runs 20 min behind the others is set aside on its live events;
    its buffered uploads (after an outage) are not judged by latency."""
    intake = Intake(tolerances=Tolerances(skew_s=300))
    for k in range(5):
        received = T0 + timedelta(minutes=k)
        for d in ("a", "b", "c"):
            assert intake.offer(Raw(line(ev(k * 10 + ord(d), d, dt=k * 60 - 1)), received))
    late = Raw(line(ev(999, "slow", dt=4 * 60 - 1200)), T0 + timedelta(minutes=4))
    assert intake.offer(late) is None
    assert intake.dead["clock_skew"] == 1
    buffered = Raw(line(ev(998, "gate9", dt=-3600, buffered=True)), T0 + timedelta(minutes=4))
    assert intake.offer(buffered) is not None


def test_replay_at_speed_waits_on_an_injected_clock(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    path.write_text("\n".join(line(ev(i, dt=60 * i)) for i in range(4)) + "\n")
    now = [0.0]
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        now[0] += s

    events = list(Intake().events(FileReplay(path, speed=60, clock=lambda: now[0], sleep=sleep)))
    assert [e.id for e in events] == ["e0", "e1", "e2", "e3"]
    assert waits == pytest.approx([1.0, 1.0, 1.0])  # a minute of feed per second at ×60
    fast = list(Intake().events(FileReplay(path)))
    assert len(fast) == 4


def test_csv_replay_uses_schema_columns(tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    path.write_text(
        "kind,id,refDevice,dateObserved,spaceId,status\n"
        "spot_reading,r1,s1,2026-01-05T08:00:00+00:00,P1-001,occupied\n"
        "spot_reading,r2,s1,2026-01-05T08:05:00+00:00,P1-001,vanished\n"
    )
    intake = Intake()
    assert [e.id for e in intake.events(FileReplay(path))] == ["r1"]
    assert intake.report()["by_reason"] == {"invalid_field": 1}


def test_a_byte_order_mark_does_not_cost_the_first_event(tmp_path: Path) -> None:
    """Windows tools begin UTF-8 files with a BOM: it used to dead-letter a JSONL feed's first
    line as malformed JSON and every row of a CSV (its first column read as '\\ufeffkind')."""
    bom = "\ufeff"
    jsonl = tmp_path / "feed.jsonl"
    jsonl.write_text(bom + "\n".join(line(ev(i, dt=60 * i)) for i in range(3)) + "\n")
    intake = Intake()
    assert [e.id for e in intake.events(FileReplay(jsonl))] == ["e0", "e1", "e2"]
    assert intake.report()["dead_lettered"] == 0
    table = tmp_path / "feed.csv"
    table.write_text(
        bom + "kind,id,refDevice,dateObserved,spaceId,status\n"
        "spot_reading,r1,s1,2026-01-05T08:00:00+00:00,P1-001,occupied\n",
        encoding="utf-8",
    )
    assert [e.id for e in Intake().events(FileReplay(table))] == ["r1"]


EXPORT = """Ticket No;Car Park;Registration;Entry Time;Exit Time;Amount Paid
A100;Central;AB12CDE;05/01/2026 08:03;05/01/2026 17:45;12,50
A101;Central;;05/01/2026 08:10;05/01/2026 09:02;3,00
A102;Central;XY99ZZZ;05/01/2026 08:15;;
A103;Central;;yesterday;05/01/2026 10:00;1,00
"""


def test_foreign_export_through_a_mapping(tmp_path: Path) -> None:
    export = tmp_path / "tickets.csv"
    export.write_text(EXPORT, encoding="utf-8")
    mapping = Mapping.of(
        {
            "delimiter": ";",
            "time_format": "%d/%m/%Y %H:%M",
            "timezone": "Europe/London",
            "decimal": ",",
            "currency": "GBP",
            "columns": {
                "ticket": "Ticket No",
                "lot": "Car Park",
                "plate": "Registration",
                "entry": "Entry Time",
                "exit": "Exit Time",
                "paid": "Amount Paid",
            },
        }
    )
    intake = Intake()
    events = list(intake.events(MappedExport(export, mapping)))
    kinds = [(e.kind, e.id) for e in events]
    # Sorted by observed time: the 09:02 exit comes before the 17:45 one.
    assert kinds == [
        ("gate_entry", "A100:entry"),
        ("gate_entry", "A101:entry"),
        ("gate_entry", "A102:entry"),
        ("payment", "A101:payment"),
        ("gate_exit", "A101:exit"),
        ("payment", "A100:payment"),
        ("gate_exit", "A100:exit"),
    ]
    pay = next(e for e in events if e.id == "A100:payment")
    assert pay.value == 12.5 and pay.currency == "GBP" and pay.refParkingSite == "Central"
    assert events[0].identifiedVehicle == "AB12CDE"
    assert events[0].dateObserved == datetime(2026, 1, 5, 8, 3, tzinfo=UTC)  # GMT in January
    # The unreadable row is dead-lettered with its row, not fatal.
    assert intake.report()["by_reason"] == {"unknown_kind": 1}


def test_mapping_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match=r"columns\.entry is required"):
        Mapping.of({"columns": {"ticket": "T"}})
    with pytest.raises(MappingError, match="timezone 'Mars/Base'"):
        Mapping.of({"columns": {"ticket": "T", "entry": "E"}, "timezone": "Mars/Base"})
    export = tmp_path / "x.csv"
    export.write_text("T,E\n1,2026-01-05T08:00\n")
    with pytest.raises(MappingError, match="column 'Exit' named by the mapping"):
        list(
            MappedExport(
                export, Mapping.of({"columns": {"ticket": "T", "entry": "E", "exit": "Exit"}})
            )
        )


def test_reasons_are_documented() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "feed_events.md"
    text = doc.read_text(encoding="utf-8")
    for reason in REASONS:
        assert f"`{reason}`" in text


def test_adapters_do_not_depend_on_the_simulator() -> None:
    """House rule: adapters/ depend on core and the event schema, never on the simulator
    (a gate controller or the mirror imports them without SimPy or the model)."""
    import ast

    root = Path(__file__).resolve().parents[2] / "adapters"
    bad = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.startswith(
                    ("twin.sim", "twin.api", "twin.experiments", "simpy", "twin.live")
                ):
                    bad.append(f"{path.relative_to(root.parent)}:{node.lineno} {name}")
    assert not bad, bad


def test_snapshot_and_restore_keep_dedupe_and_order_state() -> None:
    feed = [line(ev(i, f"g{i % 2}", dt=10 * i)) for i in range(10)]
    whole = Intake()
    accepted = [e.id for e in whole.events(Raw(p) for p in feed + feed[3:5])]
    first = Intake()
    list(first.events(Raw(p) for p in feed[:6]))
    snap = json.loads(json.dumps(first.snapshot()))  # survives JSON
    resumed = Intake().restore(snap)
    tail = [e.id for e in resumed.events(Raw(p) for p in feed[6:] + feed[3:5])]
    assert accepted == [f"e{i}" for i in range(10)]
    assert tail == [f"e{i}" for i in range(6, 10)]
    assert resumed.report() == whole.report()
    late = Raw(line(ev(99, "g0", dt=0)))  # g0 is at 80 s: out of order after the restore too
    assert resumed.offer(late) is None and resumed.dead["out_of_order"] == 1
