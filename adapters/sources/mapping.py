"""Foreign ticket exports (a garage's CSV with its own column names and time formats) turned
into gate entry, gate exit and payment events through a small YAML mapping.

Why a mapping and not code per vendor: every export has entry, exit, amount paid and lot in
some columns with some time format; naming them is all an operator should have to do::

    # ticket_export.mapping.yaml
    delimiter: ";"
    time_format: "%d/%m/%Y %H:%M"   # strptime; or "iso" (the default)
    timezone: "Europe/London"      # zone of naive times (default UTC)
    decimal: ","                   # decimal mark of amounts (default ".")
    site: downtown                 # the lot, when the export has no lot column
    columns:
      ticket: "Ticket No"          # required: makes the event ids (ticket:entry, ...)
      entry: "Entry Time"          # required
      exit: "Exit Time"            # optional per row: empty = still parked
      paid: "Amount Paid"          # optional: a payment event at the exit time
      lot: "Car Park"              # optional (else `site`)
      plate: "Registration"        # optional
      spot: "Bay"                  # optional
    devices: {entry: gate-in, exit: gate-out, payment: pay-station}

A row whose cells cannot be read (a bad time or amount) becomes one payload that the intake
dead-letters with its file row, never a crash. Events are yielded in observed-time order (an
export is sorted by entry; its exits are not), so the devices' order checks hold.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from .base import Raw


class MappingError(ValueError):
    """The mapping file itself is wrong: one line naming the file, key and what is allowed."""


_REQUIRED = ("ticket", "entry")
_OPTIONAL = ("exit", "paid", "lot", "plate", "spot")
_KEYS = {
    "delimiter",
    "time_format",
    "timezone",
    "decimal",
    "site",
    "columns",
    "devices",
    "currency",
}


@dataclass(frozen=True)
class Mapping:
    """A checked mapping: which column holds what, and how to read times and amounts."""

    columns: dict[str, str]
    delimiter: str = ","
    time_format: str = "iso"
    zone: tzinfo = UTC
    decimal: str = "."
    site: str | None = None
    currency: str = "USD"
    devices: tuple[str, str, str] = ("gate-in", "gate-out", "pay-station")

    @classmethod
    def load(cls, path: Path | str) -> Mapping:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise MappingError(
                f"{path}: cannot read the mapping ({exc.__class__.__name__})"
            ) from None
        return cls.of(data, str(path))

    @classmethod
    def of(cls, data: Any, where: str = "mapping") -> Mapping:
        if not isinstance(data, dict):
            raise MappingError(f"{where}: expected a mapping with a 'columns' key")
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise MappingError(
                f"{where}: unknown key '{unknown[0]}'; allowed: {', '.join(sorted(_KEYS))}"
            )
        cols = data.get("columns")
        if not isinstance(cols, dict):
            raise MappingError(
                f"{where}: 'columns' must map {', '.join(_REQUIRED)} (and optionally "
                f"{', '.join(_OPTIONAL)}) to column names"
            )
        for key in _REQUIRED:
            if not isinstance(cols.get(key), str):
                raise MappingError(f"{where}: columns.{key} is required (the export's column name)")
        bad = sorted(set(cols) - set(_REQUIRED) - set(_OPTIONAL))
        if bad:
            raise MappingError(
                f"{where}: columns.{bad[0]} is not known; "
                f"allowed: {', '.join(_REQUIRED + _OPTIONAL)}"
            )
        zone: tzinfo = UTC
        if data.get("timezone"):
            try:
                zone = ZoneInfo(str(data["timezone"]))
            except (ZoneInfoNotFoundError, ValueError):
                raise MappingError(
                    f"{where}: timezone '{data['timezone']}' is not an IANA zone name"
                ) from None
        fmt = str(data.get("time_format", "iso"))
        if fmt != "iso" and "%" not in fmt:
            raise MappingError(
                f"{where}: time_format must be 'iso' or a strptime format like '%d/%m/%Y %H:%M'"
            )
        dev = data.get("devices") or {}
        if not isinstance(dev, dict):
            raise MappingError(f"{where}: devices must map entry, exit, payment to device ids")
        return cls(
            columns={k: str(v) for k, v in cols.items()},
            delimiter=str(data.get("delimiter", ",")),
            time_format=fmt,
            zone=zone,
            decimal=str(data.get("decimal", ".")),
            site=None if data.get("site") is None else str(data["site"]),
            currency=str(data.get("currency", "USD")),
            devices=(
                str(dev.get("entry", "gate-in")),
                str(dev.get("exit", "gate-out")),
                str(dev.get("payment", "pay-station")),
            ),
        )

    def time(self, text: str) -> datetime:
        t = (
            datetime.fromisoformat(text)
            if self.time_format == "iso"
            else datetime.strptime(text, self.time_format)
        )
        return t if t.tzinfo is not None else t.replace(tzinfo=self.zone)

    def amount(self, text: str) -> float:
        cleaned = text.strip().replace(" ", "")
        if self.decimal != ".":
            cleaned = cleaned.replace(".", "").replace(self.decimal, ".")
        else:
            cleaned = cleaned.replace(",", "")
        return float(cleaned.lstrip("$€£"))


@dataclass
class MappedExport:
    """Raw entry/exit/payment payloads from a foreign export read through a ``Mapping``."""

    path: Path
    mapping: Mapping

    def __iter__(self) -> Iterator[Raw]:
        path = Path(self.path)
        m = self.mapping
        c = m.columns
        out: list[tuple[datetime, int, Raw]] = []
        bad: list[Raw] = []
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f, delimiter=m.delimiter)
            missing = [
                c[k] for k in c if reader.fieldnames is None or c[k] not in reader.fieldnames
            ]
            if missing:
                raise MappingError(
                    f"{path}: column '{missing[0]}' named by the mapping is not in the export "
                    f"(columns: {', '.join(reader.fieldnames or [])})"
                )
            for n, row in enumerate(reader, 2):
                where = f"{path.name}:{n}"
                try:
                    out.extend(self._events(row, where, n))
                except (ValueError, TypeError) as exc:
                    # A row we cannot read goes to the intake as it is: it fails the schema
                    # (no kind) and is dead-lettered with its row, counted like any other.
                    bad.append(Raw({"row": row, "error": str(exc)}, None, where))
        out.sort(key=lambda e: (e[0], e[1]))
        yield from bad
        for _, _, raw in out:
            yield raw

    def _events(self, row: dict[str, str], where: str, n: int) -> list[tuple[datetime, int, Raw]]:
        m = self.mapping
        c = m.columns
        ticket = (row.get(c["ticket"]) or "").strip()
        if not ticket:
            raise ValueError(f"empty {c['ticket']}")
        site = (row.get(c["lot"]) or "").strip() if "lot" in c else m.site
        plate = (row.get(c["plate"]) or "").strip() or None if "plate" in c else None
        spot = (row.get(c["spot"]) or "").strip() or None if "spot" in c else None
        entry = m.time((row.get(c["entry"]) or "").strip())
        common: dict[str, Any] = {"refParkingSite": site or None}
        if plate:
            common["identifiedVehicle"] = plate
        if spot:
            common["spaceId"] = spot
        events = [
            (
                entry,
                0,
                Raw(
                    {
                        "kind": "gate_entry",
                        "id": f"{ticket}:entry",
                        "refDevice": m.devices[0],
                        "dateObserved": entry.isoformat(),
                        "sessionId": ticket,
                        **common,
                    },
                    None,
                    where,
                ),
            )
        ]
        exit_text = (row.get(c["exit"]) or "").strip() if "exit" in c else ""
        if exit_text:
            leave = m.time(exit_text)
            events.append(
                (
                    leave,
                    2,
                    Raw(
                        {
                            "kind": "gate_exit",
                            "id": f"{ticket}:exit",
                            "refDevice": m.devices[1],
                            "dateObserved": leave.isoformat(),
                            "sessionId": ticket,
                            "actualStart": entry.isoformat(),
                            **common,
                        },
                        None,
                        where,
                    ),
                )
            )
            paid_text = (row.get(c["paid"]) or "").strip() if "paid" in c else ""
            if paid_text:
                pay: dict[str, Any] = {
                    "kind": "payment",
                    "id": f"{ticket}:payment",
                    "refDevice": m.devices[2],
                    "dateObserved": leave.isoformat(),
                    "transactionID": f"{ticket}:payment",
                    "value": m.amount(paid_text),
                    "currency": m.currency,
                    "status": "ok",
                    "sessionId": ticket,
                    "refParkingSite": site or None,
                }
                events.append((leave, 1, Raw(pay, None, where)))
        return events


__all__ = ["MappedExport", "Mapping", "MappingError"]
