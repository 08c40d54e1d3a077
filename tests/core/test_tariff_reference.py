"""Every receipt in docs/tariff_reference.md is priced by the engine from the YAML above it.

A receipts table is a Markdown table whose header starts with ``| Stay``; it belongs to the
nearest ```` ```yaml ```` block before it. The Stay cell is a duration from Monday 5 January
2026 10:00 (``3 h 10 min``, ``2 days 4 h``) or an interval ``Mon 08:50–11:10``,
``Fri 20:00–Sat 01:00``, ``Sat 14 Mar 17:30–22:30`` (day names without a date are in the week
of Monday 5 January 2026; an end without a day is on the start's day, or the next if earlier);
``same stay`` repeats the row above. Trailing parentheses say what the driver holds:
``(50 %)`` occupancy at entry, ``(prepaid)`` the event product, ``(lane 2)`` served at entry
lane 2 and buying the event product if that lane sells it (decided by the engine's
``Tariff.products_for``), ``(cinema)`` a validation by name. The Price cell's first ``$``
amount is the receipt.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from twin.core.clock import Calendar
from twin.core.pricing import PriceContext
from twin.scenario.tariff import TariffSpec

DOC = Path(__file__).resolve().parents[2] / "docs" / "tariff_reference.md"
EPOCH = datetime(2026, 1, 5)  # a Monday: the calendar of every example
DEFAULT_ENTRY = EPOCH + timedelta(hours=10)
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAY = "|".join(DAYS)
_MON = "|".join(MONTHS)


def _instant(tag: str) -> str:
    return (
        rf"(?:(?P<d{tag}>{_DAY})(?: (?P<dd{tag}>\d{{1,2}}) (?P<mm{tag}>{_MON}))? )?"
        rf"(?P<t{tag}>\d{{1,2}}:\d{{2}}(?::\d{{2}})?)"
    )


INTERVAL = re.compile(rf"^{_instant('a')}\s*[–-]\s*{_instant('b')}$")
DURATION = re.compile(r"^(?:(\d+) days?)?\s*(?:(\d+) h)?\s*(?:(\d+) min)?$")
PRICE = re.compile(r"\$([\d,]+\.\d\d)")


def _clock(text: str) -> timedelta:
    parts = [int(x) for x in text.split(":")] + [0]
    return timedelta(hours=parts[0], minutes=parts[1], seconds=parts[2])


def _day(m: re.Match, tag: str, fallback: datetime | None) -> datetime:
    name, dd, mm = m.group(f"d{tag}"), m.group(f"dd{tag}"), m.group(f"mm{tag}")
    if name is None:
        if fallback is None:
            raise ValueError("the start of an interval needs a day name")
        return fallback
    if dd is not None:
        day = datetime(2026, MONTHS.index(mm) + 1, int(dd))
        assert DAYS[day.weekday()] == name, f"{dd} {mm} 2026 is not a {name}"
        return day
    return EPOCH + timedelta(days=DAYS.index(name))


def parse_stay(text: str) -> tuple[datetime, datetime]:
    m = INTERVAL.match(text)
    if m:
        start_day = _day(m, "a", None)
        start = start_day + _clock(m.group("ta"))
        end = _day(m, "b", start_day) + _clock(m.group("tb"))
        if m.group("db") is None and end <= start:
            end += timedelta(days=1)
        return start, end
    m = DURATION.match(text)
    if m and any(m.groups()):
        days, hours, minutes = (int(x or 0) for x in m.groups())
        return DEFAULT_ENTRY, DEFAULT_ENTRY + timedelta(days=days, hours=hours, minutes=minutes)
    raise ValueError(f"cannot read the stay {text!r}")


def receipts(text: str) -> list[tuple[int, str, str, str]]:
    """``(line, yaml, stay cell, price cell)`` for every receipt row of the document."""
    out = []
    lines = text.splitlines()
    yaml_text = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == "```yaml":
            j = lines.index("```", i + 1)
            yaml_text = "\n".join(lines[i + 1 : j])
            i = j
        elif line.startswith("| Stay"):
            i += 2  # header and separator
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip("|").split("|")]
                out.append((i + 1, yaml_text, cells[0], cells[1]))
                i += 1
            continue
        i += 1
    return out


def price_row(yaml_text: str, stay: str, previous: tuple | None) -> tuple[int, tuple]:
    """Cents for one Stay cell, and the (entry, exit) it used (for a following "same stay")."""
    spec = TariffSpec.model_validate(yaml.safe_load(yaml_text)["tariff"])
    tariff = spec.build(Calendar(epoch=EPOCH))
    holds = []
    while (m := re.search(r"\s*\(([^()]*)\)$", stay)) is not None:
        holds = [h.strip() for h in m.group(1).split(",")] + holds
        stay = stay[: m.start()].strip()
    if stay == "same stay":
        assert previous is not None, "'same stay' needs a row above"
        entry, exit_ = previous
    else:
        entry, exit_ = parse_stay(stay)
    occupancy, prepaid, validation = 0.0, False, None
    names = [v.name for v in spec.validations]
    cal = Calendar(epoch=EPOCH)
    for h in holds:
        if h.endswith("%"):
            occupancy = float(h.rstrip("% ")) / 100
        elif h == "prepaid":
            prepaid = True
        elif (lane := re.fullmatch(r"lane (\d+)", h)) is not None:
            held = tariff.products_for(cal.to_seconds(entry), 0.0, 1.0, int(lane.group(1)))
            prepaid = prepaid or held.prepaid
        elif h in names:
            validation = names.index(h)
        else:
            raise ValueError(f"unknown note ({h}) on a stay")
    ctx = PriceContext(occupancy, prepaid=prepaid, validation=validation)
    cents = tariff.price(cal.to_seconds(entry), cal.to_seconds(exit_), ctx)
    return cents, (entry, exit_)


ROWS = receipts(DOC.read_text(encoding="utf-8"))


def test_the_reference_has_receipts_for_every_feature():
    assert len(ROWS) >= 60
    text = DOC.read_text(encoding="utf-8")
    for key in (
        "day_starts",
        "windows",
        "at_boundary",
        "prepaid",
        "lanes: [",
        "special_days",
        "weekly_max",
        "validations",
        "daily_max_per",
    ):
        assert f"{key}" in text


def test_every_receipt_prices_as_documented():
    previous = None
    wrong = []
    for line, yaml_text, stay, price in ROWS:
        assert yaml_text is not None, f"line {line}: a receipts table without YAML above it"
        m = PRICE.search(price)
        assert m, f"line {line}: no $ amount in {price!r}"
        expected = int(Decimal(m.group(1).replace(",", "")) * 100)
        cents, previous = price_row(yaml_text, stay, previous)
        if cents != expected:
            wrong.append(f"line {line}: {stay} costs ${cents / 100:.2f}, the doc says {price}")
    assert not wrong, "\n".join(wrong)


def test_the_city_ramp_sign_takes_at_most_ten_lines():
    text = DOC.read_text(encoding="utf-8")
    start = text.index("<!-- the sign -->")
    block = text[text.index("```yaml", start) + len("```yaml") : text.index("```\n", start + 20)]
    lines = [ln for ln in block.strip().splitlines() if ln.strip()]
    assert lines[0] == "tariff:" and len(lines) - 1 <= 10


@pytest.mark.parametrize(
    ("text", "hours"),
    [
        ("Mon 08:50–11:10", 2 + 20 / 60),
        ("Fri 20:00–Sat 01:00", 5),
        ("Mon 23:00–01:00", 2),
        ("3 h 10 min", 3 + 10 / 60),
        ("2 days", 48),
        ("Sat 14 Mar 17:30–22:30", 5),
    ],
)
def test_stay_cells_are_read_as_written(text, hours):
    entry, exit_ = parse_stay(text)
    assert (exit_ - entry).total_seconds() == pytest.approx(hours * 3600)
