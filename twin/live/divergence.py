"""Where reality leaves the model: actual against predicted, and the alerts it raises.

The *prediction* is the model's own week: replications of the lot's scenario, binned by time
of week (15 min), give per bin the expected arrivals at the entry barrier and gate entries
with their spread, each level's occupancy (mean and spread) and the revenue paid at the exits
(mean and second moment). The *actual* is the mirror's fold (``twin.live.mirror``), sampled
on every clock tick. Each detector's threshold is the lowest that keeps its alarms on the
model's own replications (leave-one-out: a replication against the mean of the others) within
a budget of alarms per day (``twin.live.divergence_null``), so the issue's "< 1 false alarm a
day" is a setting, not a hope; benchmarks/bench_divergence.py measures it on emitted feeds.

* ``arrival_surge`` / ``arrival_drop``: a Poisson CUSUM (Page) of arrivals per tick against
  the model's expected arrivals for that time of week, for a rate ratio of ``surge_ratio``
  (and ``drop_ratio``), scaled by the replications' overdispersion. The CUSUM is the quickest
  detector of a sustained rate change for a given false-alarm rate. Arrivals are the entrance
  camera's plate reads when the feed has them (every car reaching the barrier: demand), else
  gate entries (which a full lot caps: a surge that fills the lot then looks like a drop).
  The ratio is chosen on the model, not on a feed: of 1.2-1.6, 1.4 is within a point of
  the most simulated +50 % surges caught within 45 min at the budget, over all weekday
  hours and over the busy ones (benchmarks/divergence_design.py; README, operator's tour).
* ``revenue``: the money paid at the exits over the last ``revenue_window_s`` against the
  model's band for that window (mean ± ``band`` sd, the sd of a compound Poisson sum: the
  replications' second moment of payments, times their overdispersion), out of the band for
  ``revenue_sustain_s``; the band is calibrated to ``revenue_per_day``. A payment outage
  shows in it (money stops), and a surge (its cars pay when they leave, hours later).
* ``payment_outage``: failed payments (declined or offline) in the last ``payment_window_s``
  against the feed's own failure rate so far (binomial tail, ``scipy.stats.binom``).
* ``occupancy``: a level's occupancy outside the model's band (mean ± ``band_z`` sd, the sd
  floored at ``band_floor`` of the level) for ``sustain_s``.
* ``counter_vs_sensors``: a level's counter occupancy and its trusted sensors disagree by more
  than ``disagree_spots`` for ``sustain_s``; ``counter_vs_gates`` the same for the site
  counter against the sessions opened and closed at the gates (a counter missing cars).

Sensor faults on single bays (a sensor stuck, a dead one) are caught by the mirror itself,
which has the bays: ``dead_sensor`` and ``sensor_vs_gate`` alerts.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from numbers import Integral
from typing import TYPE_CHECKING, Any

import numpy as np

from twin.core.clock import Calendar
from twin.live.divergence_null import (
    CUSUM_GRID,
    Replicas,
    band_threshold,
    cusum_threshold,
    leave_one_out,
    poisson_llr,
    revenue_z,
    rolling,
)
from twin.live.divergence_score import CATCHES, LASTING, SHOWS_FOR_S, Score, score

if TYPE_CHECKING:
    from twin.live.mirror import Fold
    from twin.scenario.model import Scenario

#: Width of a prediction bin (seconds); the week has WEEK_BINS of them.
BIN_S = 900.0
DAY_S = 86_400.0
WEEK_BINS = int(7 * 86_400 / BIN_S)


@dataclass
class Prediction:
    """The model's week, binned by time of week: what the mirror's actual is compared with."""

    calendar: Calendar
    level_names: list[str]
    #: expected gate entries per bin, and their variance across replications
    entries_mean: np.ndarray
    entries_var: np.ndarray
    #: (levels, bins) occupied spots: mean and sd
    occ_mean: np.ndarray
    occ_sd: np.ndarray
    #: revenue paid at exits per bin (currency units), mean
    revenue_mean: np.ndarray
    capacity: list[int]
    replications: int
    #: expected arrivals at the entry barrier (plate reads) per bin, and their variance
    arrivals_mean: np.ndarray | None = None
    arrivals_var: np.ndarray | None = None
    #: revenue per bin: mean of the sum of squared payments (a compound Poisson variance),
    #: and the variance across replications
    revenue_m2: np.ndarray | None = None
    revenue_var: np.ndarray | None = None
    #: the replications' event times, for calibrating thresholds (``divergence_null``)
    replicas: Replicas | None = None
    #: thresholds calibrated so far, by what they depend on (shared by every checkpoint)
    calibrated: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    def mean_of(self, source: str) -> np.ndarray:
        """Expected count per bin of "arrivals" (plate reads) or "entries" (gate entries)."""
        if source == "arrivals" and self.arrivals_mean is not None:
            return self.arrivals_mean
        return self.entries_mean

    def dispersion_of(self, source: str) -> float:
        """Overdispersion of ``source`` per bin across replications (variance / mean, >= 1),
        pooled over the bins with traffic: one factor for the lot, because a bin's own
        variance from a few replications is too noisy to scale a detector by."""
        key = ("dispersion", source)
        if key not in self.calibrated:
            if source == "arrivals" and self.arrivals_mean is not None:
                mean, var = self.arrivals_mean, self.arrivals_var
            else:
                mean, var = self.entries_mean, self.entries_var
            busy = mean >= 1.0
            if self.replications < 2 or var is None or not busy.any():
                self.calibrated[key] = 1.0
            else:
                self.calibrated[key] = max(1.0, float(var[busy].sum() / mean[busy].sum()))
        return self.calibrated[key]

    @property
    def dispersion(self) -> float:
        """Overdispersion of gate entries (:meth:`dispersion_of`)."""
        return self.dispersion_of("entries")

    @property
    def revenue_dispersion(self) -> float:
        """Variance of revenue per bin across replications over its compound Poisson variance
        (sum of squared payments), pooled over bins with revenue; >= 1."""
        if "revenue_dispersion" not in self.calibrated:
            phi = 1.0
            if self.revenue_m2 is not None and self.revenue_var is not None:
                busy = self.revenue_m2 > 0
                if self.replications > 1 and busy.any():
                    phi = float(self.revenue_var[busy].sum() / self.revenue_m2[busy].sum())
            self.calibrated["revenue_dispersion"] = max(1.0, phi)
        return self.calibrated["revenue_dispersion"]

    @property
    def payment_m2(self) -> float:
        """Mean squared payment: the variance floor of a revenue window (one payment)."""
        if "payment_m2" not in self.calibrated:
            if self.replicas is None or not any(len(a) for a in self.replicas.amounts):
                self.calibrated["payment_m2"] = 1.0
            else:
                paid = np.concatenate(self.replicas.amounts)
                self.calibrated["payment_m2"] = max(float(np.mean(paid * paid)), 1e-6)
        return self.calibrated["payment_m2"]

    def bin(self, t: float) -> int:
        return int(self.calendar.week_seconds(t) // BIN_S) % WEEK_BINS

    def bins_of(self, times: np.ndarray) -> np.ndarray:
        """Week bin of each core time (vectorized :meth:`bin`)."""
        week = (np.asarray(times, dtype=float) + self.calendar.week_seconds(0.0)) % (7 * DAY_S)
        return (week // BIN_S).astype(int) % WEEK_BINS

    # -- thresholds from the model's replications (twin.live.divergence_null) -------------
    def null_series(self, kind: str, tick_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per replication of ``replicas`` and tick: ``kind``'s count (or revenue) and its
        expected value from as many *other* replications as the prediction has (their mean for
        the tick's week bin: a live feed's noise and the prediction's); and the tick starts."""
        assert self.replicas is not None
        key = ("null", kind, tick_s)
        if key not in self.calibrated:
            per_tick, starts = self.replicas.per_tick(kind, tick_s)
            bins = self.bins_of(starts + tick_s / 2)
            per_bin = np.stack(
                [np.bincount(bins, weights=row, minlength=WEEK_BINS) for row in per_tick]
            )
            ticks = np.maximum(np.bincount(bins, minlength=WEEK_BINS), 1)
            expected = leave_one_out(per_bin / ticks, self.replications)[:, bins]
            self.calibrated[key] = (per_tick, expected, starts)
        return self.calibrated[key]

    def arrival_thresholds(
        self, cfg: DivergenceConfig, tick_s: float, source: str
    ) -> tuple[float, float, float, float]:
        """(surge h, drop h, surge alarms/day, drop alarms/day) of the arrivals CUSUMs on the
        replications, for ``source`` ("arrivals" or "entries"); the config's fixed values
        when it sets them or there are no replicas."""
        key = (
            "cusum",
            source,
            tick_s,
            cfg.surge_ratio,
            cfg.drop_ratio,
            cfg.surge_per_day,
            cfg.drop_per_day,
            cfg.cusum_clear_s,
            cfg.cusum_h,
            cfg.cusum_drop_h,
        )
        if key in self.calibrated:
            return self.calibrated[key]
        if self.replicas is None or self.replicas.replications < 2:
            found = (cfg.cusum_h or 6.0, cfg.cusum_drop_h or 12.0, math.nan, math.nan)
        else:
            counts, expected, _ = self.null_series(source, tick_s)
            phi = self.dispersion_of(source)
            up = cusum_threshold(
                counts, expected, cfg.surge_ratio, phi, cfg.surge_per_day, tick_s, cfg.cusum_clear_s
            )
            down = cusum_threshold(
                counts, expected, cfg.drop_ratio, phi, cfg.drop_per_day, tick_s, cfg.cusum_clear_s
            )
            found = (up[0], down[0], up[1], down[1])
        if cfg.cusum_h is not None:
            found = (cfg.cusum_h, found[1], math.nan, found[3])
        if cfg.cusum_drop_h is not None:
            found = (found[0], cfg.cusum_drop_h, found[2], math.nan)
        self.calibrated[key] = found
        return found

    def revenue_expected(self, t: np.ndarray | float, tick_s: float) -> tuple[Any, Any]:
        """Expected revenue and its compound Poisson variance in the tick ending at ``t``."""
        b = self.bin(float(t) - tick_s / 2) if np.ndim(t) == 0 else self.bins_of(t - tick_s / 2)
        m2 = self.revenue_m2 if self.revenue_m2 is not None else self.revenue_mean
        return self.revenue_mean[b] * (tick_s / BIN_S), m2[b] * (tick_s / BIN_S)

    def revenue_band(self, cfg: DivergenceConfig, tick_s: float) -> tuple[float, float]:
        """(band in sd, alarms/day on the replications) of the revenue detector."""
        key = (
            "revenue",
            tick_s,
            cfg.revenue_window_s,
            cfg.revenue_sustain_s,
            cfg.revenue_per_day,
            cfg.revenue_band,
        )
        if key in self.calibrated:
            return self.calibrated[key]
        if cfg.revenue_band is not None or self.replicas is None or self.replicas.replications < 2:
            found = (cfg.revenue_band or 4.0, math.nan)
        else:
            paid, expected, starts = self.null_series("revenue", tick_s)
            _, m2 = self.revenue_expected(np.asarray(starts + tick_s), tick_s)
            window = max(1, round(cfg.revenue_window_s / tick_s))
            z = revenue_z(
                rolling(paid, window),
                rolling(expected, window),
                rolling(m2, window),
                self.revenue_dispersion,
                self.payment_m2,
            )
            found = band_threshold(z, cfg.revenue_per_day, tick_s, cfg.revenue_sustain_s)
        self.calibrated[key] = found
        return found

    @classmethod
    def from_scenario(
        cls,
        scenario: Scenario,
        replications: int = 10,
        seed: int | None = None,
        null_replications: int | None = None,
    ) -> Prediction:
        """Run the scenario ``replications`` times and bin its weeks (after warm-up).

        Thresholds are calibrated on ``null_replications`` (default: the same ones; more
        make the calibration of a budget of a few alarms a day less noisy: at 0.2 a day,
        20 replications of a week hold only ~28 alarms to set it by)."""
        from twin.experiments import run  # not twin.api, which imports this module
        from twin.sim.build import calendar_for

        problem = null_replications_problem(replications, null_replications)
        if problem is not None:
            raise ValueError(problem)
        total = max(replications, null_replications or 0)
        result = run(scenario, replications=total, seed=seed, frames=("vehicles", "occupancy"))
        return cls.from_frames(
            result.vehicles,
            result.occupancy,
            calendar_for(scenario),
            scenario,
            replications,
        )

    @classmethod
    def from_frames(
        cls,
        vehicles: Any,
        occupancy: Any,
        calendar: Calendar,
        scenario: Scenario,
        replications: int,
    ) -> Prediction:
        """Bin the first ``replications`` replications of the frames; the frames' others
        (if any) only serve the calibration of thresholds (:meth:`from_scenario`)."""
        warm = scenario.warmup_hours * 3600.0
        horizon = scenario.horizon_days * 86_400.0
        # how often each week bin is covered by the measured horizon, per replication
        starts = np.arange(warm, horizon, BIN_S)
        cover = np.bincount(
            [int(calendar.week_seconds(s) // BIN_S) % WEEK_BINS for s in starts],
            minlength=WEEK_BINS,
        ).astype(float)
        seen = np.maximum(cover, 1.0)

        def week_bins(times: np.ndarray) -> np.ndarray:
            week = (times + calendar.week_seconds(0.0)) % (7 * DAY_S)
            return (week // BIN_S).astype(int) % WEEK_BINS

        def inside(x: np.ndarray) -> np.ndarray:
            x = x[np.isfinite(x)]
            return x[(x >= warm) & (x < horizon)]

        v = vehicles
        reps = [part for _, part in v.groupby("replication", observed=True)]
        used = slice(0, replications)
        times = {
            "arrivals": [inside(p["gate_s"].to_numpy(dtype=float)) for p in reps],
            "entries": [
                inside(p.loc[p["outcome"] == "parked", "entry_s"].to_numpy(dtype=float))
                for p in reps
            ],
        }
        exits, amounts = [], []
        for p in reps:
            x = p["exit_s"].to_numpy(dtype=float)
            a = p["amount"].fillna(0).to_numpy(dtype=float)
            keep = np.isfinite(x) & (x >= warm) & (x < horizon)
            exits.append(x[keep])
            amounts.append(a[keep])

        def moments(per_rep: list[np.ndarray], weights: list[np.ndarray] | None = None):
            rows = np.zeros((replications, WEEK_BINS))
            for r, x in enumerate(per_rep):
                w = None if weights is None else weights[r]
                rows[r] = np.bincount(week_bins(x), weights=w, minlength=WEEK_BINS)
            rows /= seen
            mean = rows.mean(axis=0)
            var = rows.var(axis=0, ddof=1) if replications > 1 else mean.copy()
            return mean, var

        entries_mean, entries_var = moments(times["entries"][used])
        arrivals_mean, arrivals_var = moments(times["arrivals"][used])
        revenue, revenue_var = moments(exits[used], amounts[used])
        revenue_m2, _ = moments(exits[used], [a * a for a in amounts[used]])
        occ = occupancy[
            (occupancy["group_kind"] == "level")
            & (occupancy["time_s"] >= warm)
            & (occupancy["replication"].astype(int) < replications)
        ]
        names = (
            [str(c) for c in occ["group"].cat.categories]
            if hasattr(occ["group"], "cat")
            else sorted(occ["group"].unique())
        )
        names = [n for n in names if (occ["group"] == n).any()]
        occ_mean = np.zeros((len(names), WEEK_BINS))
        occ_sd = np.zeros((len(names), WEEK_BINS))
        capacity = []
        for k, name in enumerate(names):
            part = occ[occ["group"] == name]
            capacity.append(int(part["capacity"].iloc[0]))
            b = week_bins(part["time_s"].to_numpy())
            x = part["occupied"].to_numpy(dtype=float)
            n = np.bincount(b, minlength=WEEK_BINS)
            s1 = np.bincount(b, weights=x, minlength=WEEK_BINS)
            s2 = np.bincount(b, weights=x * x, minlength=WEEK_BINS)
            mean = s1 / np.maximum(n, 1)
            var = np.maximum(s2 / np.maximum(n, 1) - mean**2, 0.0) * n / np.maximum(n - 1, 1)
            occ_mean[k], occ_sd[k] = mean, np.sqrt(var)
        return cls(
            calendar,
            names,
            entries_mean,
            entries_var,
            occ_mean,
            occ_sd,
            revenue,
            capacity,
            replications,
            arrivals_mean=arrivals_mean,
            arrivals_var=arrivals_var,
            revenue_m2=revenue_m2,
            revenue_var=revenue_var,
            replicas=Replicas(times["arrivals"], times["entries"], exits, amounts, warm, horizon),
        )


@dataclass
class DivergenceConfig:
    """Detector settings (feed seconds). Thresholds left ``None`` are calibrated on the model's
    replications to the alarm budgets (``*_per_day``; module docstring)."""

    #: the arrivals CUSUMs' design ratios (chosen on the model: module docstring)
    surge_ratio: float = 1.4
    drop_ratio: float = 1.0 / 1.4
    #: false-alarm budgets (alarms per day on the model's replications): the issue allows
    #: < 1 a day in all; these share 0.5 (surge 0.3, drop 0.1, revenue 0.1), so a fault-free
    #: week (Poisson, mean 3.5) stays under 7 alarms with probability 0.93; the other
    #: detectors raise none on fault-free weeks (benchmarks/bench_divergence.py)
    surge_per_day: float = 0.3
    drop_per_day: float = 0.1
    #: fixed CUSUM thresholds instead of calibrated ones
    cusum_h: float | None = None
    cusum_drop_h: float | None = None
    cusum_clear_s: float = 7200.0
    revenue_window_s: float = 3600.0
    revenue_sustain_s: float = 600.0
    revenue_per_day: float = 0.1
    #: a fixed revenue band (sd) instead of the calibrated one
    revenue_band: float | None = None
    payment_window_s: float = 600.0
    payment_alpha: float = 1e-6
    payment_min_failed: int = 3
    band_z: float = 4.0
    band_floor: float = 0.08
    sustain_s: float = 1800.0
    disagree_spots: int = 8
    disagree_share: float = 0.02
    counter_sustain_s: float = 600.0
    #: Feed time before occupancy and revenue are judged, from the fold's start (the minute
    #: of the feed's first event): a feed that starts with an empty lot (a simulated one, or
    #: a lot opening), or one that joins a running lot and sees its cars only as they come
    #: and go, is not in the model's typical state at first.
    settle_s: float = 0.0


@dataclass
class Divergence:
    """Actual against predicted, sampled on the mirror's ticks; alerts go to the fold."""

    prediction: Prediction | None
    config: DivergenceConfig = field(default_factory=DivergenceConfig)
    # state (part of the fold, so replayed and snapshotted with it)
    last_t: float | None = None
    last_entries: int = 0
    last_plates: int = 0
    cusum_up: float = 0.0
    cusum_down: float = 0.0
    signalled: dict[str, float] = field(default_factory=dict)
    last_payments: dict[str, int] = field(default_factory=dict)
    pay_window: deque[tuple[float, int, int]] = field(default_factory=deque)  # (t, n, failed)
    pay_total: int = 0
    pay_failed: int = 0
    #: revenue per tick in the window: (paid, expected, compound Poisson variance)
    last_paid_cents: int = 0
    revenue_ticks: deque[tuple[float, float, float]] = field(default_factory=deque)
    revenue_out_since: dict[str, float] = field(default_factory=dict)
    out_of_band_since: dict[int, float] = field(default_factory=dict)
    disagree_since: dict[str, float] = field(default_factory=dict)
    counter_offset: dict[str, int] = field(default_factory=dict)
    #: (t, entries so far, paid so far, occupancy per level, plate reads so far) samples
    samples: list[tuple[float, int, float, tuple[int, ...], int]] = field(default_factory=list)
    sample_every_s: float = 900.0

    # -- the prediction is shared by every checkpoint, not copied into each ----------------
    def shared(self) -> Prediction | None:
        return self.prediction

    def detach(self) -> Prediction | None:
        p, self.prediction = self.prediction, None
        return p

    def attach(self, prediction: Prediction | None) -> None:
        self.prediction = prediction

    # -- one tick ----------------------------------------------------------------------------
    def tick(self, fold: Fold, now: float) -> None:
        dt = now - self.last_t if self.last_t is not None else fold.config.tick_s
        self.last_t = now
        new_entries = fold.entries - self.last_entries
        self.last_entries = fold.entries
        new_plates = fold.plates_in - self.last_plates
        self.last_plates = fold.plates_in
        self._payments(fold, now)
        pred = self.prediction
        if pred is None:
            return
        # arrivals: the entrance camera's plate reads if the feed has a camera, else entries
        source = "arrivals" if fold.plates_in and pred.arrivals_mean is not None else "entries"
        n = new_plates if source == "arrivals" else new_entries
        expected = pred.mean_of(source)[pred.bin(now - dt / 2)] * dt / BIN_S
        # a feed without gates (or pay stations) says nothing about arrivals (or revenue):
        # each is judged once the feed has shown the kind of event it counts
        if fold.entries or fold.plates_in:
            self._arrivals(fold, now, n, expected, pred, source, dt)
        self._revenue(fold, now, pred, dt)
        occ = None
        if now % self.sample_every_s == 0 or (now % 300 == 0):
            levels = fold.levels(now)
            occ = tuple(lv["occupied"] for lv in levels)
            if now - fold.start_t >= self.config.settle_s:
                self._occupancy(fold, now, levels, pred)
            self._counters(fold, now, levels)
        if now % self.sample_every_s == 0:
            if occ is None:
                occ = tuple(lv["occupied"] for lv in fold.levels(now))
            self.samples.append((now, fold.entries, fold.paid_cents / 100, occ, fold.plates_in))

    def _arrivals(
        self,
        fold: Fold,
        now: float,
        n: int,
        lam: float,
        pred: Prediction,
        source: str,
        dt: float,
    ) -> None:
        cfg = self.config
        phi = pred.dispersion_of(source)
        lam = max(lam, 1e-3 * dt / 60.0)
        self.cusum_up = max(0.0, self.cusum_up + poisson_llr(n, lam, cfg.surge_ratio, phi))
        self.cusum_down = max(0.0, self.cusum_down + poisson_llr(n, lam, cfg.drop_ratio, phi))
        if max(self.cusum_up, self.cusum_down) <= CUSUM_GRID[0] and not self.signalled:
            return  # below any threshold the calibration can give: nothing to look up yet
        h_up, h_down, _, _ = pred.arrival_thresholds(cfg, fold.config.tick_s, source)
        # Page's CUSUM restarts after each signal; the alert stays open while signals keep
        # coming and closes after ``cusum_clear_s`` without one (divergence_null.cusum_alarms
        # counts alarms by the same rule)
        what = "arrivals at the entry" if source == "arrivals" else "gate entries"
        for kind, value, word, h in (
            ("arrival_surge", self.cusum_up, "above", h_up),
            ("arrival_drop", self.cusum_down, "below", h_down),
        ):
            if value > h:
                fold.raise_alert(
                    kind,
                    "gates",
                    now,
                    now,
                    f"{what} {word} the model's rate (CUSUM {value:.1f} > {h:.1f})",
                )
                self.signalled[kind] = now
                if kind == "arrival_surge":
                    self.cusum_up = 0.0
                else:
                    self.cusum_down = 0.0
            elif now - self.signalled.get(kind, -math.inf) > cfg.cusum_clear_s:
                fold.clear_alert(kind, "gates", now)

    def _revenue(self, fold: Fold, now: float, pred: Prediction, dt: float) -> None:
        """Money paid over the last ``revenue_window_s`` against the model's band for it."""
        cfg = self.config
        paid = (fold.paid_cents - self.last_paid_cents) / 100.0
        self.last_paid_cents = fold.paid_cents
        mean, var = pred.revenue_expected(now, dt)
        window = self.revenue_ticks
        window.append((float(paid), float(mean), float(var)))
        while len(window) > max(1, round(cfg.revenue_window_s / fold.config.tick_s)):
            window.popleft()
        if now - fold.start_t < cfg.settle_s or not fold.payments:
            return
        band, _ = pred.revenue_band(cfg, fold.config.tick_s)
        actual = sum(x[0] for x in window)
        expected = sum(x[1] for x in window)
        z = revenue_z(
            actual, expected, sum(x[2] for x in window), pred.revenue_dispersion, pred.payment_m2
        )
        minutes = len(window) * dt / 60.0
        for subject, out in (("below", z < -band), ("above", z > band)):
            if not out:
                self.revenue_out_since.pop(subject, None)
                fold.clear_alert("revenue", subject, now)
                continue
            # out on every tick since ``since``: raised on the ``sustain``-th such tick, the
            # rule the calibration counts (divergence_null.band_alarms)
            since = self.revenue_out_since.setdefault(subject, now)
            sustain = max(1, round(cfg.revenue_sustain_s / fold.config.tick_s))
            if now - since >= (sustain - 1) * fold.config.tick_s - dt / 2:
                fold.raise_alert(
                    "revenue",
                    subject,
                    since,
                    now,
                    f"paid {actual:,.0f} in the last {minutes:.0f} min, the model "
                    f"{expected:,.0f} (z {z:+.1f}, band ±{band:.1f})",
                )

    def _payments(self, fold: Fold, now: float) -> None:
        from scipy.stats import binom

        cfg = self.config
        pays = fold.payments
        n_ok = pays.get("ok", 0) - self.last_payments.get("ok", 0)
        failed = (
            pays.get("declined", 0)
            + pays.get("offline", 0)
            - self.last_payments.get("declined", 0)
            - self.last_payments.get("offline", 0)
        )
        self.last_payments = dict(pays)
        win = self.pay_window
        if n_ok or failed:
            win.append((now, n_ok + failed, failed))
        while win and win[0][0] <= now - cfg.payment_window_s:
            _, n_old, f_old = win.popleft()
            self.pay_total += n_old  # leaves the window: becomes history (the baseline)
            self.pay_failed += f_old
        w_n = sum(x[1] for x in win)
        w_f = sum(x[2] for x in win)
        # baseline failure share with a weak prior (1 in 100), from history outside the window
        p0 = (self.pay_failed + 1.0) / (self.pay_total + 100.0)
        if w_f >= cfg.payment_min_failed and binom.sf(w_f - 1, w_n, p0) < cfg.payment_alpha:
            first = next(x[0] for x in win if x[2])
            fold.raise_alert(
                "payment_outage",
                "payments",
                first - fold.config.tick_s,
                now,
                f"{w_f} of {w_n} payments failed in {cfg.payment_window_s / 60:.0f}"
                f" min (usual share {p0:.1%})",
            )
        elif w_f == 0:
            fold.clear_alert("payment_outage", "payments", now)

    def _occupancy(
        self, fold: Fold, now: float, levels: list[dict[str, Any]], pred: Prediction
    ) -> None:
        cfg = self.config
        b = pred.bin(now)
        for k, lv in enumerate(levels):
            if k >= len(pred.occ_mean):
                break
            cap = pred.capacity[k]
            sd = max(pred.occ_sd[k, b], cfg.band_floor * cap)
            z = (lv["occupied"] - pred.occ_mean[k, b]) / sd
            name = lv["level"]
            if abs(z) > cfg.band_z:
                since = self.out_of_band_since.setdefault(k, now)
                if now - since >= cfg.sustain_s:
                    fold.raise_alert(
                        "occupancy",
                        name,
                        since,
                        now,
                        f"occupied {lv['occupied']} vs model {pred.occ_mean[k, b]:.0f} "
                        f"± {cfg.band_z * sd:.0f} for {(now - since) / 60:.0f} min",
                    )
            else:
                self.out_of_band_since.pop(k, None)
                fold.clear_alert("occupancy", name, now)

    def _counters(self, fold: Fold, now: float, levels: list[dict[str, Any]]) -> None:
        cfg = self.config
        lot = fold.lot
        checks: list[tuple[str, int, int, int]] = []  # subject, counted, other, capacity
        # counted in - out against the gates' (site) or the sensors' (level) figure at the
        # counter's own instant, relative to the first snapshot (a counter counts from its
        # own reset, and may start with cars inside)
        for lv, snap in fold.level_counter.items():
            checks.append(
                (
                    f"level {lot.levels[lv].name}",
                    snap["counted"],
                    snap["sensors"],
                    lot.capacity_by_level[lv],
                )
            )
        if fold.site_counter is not None:
            s = fold.site_counter
            checks.append(("site", s["counted"], s["gates"], lot.capacity))
        for subject, counted, other, cap in checks:
            offset = self.counter_offset.setdefault(subject, counted - other)
            counted -= offset
            limit = max(cfg.disagree_spots, cfg.disagree_share * cap)
            kind = "counter_vs_gates" if subject == "site" else "counter_vs_sensors"
            key = f"{kind}:{subject}"
            if abs(counted - other) > limit or (
                key in self.disagree_since and abs(counted - other) > limit / 2
            ):
                # (hysteresis: an open disagreement ends only well inside the limit)
                since = self.disagree_since.setdefault(key, now)
                if now - since >= cfg.counter_sustain_s:
                    fold.raise_alert(
                        kind,
                        subject,
                        since,
                        now,
                        f"counter says {counted} occupied, "
                        f"{'gates' if subject == 'site' else 'sensors'} {other}",
                    )
            else:
                self.disagree_since.pop(key, None)
                fold.clear_alert(kind, subject, now)


def null_replications_problem(
    replications: int,
    null_replications: Any,
    *,
    name: str = "null_replications",
    of: str = "replications",
) -> str | None:
    """What is wrong with calibrating the thresholds on ``null_replications`` next to a
    prediction of ``replications`` (None: nothing; ``name`` and ``of`` name the two as the
    caller's user knows them). The null replications include the prediction's own, and the
    calibration judges each replication against others, so it needs at least
    ``max(replications, 2)``; with no prediction there is nothing to calibrate."""
    if null_replications is None:
        return None
    if isinstance(null_replications, bool) or not isinstance(null_replications, Integral):
        return f"{name} must be a whole number, got {null_replications!r}"
    if replications < 1:
        return f"{name} needs a prediction ({of} >= 1): with none there is nothing to calibrate"
    floor = max(replications, 2)
    if null_replications < floor:
        return (
            f"{name} must be >= {floor}, got {null_replications} (the calibration includes "
            f"the prediction's {of} = {replications} and judges each one against others)"
        )
    return None


def for_scenario(
    scenario: Scenario,
    replications: int,
    seed: int | None = None,
    null_replications: int | None = None,
) -> Divergence:
    """Detectors against ``replications`` of ``scenario`` (thresholds calibrated on
    ``null_replications``, default the same), occupancy and revenue judged after its warm-up
    (12 h when 'auto'): a mirror that joins a running lot sees its cars only as they come
    and go, and an emitted feed starts from an empty lot like the model."""
    warm = scenario.warmup_hours if isinstance(scenario.warmup_hours, int | float) else 12.0
    return Divergence(
        Prediction.from_scenario(
            scenario, replications, seed=seed, null_replications=null_replications
        ),
        DivergenceConfig(settle_s=float(warm) * 3600.0),
    )


__all__ = [
    "BIN_S",
    "CATCHES",
    "LASTING",
    "SHOWS_FOR_S",
    "WEEK_BINS",
    "Divergence",
    "DivergenceConfig",
    "Prediction",
    "Score",
    "for_scenario",
    "null_replications_problem",
    "score",
]
