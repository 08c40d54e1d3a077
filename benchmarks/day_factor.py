"""Day-to-day variation: measured daily-arrival variance against the negative binomial, and
what a day factor does to a run's figures.

Two tables, both from the full simulator (``twin.api.run``), not from the demand draws alone:

1. The surface lot's ``shoppers`` stream (98 expected arrivals every day) given
   ``day_factor: {cv: c}``, one replication of DAYS days: mean and variance of the daily
   arrivals against Poisson (Var = m) and the negative binomial (Var = m + c²m²), with the
   standard error of the sample variance from the NB's own kurtosis.
2. The surface lot as shipped against every stream given ``{cv: 0.15, group: lot}``, 30
   replications of its week: sd and 95 % half-widths of a few figures.

Usage: ``.venv/bin/python benchmarks/day_factor.py [DAYS]`` (default 2000; ~30 s on 2 cores).
"""

from __future__ import annotations

import copy
import math
import sys
from pathlib import Path

import numpy as np
import yaml
from scipy import stats

from twin import api

ROOT = Path(__file__).resolve().parents[1]
SURFACE = yaml.safe_load((ROOT / "scenarios" / "surface_lot.yaml").read_text())


def nb_table(days: int) -> None:
    print(f"daily arrivals of 'shoppers', {days} days, 1 replication")
    print(f"{'cv':>5} {'mean':>7} {'var':>7} {'Poisson':>8} {'NB pred':>8} {'SE(var)':>8} {'z':>6}")
    m = float(sum(SURFACE["demand"][1]["profile"]["all"]))
    for cv in (0.0, 0.1, 0.2, 0.3):
        data = copy.deepcopy(SURFACE)
        data["horizon_days"] = days
        data["warmup_hours"] = 0
        if cv:
            data["demand"][1]["day_factor"] = {"cv": cv}
        v = api.run(api.load(data), replications=1, frames=("vehicles",)).vehicles
        arrival = v.loc[v["stream"] == "shoppers", "arrival_s"].to_numpy()
        counts = np.bincount((arrival // 86400).astype(int), minlength=days)[:days]
        if cv:
            r = 1 / cv**2
            var, kurt = (float(x) for x in stats.nbinom(r, r / (r + m)).stats(moments="vk"))
        else:
            var, kurt = m, 1 / m  # Poisson
        se = var * math.sqrt(kurt / days + 2 / (days - 1))
        s2 = float(counts.var(ddof=1))
        print(
            f"{cv:5.2f} {counts.mean():7.1f} {s2:7.0f} {m:8.0f} {var:8.0f} {se:8.1f} "
            f"{(s2 - var) / se:6.2f}"
        )


def width_table(replications: int = 30) -> None:
    rows = ("arrivals", "revenue_per_day", "reneged_pct", "occupancy.mean")
    out = {}
    for cv in (0.0, 0.15):
        data = copy.deepcopy(SURFACE)
        for stream in data["demand"]:
            if cv:
                stream["day_factor"] = {"cv": cv, "group": "lot"}
        out[cv] = api.run(api.load(data), replications=replications, frames=()).summary()
    print(f"\nsurface_lot week, {replications} replications: shipped | all streams cv 0.15, shared")
    print(f"{'figure':<16} {'mean':>9} {'sd':>8} {'±95%':>8} | {'mean':>9} {'sd':>8} {'±95%':>8}")
    for row in rows:
        a, b = out[0.0].loc[row], out[0.15].loc[row]
        print(
            f"{row:<16} {a['mean']:9.3f} {a['sd']:8.3f} {a['half_width']:8.3f} | "
            f"{b['mean']:9.3f} {b['sd']:8.3f} {b['half_width']:8.3f}"
        )


if __name__ == "__main__":
    nb_table(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
    width_table()
