"""Pricing a stay day by day: operating days, window caps, special days, weekly/monthly caps.

:class:`DayPlan` is the general pricing engine behind :meth:`twin.core.pricing.Tariff.price`
for tariffs that use any feature beyond rate tables, bands and event flats (those keep the
faster path in :mod:`twin.core.pricing`, and a property test holds the two paths to the same
prices). Rules (the module docstring of :mod:`twin.core.pricing` states them all):

* Periods are counted continuously from entry with the entry table's free minutes, grace and
  period length (a validation's free minutes extend the free period). Each started period costs
  the rate of the table in force where it starts and belongs to the *day* in which it starts:
  a 24 h block counted from entry, or an operating day between two day boundaries.
* A period starting inside a window occurrence spends that occurrence's allowance
  (``min(rate, allowance left)``), so the window's periods together cost at most its cap.
* A day's charge is the sum of its periods; the first positive day is raised to the first-period
  minimum, then every day is capped at its daily maximum.
* Days are grouped into months of 30 days from the entry's day and each month into weeks of
  7 days from its start (the fifth "week" of a month is 2 days); each week is capped at the
  weekly maximum, then each month at the monthly maximum.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import date, timedelta

from twin.core.pricing_parts import DAY_S, WEEK_S, RateTable, SpecialDay, WindowCap, paint_week

_NO_WINDOW = -1


class DayPlan:
    """Precomputed tables for day-by-day pricing of one tariff (immutable after construction).

    ``tables`` holds every rate table by index (default, bands, then special-day tables),
    ``band_layers`` the weekly windows of the bands as ``(days, start, end, table index)``.
    ``boundary_to_previous``: an instant exactly on an edge (band, window, operating day,
    event) belongs to what ends there instead of what starts there.
    """

    __slots__ = (
        "caps",
        "ds",
        "ends",
        "monthly",
        "occ_max",
        "off",
        "operating_day",
        "prev",
        "rates",
        "specials",
        "starts",
        "tables",
        "vals",
        "weekly",
    )

    def __init__(
        self,
        *,
        tables: tuple[RateTable, ...],
        caps: tuple[int | None, ...],
        rates: tuple[tuple[int, ...], ...],
        band_layers: list[tuple[frozenset[int], int, int, int]],
        windows: tuple[WindowCap, ...],
        specials: tuple[SpecialDay, ...],
        special_tables: tuple[int, ...],
        epoch: date,
        week_offset_s: float,
        day_start_minute: int | None,
        boundary_to_previous: bool,
        weekly_max_cents: int | None,
        monthly_max_cents: int | None,
    ) -> None:
        self.tables = tables
        self.caps = caps
        self.rates = rates
        # one occurrence id per (window, weekday); the timeline holds (table, occurrence)
        occ_layers = []
        occ_max = []
        for w in windows:
            for day in sorted(w.days):
                occ_layers.append((frozenset((day,)), w.start_minute, w.end_minute, len(occ_max)))
                occ_max.append(w.max_cents)
        bands_s, bands_e, bands_v = paint_week(band_layers, 0)
        occ_s, occ_e, occ_v = paint_week(occ_layers, _NO_WINDOW)
        cuts = sorted(set(bands_s) | set(occ_s))
        self.starts = tuple(cuts)
        self.ends = (*cuts[1:], WEEK_S)
        self.vals = tuple(
            (
                bands_v[bisect_right(bands_s, c) - 1],
                occ_v[bisect_right(occ_s, c) - 1],
            )
            for c in cuts
        )
        del bands_e, occ_e
        self.occ_max = tuple(occ_max)
        self.off = week_offset_s
        self.ds = 0.0 if day_start_minute is None else day_start_minute * 60.0
        self.operating_day = day_start_minute is not None
        self.prev = boundary_to_previous
        # special days by operating-day number (days since the Monday of the epoch's week)
        monday = epoch - timedelta(days=epoch.weekday())
        by_day: dict[int, tuple[int, int]] = {}
        for sp, table in zip(specials, special_tables, strict=True):
            for d in sp.dates:
                n = (d - monday).days
                if n not in by_day:  # the first special day listing a date wins
                    like = -1 if sp.like_weekday is None else sp.like_weekday
                    by_day[n] = (like, table)
        self.specials = by_day
        self.weekly = weekly_max_cents
        self.monthly = monthly_max_cents

    # ------------------------------------------------------------------ where an instant falls

    def day_number(self, t: float, after: bool = False) -> int:
        """Operating day of ``t``: days since the Monday of the epoch's week, from the day start
        (midnight without one). ``after``: of the instant just after ``t`` (what starts there)."""
        u = (t + self.off - self.ds) / DAY_S
        if self.prev and not after:
            return -int(-u // 1) - 1
        return int(u // 1)

    def locate(self, t: float, after: bool = False) -> tuple[int, int, float]:
        """``(table index, window occurrence or -1, end of that state)`` at ``t`` (just after
        ``t`` with ``after``, for the first instant of an operating day)."""
        prev = self.prev and not after
        ws = (t + self.off) % WEEK_S
        specials = self.specials
        if specials:
            n = self.day_number(t, after)
            sp = specials.get(n)
            day_start = n * DAY_S - self.off + self.ds
            if sp is not None:
                like, table = sp
                if table >= 0:
                    return table, _NO_WINDOW, day_start + DAY_S
                ws = (like * DAY_S + self.ds + (t - day_start)) % WEEK_S
        # previous: -1 means ws = 0, which ends the last interval (…, WEEK]
        i = (bisect_left if prev else bisect_right)(self.starts, ws) - 1
        table, occ = self.vals[i]
        end = t + (self.ends[i] - ws) if i >= 0 else t
        if specials and day_start + DAY_S < end:
            end = day_start + DAY_S
        return table, occ, end

    def table_at(self, t: float) -> int:
        return self.locate(t)[0]

    # ------------------------------------------------------------------ pricing

    def day_charges(
        self,
        entry: float,
        d: float,
        et: int,
        free_s: float,
        skip0: bool,
        cap0: int | None,
    ) -> list[int]:
        """Charge of each day the stay touches (before the event flat of day 0, if ``skip0``).

        ``et``: entry table; ``free_s``: free period in seconds (a validation may lengthen it);
        ``cap0``: cap of the entry's day (its table's, or lower for an event cap).
        """
        t = self.tables[et]
        g_s = t.grace_minutes * 60.0
        if t.flat_cents is not None:
            last = self._day_before(entry, entry + d - g_s) if d > g_s else 0
            out = []
            for j in range(last + 1):
                cap = cap0 if j == 0 else self._cap_of(entry, j, et)
                out.append(t.flat_cents if cap is None or t.flat_cents <= cap else cap)
            if skip0:
                out[0] = 0
            return out
        p_s = t.period_minutes * 60.0
        x = d - free_s - g_s
        sums = [0]
        if x > 0:
            self._periods(entry, et, free_s, p_s, int(-(-x // p_s)), sums)
        lifted = skip0
        fmin = t.first_period_min_cents
        for j, b in enumerate(sums):
            if j == 0 and skip0:
                sums[0] = 0
                continue
            if b and not lifted:
                lifted = True
                if b < fmin:
                    b = fmin
            cap = cap0 if j == 0 else self._cap_of(entry, j, et)
            if cap is not None and b > cap:
                b = cap
            sums[j] = b
        return sums

    def _day_of(self, entry: float, t: float) -> int:
        """Day of ``t`` counted from the entry's day (0)."""
        if self.operating_day:
            return self.day_number(t) - self.day_number(entry)
        return int((t - entry) // DAY_S)

    def _day_before(self, entry: float, t: float) -> int:
        """Day of the instant just before ``t`` (a day is started once a stay runs strictly
        past its start, like a period), counted from the entry's day."""
        if self.operating_day:
            u = (t + self.off - self.ds) / DAY_S
            return -int(-u // 1) - 1 - self.day_number(entry)
        return -int(-(t - entry) // DAY_S) - 1

    def _day_end(self, entry: float, j: int) -> float:
        if self.operating_day:
            return (self.day_number(entry) + j + 1) * DAY_S - self.off + self.ds
        return entry + (j + 1) * DAY_S

    def _cap_of(self, entry: float, j: int, et: int) -> int | None:
        """Daily maximum of day ``j >= 1``: the entry table's for 24 h blocks; for operating
        days, that of the table in force as the day starts."""
        if not self.operating_day:
            return self.caps[et]
        return self.caps[self.locate(self._day_end(entry, j - 1), after=True)[0]]

    def _periods(
        self, entry: float, et: int, free_s: float, p_s: float, n: int, sums: list[int]
    ) -> None:
        """Add the started periods' charges to ``sums[day]`` (days appended as reached).

        Walks the stay by stretches of one day and one timeline state (table, window
        occurrence): the ``m`` periods starting in a stretch cost ``m * rate``, or inside a
        window ``min(m * rate, allowance left)`` -- the same as charging them one by one.
        """
        rates = self.rates[et]
        occ_max = self.occ_max
        first = entry + free_s
        j = 0
        day_end = self._day_end(entry, 0)
        # a period exactly on an operating-day edge belongs to the day that ends there
        on_edge_old = self.prev and self.operating_day
        occ = _NO_WINDOW
        occ_left = 0
        occ_first = 0.0
        k = 0
        while k < n:
            s = first + k * p_s
            while s > day_end or (s == day_end and not on_edge_old):
                sums.append(0)
                j += 1
                day_end += DAY_S
            table, oc, end = self.locate(s)
            if day_end < end:
                end = day_end
            k2 = int(-(-(end - first) // p_s))  # first period starting at or after `end`
            if k2 <= k:
                k2 = k + 1  # `end` is `s` itself (an edge that belongs to what ends there)
            elif k2 > n:
                k2 = n
            amount = (k2 - k) * rates[table]
            if oc >= 0:
                if oc != occ or s - occ_first >= DAY_S:
                    occ = oc
                    occ_left = occ_max[oc]
                    occ_first = s
                if amount > occ_left:
                    amount = occ_left
                occ_left -= amount
            else:
                occ = _NO_WINDOW
            sums[j] += amount
            k = k2


def group_caps(days: list[int], weekly: int | None, monthly: int | None) -> int:
    """Sum of day charges with weekly caps (7 days) inside monthly caps (30 days from entry)."""
    if weekly is None and monthly is None:
        return sum(days)
    total = 0
    for m0 in range(0, len(days), 30):
        month = 0
        for w0 in range(m0, min(m0 + 30, len(days)), 7):
            week = sum(days[w0 : min(w0 + 7, m0 + 30)])
            if weekly is not None and week > weekly:
                week = weekly
            month += week
        if monthly is not None and month > monthly:
            month = monthly
        total += month
    return total
