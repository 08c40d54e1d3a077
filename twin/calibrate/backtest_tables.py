"""The backtest's markdown tables for docs/validation.md, rendered from its CSV files.

The per-car-park table, the "against the targets" summary and the list of misses quote
hundreds of figures; typed by hand they drift from the run they claim to show. Here they are
computed from a backtest's ``backtest.csv`` (and the chosen rows of ``families.csv`` and
``unusable.csv``), and :func:`replace_blocks` writes them between HTML comment markers::

    <!-- backtest-tables:NAME:start -->
    ...generated...
    <!-- backtest-tables:NAME:end -->

``scripts/backtest_tables.py`` rewrites (``--update``) or checks (``--check``) the docs;
tests/calibrate/test_backtest_tables.py checks that the committed docs equal what this module
renders from ``reports/backtest/``.

A coverage is "within" its target when |coverage − nominal| ≤ 0.05 (+ :data:`TOL`, so that
45 of 60 inside, 0.75 in floating point, counts as within).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

#: Float tolerance on "within 5 points of nominal".
TOL = 1e-9
#: The coverage targets: column, nominal, allowed distance (issue 12: within 5 points).
TARGETS = (("coverage80", 0.80, 0.05), ("coverage95", 0.95, 0.05))
#: Columns each input must hold.
TABLE_COLUMNS = ("site", "horizon_h", "method", "n", "mae", "coverage80", "coverage95")
FAMILY_COLUMNS = ("site", "family", "profile", "stay_mean_min", "weight", "recent_level")
PROFILE_NAMES = {"shared": "Mon–Fri", "own": "own weekdays"}
LEVEL_NAMES = {"flow": "flow 1 wk", "flow2": "flow 2 wk"}


class TablesInputError(ValueError):
    """A backtest table without a column the rendering needs, or a docs file without markers."""


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TablesInputError(
            f"{what}: no column {', '.join(missing)} (needs {', '.join(columns)})"
        )


def within(coverage: pd.Series | np.ndarray, nominal: float, width: float = 0.05) -> np.ndarray:
    """True where |coverage − nominal| ≤ width (+ :data:`TOL`); NaN is never within."""
    c = np.asarray(coverage, dtype=float)
    return np.abs(c - nominal) <= width + TOL


class Run:
    """One backtest's scores, indexed for the tables: MAE per method, the twin's n and
    coverage, per (site, horizon)."""

    def __init__(self, table: pd.DataFrame):
        _require(table, TABLE_COLUMNS, "backtest.csv")
        self.horizons = tuple(int(h) for h in sorted(table["horizon_h"].unique()))
        self.mae = table.pivot_table(
            index=["site", "horizon_h"], columns="method", values="mae", aggfunc="first"
        )
        for method in ("twin", "seasonal_naive", "ets"):
            if method not in self.mae.columns:
                raise TablesInputError(f"backtest.csv: no rows with method {method}")
        self.twin = table[table["method"] == "twin"].set_index(["site", "horizon_h"])
        self.sites = sorted(table["site"].unique())

    def at(self, h: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """MAE of each method and the twin's rows at horizon ``h``, one row per site."""
        return self.mae.xs(h, level="horizon_h"), self.twin.xs(h, level="horizon_h")

    def counts(self, h: int) -> dict[str, int]:
        """Car parks at ``h`` where the twin beats naive / ETS and whose bands are within."""
        mae, tw = self.at(h)
        return {
            "naive": int((mae["twin"] < mae["seasonal_naive"]).sum()),
            "ets": int((mae["twin"] < mae["ets"]).sum()),
            **{col: int(within(tw[col], nom, w).sum()) for col, nom, w in TARGETS},
        }

    def pooled(self, h: int, col: str) -> float:
        """Share of all the twin's actuals inside the band at ``h``, over every car park."""
        _, tw = self.at(h)
        return float((tw[col] * tw["n"]).sum() / tw["n"].sum())

    def met(self, h: int) -> bool:
        """Every car park below naive and both bands within at ``h``."""
        c = self.counts(h)
        n = len(self.sites)
        return c["naive"] == n and all(c[col] == n for col, _, _ in TARGETS)


def _joined(values, fmt: str) -> str:
    return " / ".join(fmt.format(v) for v in values)


def _marks(flags) -> str:
    return "".join("✓" if f else "✗" for f in flags)


def _weight(w: float) -> str:
    return f"{w:g}"


def choice(row: pd.Series) -> str:
    """'gamma 4.9 h · Mon–Fri · flow 1 wk · 0.25' from a chosen row of families.csv."""
    stays = f"{row['family']} {row['stay_mean_min'] / 60:.1f} h"
    profile = PROFILE_NAMES.get(row["profile"], str(row["profile"]))
    level = LEVEL_NAMES.get(row["recent_level"], str(row["recent_level"]))
    return f"{stays} · {profile} · {level} · {_weight(float(row['weight']))}"


def per_site_table(table: pd.DataFrame, families: pd.DataFrame) -> str:
    """The per-car-park markdown table: n, MAE of the three methods (points of capacity), the
    twin's 80% and 95% coverage (%), whether it beats each baseline, and the tuning's choice."""
    run = Run(table)
    _require(families, FAMILY_COLUMNS, "families.csv")
    chosen = families
    if "chosen" in families.columns:
        chosen = families[families["chosen"].astype(str).str.lower() == "true"]
    chosen = chosen.drop_duplicates("site").set_index("site")
    hs = "/".join(str(h) for h in run.horizons)
    head = (
        f"| car park | n ({hs} h) | twin MAE {hs} h | naive MAE {hs} h | ETS MAE {hs} h "
        f"| twin 80% cov {hs} h | twin 95% cov {hs} h | twin < naive | twin < ETS "
        "| stays · profile · level · weight |"
    )
    lines = [head, "|---|" + "---:|" * 6 + ":---:|:---:|---|"]
    for site in run.sites:
        rows = [(run.mae.loc[(site, h)], run.twin.loc[(site, h)]) for h in run.horizons]
        cells = [
            site,
            _joined((int(t["n"]) for _, t in rows), "{}"),
            _joined((100 * m["twin"] for m, _ in rows), "{:.1f}"),
            _joined((100 * m["seasonal_naive"] for m, _ in rows), "{:.1f}"),
            _joined((100 * m["ets"] for m, _ in rows), "{:.1f}"),
            _joined((100 * t["coverage80"] for _, t in rows), "{:.0f}"),
            _joined((100 * t["coverage95"] for _, t in rows), "{:.0f}"),
            _marks(m["twin"] < m["seasonal_naive"] for m, _ in rows),
            _marks(m["twin"] < m["ets"] for m, _ in rows),
            choice(chosen.loc[site]) if site in chosen.index else "–",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _bold_if(count: int, n: int) -> str:
    return f"**{count}**" if count == n else str(count)


def targets_table(table: pd.DataFrame) -> str:
    """The "against the targets" summary: one column per horizon."""
    run = Run(table)
    n = len(run.sites)
    hs = run.horizons
    counts = {h: run.counts(h) for h in hs}

    def mean_mae(h: int) -> str:
        mae = run.at(h)[0]
        return _joined((100 * mae[m].mean() for m in ("twin", "seasonal_naive", "ets")), "{:.2f}")

    def span(h: int) -> str:
        c = 100 * run.at(h)[1]["coverage80"]
        return f"{c.min():.0f}–{c.max():.0f}%"

    rows = {
        f"car parks where the twin's MAE < seasonal naive's (of {n})": lambda h: _bold_if(
            counts[h]["naive"], n
        ),
        f"car parks where the twin's MAE < ETS's (of {n})": lambda h: str(counts[h]["ets"]),
        "mean MAE, twin / naive / ETS (points of capacity)": mean_mae,
        "80% band: actuals inside, pooled over car parks": lambda h: (
            f"{100 * run.pooled(h, 'coverage80'):.1f}%"
        ),
        "95% band: actuals inside, pooled": lambda h: f"{100 * run.pooled(h, 'coverage95'):.1f}%",
        "car parks with 80% coverage within 75–85%": lambda h: _bold_if(counts[h]["coverage80"], n),
        "car parks with 95% coverage within 90–100%": lambda h: _bold_if(
            counts[h]["coverage95"], n
        ),
        "80% coverage per car park, lowest–highest": span,
    }
    lines = ["| | " + " | ".join(f"{h} h" for h in hs) + " |", "|---|" + "---:|" * len(hs)]
    lines += ["| " + " | ".join([label, *map(cell, hs)]) + " |" for label, cell in rows.items()]
    return "\n".join(lines) + "\n"


def misses(table: pd.DataFrame) -> str:
    """Every car park and horizon where a per-car-park target is not met, with its figures
    (MAE in points of capacity, coverage in %)."""
    run = Run(table)
    found: dict[str, list[str]] = {"naive": [], "ets": [], "coverage80": [], "coverage95": []}
    for site in run.sites:
        for h in run.horizons:
            m, t = run.mae.loc[(site, h)], run.twin.loc[(site, h)]
            for key, base in (("naive", "seasonal_naive"), ("ets", "ets")):
                if not m["twin"] < m[base]:
                    found[key].append(
                        f"{site} {h} h ({100 * m['twin']:.2f} against {100 * m[base]:.2f})"
                    )
            for col, nominal, width in TARGETS:
                if not bool(within(t[col], nominal, width)):
                    found[col].append(f"{site} {h} h ({100 * t[col]:.1f}%)")
    labels = {
        "naive": "twin's MAE not below seasonal naive's",
        "ets": "twin's MAE not below ETS's",
        "coverage80": "80% band outside 75–85%",
        "coverage95": "95% band outside 90–100%",
    }
    lines = [f"- {labels[k]}: {'; '.join(v) if v else 'none'}." for k, v in found.items()]
    return "\n".join(lines) + "\n"


def unusable_line(unusable: pd.DataFrame) -> str:
    """'Not backtested: **A** (why); **B** (why).' from unusable.csv."""
    _require(unusable, ("site", "why"), "unusable.csv")
    if not len(unusable):
        return "Every car park in the series was backtested.\n"
    parts = [f"**{r.site}**: {r.why}" for r in unusable.sort_values("site").itertuples()]
    return "Not backtested (`unusable.csv`): " + "; ".join(parts) + ".\n"


def headline(table: pd.DataFrame) -> str:
    """The README's one-cell summary of the run."""
    run = Run(table)
    n, hs = len(run.sites), run.horizons
    c = {h: run.counts(h) for h in hs}
    met = [h for h in hs if run.met(h)]
    if len(met) == len(hs):
        verdict = "per-car-park targets met at every horizon"
    elif met:
        missed = [h for h in hs if h not in met]
        verdict = (
            f"per-car-park targets met at {' and '.join(f'{h}' for h in met)} h, "
            f"not all at {' and '.join(f'{h}' for h in missed)} h"
        )
    else:
        verdict = "per-car-park targets not all met at any horizon"
    return (
        f"has its MAE below a week-old reading on {_joined((c[h]['naive'] for h in hs), '{}')} "
        f"of {n} car parks at {' / '.join(str(h) for h in hs)} h and below Holt-Winters (ETS) on "
        f"{_joined((c[h]['ets'] for h in hs), '{}')}; 80% bands hold "
        f"{_joined((100 * run.pooled(h, 'coverage80') for h in hs), '{:.1f}')}% of actuals "
        f"pooled (95% bands {_joined((100 * run.pooled(h, 'coverage95') for h in hs), '{:.1f}')}%)"
        f" and 75–85% on {_joined((c[h]['coverage80'] for h in hs), '{}')} car parks (95% bands "
        f"90–100% on {_joined((c[h]['coverage95'] for h in hs), '{}')}): **{verdict}**"
    )


def blocks(
    table: pd.DataFrame,
    families: pd.DataFrame,
    unusable: pd.DataFrame,
    early: pd.DataFrame | None = None,
) -> dict[str, str]:
    """Every generated block of docs/validation.md, by marker name (``early``: the backtest
    the settings were chosen on, its summary and where the twin is not below naive)."""
    out = {
        "per-site": per_site_table(table, families),
        "unusable": unusable_line(unusable),
        "targets": targets_table(table),
        "misses": misses(table),
    }
    if early is not None:
        out["early"] = targets_table(early) + "\n" + misses(early).splitlines()[0] + "\n"
    return out


def _marker(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"(<!-- backtest-tables:{re.escape(name)}:start -->\n)(.*?)"
        rf"(<!-- backtest-tables:{re.escape(name)}:end -->)",
        re.S,
    )


def _inline(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"(<!-- backtest-tables:{re.escape(name)} -->)(.*?)(<!-- /backtest-tables -->)", re.S
    )


def replace_blocks(
    text: str, generated: dict[str, str], inline: dict[str, str] | None = None
) -> tuple[str, list[str]]:
    """``text`` with each block (and inline span) replaced, and the names whose content
    changed. A name without its markers in ``text`` raises :class:`TablesInputError`."""
    changed = []
    for name, content in generated.items():
        text, n_changed = _sub(text, _marker(name), name, content, "start/end")
        changed += [name] * n_changed
    for name, content in (inline or {}).items():
        text, n_changed = _sub(text, _inline(name), name, content, "inline")
        changed += [name] * n_changed
    return text, changed


def _sub(text: str, pattern: re.Pattern[str], name: str, content: str, kind: str):
    match = pattern.search(text)
    if match is None:
        raise TablesInputError(f"no backtest-tables:{name} markers ({kind}) in the docs")
    old = match.group(2)
    new = text[: match.start(2)] + content + text[match.end(2) :]
    return new, int(old != content)
