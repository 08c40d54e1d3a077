"""Where reality leaves the model: actual against predicted, and the alerts it raises.

The *prediction* is the model's own week: replications of the lot's scenario, binned by time
of week (15 min), give per bin the expected gate entries and their spread, each level's
occupancy (mean and spread) and the revenue the tariff charges. The *actual* is the mirror's
fold (``twin.live.mirror``), sampled on every clock tick. Detectors, each tuned so a fault-free
feed raises well under one alarm a day (benchmarks/bench_divergence.py measures it):

* ``arrival_surge`` / ``arrival_drop``: a two-sided Poisson CUSUM on gate entries per tick
  against the expected rate, for a rate ratio of ``surge_ratio`` (and its inverse), with the
  replications' overdispersion; alarm at ``cusum_h``. A CUSUM, not a fixed window, because it
  is the quickest detector of a sustained rate change for a given false-alarm rate (Page).
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
from typing import TYPE_CHECKING, Any

import numpy as np

from twin.core.clock import Calendar

if TYPE_CHECKING:
    from twin.live.mirror import Fold
    from twin.scenario.model import Scenario

#: Width of a prediction bin (seconds); the week has WEEK_BINS of them.
BIN_S = 900.0
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
    #: revenue charged at exits per bin (currency units), mean
    revenue_mean: np.ndarray
    capacity: list[int]
    replications: int

    @property
    def dispersion(self) -> float:
        """Overdispersion of entries per bin across replications (variance / mean, >= 1),
        pooled over the bins with traffic: one factor for the lot, because a bin's own
        variance from a few replications is too noisy to scale a detector by."""
        busy = self.entries_mean >= 1.0
        if self.replications < 2 or not busy.any():
            return 1.0
        return max(1.0, float(self.entries_var[busy].sum() / self.entries_mean[busy].sum()))

    def bin(self, t: float) -> int:
        return int(self.calendar.week_seconds(t) // BIN_S) % WEEK_BINS

    @classmethod
    def from_scenario(
        cls, scenario: Scenario, replications: int = 10, seed: int | None = None
    ) -> Prediction:
        """Run the scenario ``replications`` times and bin its weeks (after warm-up)."""
        from twin.experiments import run  # not twin.api, which imports this module
        from twin.sim.build import calendar_for

        result = run(
            scenario, replications=replications, seed=seed, frames=("vehicles", "occupancy")
        )
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
            week = (times + calendar.week_seconds(0.0)) % (7 * 86_400.0)
            return (week // BIN_S).astype(int) % WEEK_BINS

        v = vehicles
        parked = v[(v["outcome"] == "parked") & (v["entry_s"] >= warm)]
        per_rep = np.zeros((replications, WEEK_BINS))
        for r, part in parked.groupby("replication", observed=True):
            per_rep[int(r)] = np.bincount(
                week_bins(part["entry_s"].to_numpy()), minlength=WEEK_BINS
            )
        per_rep /= seen
        entries_mean = per_rep.mean(axis=0)
        entries_var = per_rep.var(axis=0, ddof=1) if replications > 1 else entries_mean.copy()
        paid = v[v["exit_s"].notna() & (v["exit_s"] >= warm)]
        revenue = (
            np.bincount(
                week_bins(paid["exit_s"].to_numpy()),
                weights=paid["amount"].fillna(0).to_numpy(),
                minlength=WEEK_BINS,
            )
            / seen
            / replications
        )
        occ = occupancy[(occupancy["group_kind"] == "level") & (occupancy["time_s"] >= warm)]
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
        )


@dataclass
class DivergenceConfig:
    """Detector settings (feed seconds); the defaults are the tuned ones (module docstring)."""

    surge_ratio: float = 1.5
    cusum_h: float = 6.0
    #: a drop in entries is often the lot being full (the gates let fewer in): signalled
    #: only when much stronger
    cusum_drop_h: float = 12.0
    cusum_clear_s: float = 7200.0
    payment_window_s: float = 600.0
    payment_alpha: float = 1e-6
    payment_min_failed: int = 3
    band_z: float = 4.0
    band_floor: float = 0.08
    sustain_s: float = 1800.0
    disagree_spots: int = 8
    disagree_share: float = 0.02
    counter_sustain_s: float = 600.0
    #: Feed time before occupancy is judged: a feed that starts with an empty lot (a
    #: simulated one, or a lot opening) is not in the model's typical state at first.
    settle_s: float = 0.0


@dataclass
class Divergence:
    """Actual against predicted, sampled on the mirror's ticks; alerts go to the fold."""

    prediction: Prediction | None
    config: DivergenceConfig = field(default_factory=DivergenceConfig)
    # state (part of the fold, so replayed and snapshotted with it)
    last_t: float | None = None
    last_entries: int = 0
    cusum_up: float = 0.0
    cusum_down: float = 0.0
    signalled: dict[str, float] = field(default_factory=dict)
    last_payments: dict[str, int] = field(default_factory=dict)
    pay_window: deque[tuple[float, int, int]] = field(default_factory=deque)  # (t, n, failed)
    pay_total: int = 0
    pay_failed: int = 0
    out_of_band_since: dict[int, float] = field(default_factory=dict)
    disagree_since: dict[str, float] = field(default_factory=dict)
    counter_offset: dict[str, int] = field(default_factory=dict)
    #: (t, entries per tick actual, expected, occupancy actual per level) samples for plots
    samples: list[tuple[float, int, float, tuple[int, ...]]] = field(default_factory=list)
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
        self._payments(fold, now)
        pred = self.prediction
        if pred is None:
            return
        b = pred.bin(now - dt / 2)
        expected = pred.entries_mean[b] * dt / BIN_S
        self._arrivals(fold, now, new_entries, expected, pred, b, dt)
        occ = None
        if now % self.sample_every_s == 0 or (now % 300 == 0):
            levels = fold.levels(now)
            occ = tuple(lv["occupied"] for lv in levels)
            if now >= self.config.settle_s:
                self._occupancy(fold, now, levels, pred)
            self._counters(fold, now, levels)
        if now % self.sample_every_s == 0:
            if occ is None:
                occ = tuple(lv["occupied"] for lv in fold.levels(now))
            self.samples.append((now, fold.entries, fold.paid_cents / 100, occ))

    def _arrivals(
        self, fold: Fold, now: float, n: int, lam: float, pred: Prediction, b: int, dt: float
    ) -> None:
        cfg = self.config
        phi = pred.dispersion
        r = cfg.surge_ratio
        lam = max(lam, 1e-3 * dt / 60.0)
        up = (n * math.log(r) - lam * (r - 1.0)) / phi
        down = (n * math.log(1.0 / r) - lam * (1.0 / r - 1.0)) / phi
        self.cusum_up = max(0.0, self.cusum_up + up)
        self.cusum_down = max(0.0, self.cusum_down + down)
        # Page's CUSUM restarts after each signal; the alert stays open while signals keep
        # coming and closes after ``cusum_clear_s`` without one
        for kind, value, word, h in (
            ("arrival_surge", self.cusum_up, "above", cfg.cusum_h),
            ("arrival_drop", self.cusum_down, "below", cfg.cusum_drop_h),
        ):
            if value > h:
                fold.raise_alert(
                    kind,
                    "gates",
                    now,
                    now,
                    f"entries {word} the model's rate (CUSUM {value:.1f} > {h:g})",
                )
                self.signalled[kind] = now
                if kind == "arrival_surge":
                    self.cusum_up = 0.0
                else:
                    self.cusum_down = 0.0
            elif now - self.signalled.get(kind, -math.inf) > cfg.cusum_clear_s:
                fold.clear_alert(kind, "gates", now)

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


def for_scenario(scenario: Scenario, replications: int, seed: int | None = None) -> Divergence:
    """Detectors against ``replications`` of ``scenario``, occupancy judged after its warm-up
    (12 h when 'auto'): a mirror that joins a running lot sees its cars only as they come
    and go, and an emitted feed starts from an empty lot like the model."""
    warm = scenario.warmup_hours if isinstance(scenario.warmup_hours, int | float) else 12.0
    return Divergence(
        Prediction.from_scenario(scenario, replications, seed=seed),
        DivergenceConfig(settle_s=float(warm) * 3600.0),
    )


__all__ = ["BIN_S", "WEEK_BINS", "Divergence", "DivergenceConfig", "Prediction", "for_scenario"]


# -- scoring against a ground truth of injected faults (``twin.live.emit``) -----------------

#: Which alerts count as catching which injected fault (``subject`` checked for bay faults).
CATCHES: dict[str, tuple[str, ...]] = {
    "sensor_stuck": ("sensor_vs_gate",),
    "sensor_dead": ("dead_sensor", "sensor_vs_gate"),
    "demand_surge": ("arrival_surge", "occupancy"),
    "payment_outage": ("payment_outage",),
    "counter_miss": ("counter_vs_gates", "counter_vs_sensors"),
}


@dataclass
class Score:
    """Each fault's first catching alert and its delay; alerts no fault explains."""

    rows: list[dict[str, Any]]
    false_alarms: list[Any]
    days: float

    @property
    def false_per_day(self) -> float:
        return len(self.false_alarms) / self.days if self.days > 0 else float("nan")


#: Faults whose effect outlives them: a counter that missed cars stays off until recalibrated.
LASTING = ("counter_miss",)


def score(alerts: list[Any], truth: dict[str, Any], days: float, after_s: float = 7200.0) -> Score:
    """Match alerts to the ground truth's faults (times in core seconds from its epoch).

    An alert catches a fault if its kind is one of ``CATCHES[fault kind]``, it is raised
    between the fault's start and ``after_s`` past its end (any time after, for the
    ``LASTING`` ones), and for a bay fault it names the
    bay (or is the site-wide "unseen car" alert). Every other alert is a false alarm.
    """
    from datetime import datetime

    epoch = datetime.fromisoformat(truth["epoch"])

    def secs(x: str | None) -> float:
        return math.inf if x is None else (datetime.fromisoformat(x) - epoch).total_seconds()

    explained: set[int] = set()
    rows = []
    for f in truth["faults"]:
        start, end = secs(f["start"]), secs(f["end"])
        spot = f["params"].get("spot")
        hit = None
        for k, a in enumerate(alerts):
            if a.kind not in CATCHES[f["kind"]]:
                continue
            until = math.inf if f["kind"] in LASTING else end + after_s
            if not start <= a.raised_t <= until:
                continue
            if spot is not None and a.subject not in (spot, "unseen car"):
                continue
            explained.add(k)
            if hit is None or a.raised_t < hit.raised_t:
                hit = a
        rows.append(
            {
                "fault": f["kind"],
                "detail": ", ".join(f"{k}={v}" for k, v in f["params"].items()),
                "start_s": start,
                "detected": hit is not None,
                "alert": hit.kind if hit else None,
                "delay_s": (hit.raised_t - start) if hit else None,
            }
        )
    false = [a for k, a in enumerate(alerts) if k not in explained]
    return Score(rows, false, days)


__all__ += ["CATCHES", "Score", "score"]
