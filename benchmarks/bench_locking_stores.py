"""Claim strategies on real stores: measured ceilings against the locking study's predictions.

1. Measures the study's latency inputs on this machine (``twin.locking_live.measure_inputs``):
   PostgreSQL and Redis round trips, statement and commit (WAL flush) time, the CPU of whole
   claims and releases in the client and in the servers, Redis CPU per command, the queue
   consumer's time per request.
2. Runs the study's sweep (``benchmarks/locking_live.yaml``) against the real stores with
   ``--clients`` client processes: PostgreSQL for pessimistic and optimistic, Redis for atomic
   and queue. Prints the measured table (the same columns as ``parktwin locking``) and the CPU
   each point used: ours (clients, servers) and the rest of the machine's (other load).
3. Refines each measured ceiling: ``--repeats`` independent bisections of the sweep's bracket
   (last passing, first failing rate) down to a factor ``1 + --rel-tol``
   (``twin.sim.locking_refine``), and prints each repeat and the spread.
4. Runs the simulated study with the measured inputs on the shared host
   (``twin.locking_live.predicted_spec(shared_host=True)``), refined the same way, and prints per
   strategy the measured and predicted ceilings (median and range of the repeats), their
   ratio, the order both ways, and the seed's rule of thumb, as the docs table needs them.

    python benchmarks/bench_locking_stores.py [--clients 8] [--repeats 3] [--rel-tol 0.12]
        [--strategy NAME ...] [--own-cpus] [--out DIR]
        [--pg postgresql://127.0.0.1:5432/test] [--redis redis://127.0.0.1:6379/0]
    python benchmarks/bench_locking_stores.py --predict-only DIR/inputs.json [--strategy NAME ...]

``--predict-only`` touches no store: it runs step 4 alone on the inputs an earlier run wrote
(``--out DIR`` writes ``inputs.json``) and, when ``measured_refined.csv`` lies beside them,
prints each strategy's ratio to that run's measured ceiling (a re-prediction after a change
of the model, with the machine left quiet).

The machine's load (``uptime``) is printed before and after, and the CPU table shows how much
of the machine other processes used during each point: on a shared machine the measured
ceilings fall with that load, the predictions do not. Nothing here is a test; the invariants
are in tests/adapters/test_stores.py.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STUDY = ROOT / "benchmarks" / "locking_live.yaml"
SEED_RANGE = {
    "pessimistic": "100–500",
    "optimistic": "~5K",
    "atomic": "10K+",
    "queue": "~1K",
}


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load average: {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _versions(pg: str, redis_url: str) -> str:
    import psycopg
    import redis

    with psycopg.connect(pg) as conn:
        pg_version = conn.execute("SHOW server_version").fetchone()[0]
    redis_version = redis.Redis.from_url(redis_url).info("server")["redis_version"]
    return f"PostgreSQL {pg_version}, Redis {redis_version}"


def _tps(x: float) -> str:
    return "—" if x != x else f"{x:,.0f}"


def _range(row, coarse=None) -> str:
    """A refined ceiling as 'median (min–max)'; without repeats, the coarse sweep's reading
    (``coarse``: its row of ``ceilings``): '≥ x' when no rate of the sweep failed."""
    if row["repeats"] == 0:
        if coarse is None:
            return "—"
        text = _tps(float(coarse["ceiling_tps"]))
        return f"≥ {text}" if str(coarse["limited_by"]).startswith("not reached") else text
    return f"{_tps(row['ceiling_tps'])} ({_tps(row['min_tps'])}–{_tps(row['max_tps'])})"


def _cpu_frame(live_cpu: list[dict], model_cpu: dict[str, float]):
    """Per live point: cores busy with the workload and with everything else, and the CPU per
    answered claim (its release included, in steady state) next to the model's."""
    import pandas as pd

    frame = pd.DataFrame(live_cpu)
    if frame.empty:
        return frame
    ours = frame["clients_cpu_s"] + frame["servers_cpu_s"]
    frame["ours_cores"] = ours / frame["seconds"]
    frame["others_cores"] = (frame["host_busy_s"] - ours).clip(lower=0) / frame["seconds"]
    frame["cpu_ms_per_claim"] = 1000 * ours / frame["answered"].clip(lower=1)
    frame["clients_ms_per_claim"] = 1000 * frame["clients_cpu_s"] / frame["answered"].clip(lower=1)
    frame["model_cpu_ms"] = frame["strategy"].map(model_cpu)
    return frame


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    from twin.locking_live import (
        LiveStudy,
        measure_inputs,
        model_cpu_ms,
        parse_backends,
        predicted_spec,
    )
    from twin.scenario.locking import load_locking_study
    from twin.sim.locking_refine import refine_ceilings
    from twin.sim.locking_study import LockingStudyResult, ceilings, run_locking_study
    from twin.views.locking import locking_tables

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--pg", default=os.environ.get("PARKTWIN_PG_DSN", "postgresql://127.0.0.1:5432/test")
    )
    parser.add_argument(
        "--redis", default=os.environ.get("PARKTWIN_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--strategy", action="append", help="only this strategy (repeatable)")
    parser.add_argument("--repeats", type=int, default=3, help="bisections per ceiling")
    parser.add_argument(
        "--rel-tol", type=float, default=0.12, help="bisect until failing/passing ≤ 1 + this"
    )
    parser.add_argument(
        "--own-cpus",
        action="store_true",
        help="also predict with every party on its own CPUs (the model before the shared host)",
    )
    parser.add_argument("--out", type=Path, help="folder for the tables (CSV) and inputs")
    parser.add_argument(
        "--predict-only",
        type=Path,
        metavar="INPUTS_JSON",
        help="no store: predict from an earlier run's inputs.json and compare with its ceilings",
    )
    parser.add_argument(
        "--sweep-inputs",
        action="store_true",
        help="with --predict-only: take the wake-up (median up to 300 TPS) and the marginal CPU "
        "per claim from that run's cpu.csv (the live sweep) instead of the paced probe",
    )
    args = parser.parse_args()
    if args.predict_only is not None:
        _predict_only(args)
        return
    console = Console(width=160)

    spec = load_locking_study(STUDY)
    names = args.strategy or list(spec.strategies)
    before = _uptime()
    console.print(f"machine: {_cpu()}, {os.cpu_count()} cores; {_versions(args.pg, args.redis)}")
    console.print(f"before: {before}")
    started, cpu0 = time.perf_counter(), time.process_time()
    inputs = measure_inputs(
        {"postgres": args.pg, "redis": args.redis},
        study=spec.model_copy(update={"strategies": names}),
        clients=args.clients,
        trace=("pessimistic",),  # as the sweep below: the probe's clients do the same work
    )
    console.print(
        "measured inputs (ms): " + json.dumps({k: round(v, 4) for k, v in inputs.items()})
    )
    console.print(_probe_line(inputs, names))

    # -- measured: the sweep, then the bisections, on the same client processes ---------------
    with LiveStudy(
        parse_backends([args.pg, args.redis]), args.clients, trace=("pessimistic",)
    ) as live:
        measured = run_locking_study(spec, strategies=names, point=live)
        for table in locking_tables(measured):
            console.print(table)
        console.print(f"after the sweep: {_uptime()}")
        refined_m = refine_ceilings(
            spec, measured.table, live, strategies=names, repeats=args.repeats, rel_tol=args.rel_tol
        )
        live_cpu = list(live.cpu)
        live_traces = [t for t in live.traces if t["strategy"] == "pessimistic"]
    after_live = _uptime()

    # -- predicted: the same sweep and bisections, simulated with the measured inputs ---------
    sims = {name: _predicted(spec, inputs, name, args.clients, args) for name in names}
    predicted_rows, refined_p = [], []
    for name in names:
        result = run_locking_study(sims[name], strategies=[name])
        predicted_rows.append(result.table)
        refined_p.append(
            refine_ceilings(
                sims[name], result.table, _simulate, repeats=args.repeats, rel_tol=args.rel_tol
            )
        )

    import pandas as pd

    predicted = LockingStudyResult(
        spec, pd.concat(predicted_rows, ignore_index=True), ceilings(pd.concat(predicted_rows))
    )
    p_summary = pd.concat([r.summary for r in refined_p], ignore_index=True).set_index("strategy")
    m_summary = refined_m.summary.set_index("strategy")
    m_coarse = measured.ceilings.set_index("strategy")
    p_coarse = predicted.ceilings.set_index("strategy")
    # the same prediction from the back-to-back inputs (no paced cycles): how much the
    # client's sleeps and wake-ups between claims move it
    tight = {k: v for k, v in inputs.items() if not k.startswith(("cycle_", "live_"))}
    b2b = {}
    for name in names:
        sim = _predicted(spec, tight, name, args.clients, args)
        coarse = run_locking_study(sim, strategies=[name])
        refined = refine_ceilings(
            sim, coarse.table, _simulate, repeats=args.repeats, rel_tol=args.rel_tol
        )
        b2b[name] = (
            refined.summary.set_index("strategy").loc[name],
            coarse.ceilings.set_index("strategy").loc[name],
        )
    own = {}
    if args.own_cpus:
        for name in names:
            sim = predicted_spec(spec, inputs, name, args.clients)
            own[name] = run_locking_study(sim, strategies=[name]).ceilings.iloc[0]

    # -- CPU per point ------------------------------------------------------------------------
    model_cpu = {name: model_cpu_ms(sims[name], name) for name in names}
    cpu = _cpu_frame(live_cpu, model_cpu)
    cpu_table = Table(
        title="CPU during each live point (cores busy; per answered claim, its release included)",
        title_justify="left",
    )
    for header in (
        "strategy",
        "offered TPS",
        "ours",
        "others",
        "ms/claim",
        "of it clients",
        "model",
        "wake-up ms",
    ):
        cpu_table.add_column(header, justify="left" if header == "strategy" else "right")
    previous = None
    for row in cpu.itertuples(index=False):
        cpu_table.add_row(
            row.strategy if row.strategy != previous else "",
            f"{row.offered_tps:,.0f}",
            f"{row.ours_cores:.2f}",
            f"{row.others_cores:.2f}",
            f"{row.cpu_ms_per_claim:.3f}",
            f"{row.clients_ms_per_claim:.3f}",
            f"{row.model_cpu_ms:.3f}",
            f"{row.wakeup_ms:.3f}",
        )
        previous = row.strategy
    console.print(cpu_table)

    # -- the row lock's hot row, and the optimistic claim's conflicts: live vs model ----------
    swept = int((measured.table["strategy"] == "pessimistic").sum())  # the sweep's points
    chain = _chain_frame(live_traces, sims.get("pessimistic"), swept, live_cpu)
    if not chain.empty:
        console.print(_chain_table(chain))
    conflicts = _conflict_frame(measured.table, predicted.table, sims.get("optimistic"))
    if not conflicts.empty:
        console.print(_conflict_table(conflicts))

    # -- refined ceilings ---------------------------------------------------------------------
    repeats = Table(title="refined ceilings, each repeat (TPS)", title_justify="left")
    for header in ("strategy", "repeat", "measured", "bracket (offered)", "predicted", "bracket"):
        repeats.add_column(header, justify="left" if header == "strategy" else "right")
    p_repeats = pd.concat([r.repeats for r in refined_p], ignore_index=True)
    for m_row in refined_m.repeats.itertuples(index=False):
        match = p_repeats[
            (p_repeats["strategy"] == m_row.strategy) & (p_repeats["repeat"] == m_row.repeat)
        ]
        p_row = match.iloc[0] if len(match) else None
        repeats.add_row(
            m_row.strategy,
            str(m_row.repeat + 1),
            _tps(m_row.ceiling_tps),
            f"{_tps(m_row.passing_offered_tps)}–{_tps(m_row.failing_offered_tps)}",
            _tps(p_row["ceiling_tps"]) if p_row is not None else "—",
            f"{_tps(p_row['passing_offered_tps'])}–{_tps(p_row['failing_offered_tps'])}"
            if p_row is not None
            else "—",
        )
    console.print(repeats)

    rows = []
    for name in names:
        m = m_summary.loc[name] if name in m_summary.index else None
        p = p_summary.loc[name] if name in p_summary.index else None
        m_c = float(m["ceiling_tps"]) if m is not None else float("nan")
        p_c = float(p["ceiling_tps"]) if p is not None else float("nan")
        rows.append(
            {
                "strategy": name,
                "measured_tps": m_c,
                "measured_min": float(m["min_tps"]) if m is not None else float("nan"),
                "measured_max": float(m["max_tps"]) if m is not None else float("nan"),
                "measured_spread": float(m["spread"]) if m is not None else float("nan"),
                "coarse_measured_tps": float(
                    measured.ceilings.set_index("strategy").loc[name, "ceiling_tps"]
                ),
                "predicted_tps": p_c,
                "predicted_min": float(p["min_tps"]) if p is not None else float("nan"),
                "predicted_max": float(p["max_tps"]) if p is not None else float("nan"),
                "ratio": p_c / m_c if m_c > 0 else float("nan"),
                "own_cpus_tps": float(own[name]["ceiling_tps"]) if name in own else float("nan"),
                "back_to_back_tps": float(b2b[name][0]["ceiling_tps"]),
                "measured_cpu_ms": _marginal_cpu(cpu, name)[0],
                "top_cpu_ms": _top_cpu(cpu, name),
                "measured_cpu_se_ms": _marginal_cpu(cpu, name)[1],
                "background_cores": _marginal_cpu(cpu, name)[2],
                "wakeup_ms_light_load": _light_wakeup(cpu, name),
                "model_cpu_ms": model_cpu[name],
            }
        )
    summary = pd.DataFrame(rows)

    def order(key: str) -> list[str]:  # a ceiling not found counts as 0
        return list(summary.sort_values(key, na_position="first")["strategy"])

    table = Table(
        title=f"ceilings (TPS): median of {args.repeats} refined repeats (range), measured with "
        f"{args.clients} client processes vs predicted from the measured inputs (shared host)",
        title_justify="left",
    )
    headers = (
        "strategy",
        "measured",
        "spread",
        "predicted",
        "ratio",
        "back-to-back inputs",
        "CPU/claim ms: live slope, at top / model",
        "wake-up ms: sweep / input",
        "seed",
    )
    for header in headers:
        table.add_column(header, justify="left" if header == "strategy" else "right")
    for r, name in zip(rows, names, strict=True):
        table.add_row(
            name,
            _range(m_summary.loc[name], m_coarse.loc[name]),
            f"±{r['measured_spread'] / 2:.0%}",
            _range(p_summary.loc[name], p_coarse.loc[name]),
            f"{r['ratio']:.2f}",
            _range(*b2b[name]),
            f"{r['measured_cpu_ms']:.2f}±{r['measured_cpu_se_ms']:.2f}, {r['top_cpu_ms']:.2f} / "
            f"{r['model_cpu_ms']:.2f}",
            f"{r['wakeup_ms_light_load']:.3f} / {inputs.get('wakeup_ms', float('nan')):.3f}",
            SEED_RANGE[name],
        )
    console.print(table)
    same = order("measured_tps") == order("predicted_tps")
    console.print(
        f"order, lowest first: measured {order('measured_tps')}; predicted "
        f"{order('predicted_tps')} ({'same' if same else 'DIFFERENT'})"
    )
    console.print(
        "measured order with the repeats' ranges: "
        + _ranked(summary, "measured")
        + "; predicted: "
        + _ranked(summary, "predicted")
        + " ('≈': the two ranges overlap, the measurement cannot order them)"
    )
    console.print(
        f"predicted order agrees with every pair the measurement orders: {_agrees(summary)}"
    )
    within = summary["ratio"].between(0.75, 1.25)
    console.print(
        "within 25 %: "
        + ", ".join(f"{n} {'yes' if w else 'NO'}" for n, w in zip(names, within, strict=True))
    )
    console.print("\nfor docs/locking.md:\n")
    console.print(
        "| strategy | measured ceiling (TPS), median (range) | predicted (shared host) | "
        "predicted / measured | predicted, back-to-back inputs | "
        "CPU per claim, live slope, at the top passing point / model (ms) | seed |"
    )
    console.print("|---|---:|---:|---:|---:|---:|---|")
    for r, name in zip(rows, names, strict=True):
        m = _range(m_summary.loc[name], m_coarse.loc[name])
        p = _range(p_summary.loc[name], p_coarse.loc[name])
        console.print(
            f"| {name} | {m} | {p} | {r['ratio']:.2f} | {_range(*b2b[name])} | "
            f"{r['measured_cpu_ms']:.2f}, {r['top_cpu_ms']:.2f} / {r['model_cpu_ms']:.2f} | "
            f"{SEED_RANGE[name]} |"
        )
    console.print(f"before: {before}")
    console.print(f"after the live runs: {after_live}")
    console.print(
        f"after: {_uptime()}; took {time.perf_counter() - started:.0f} s "
        f"(this process's CPU {time.process_time() - cpu0:.0f} s)"
    )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        measured.table.to_csv(args.out / "measured.csv", index=False)
        refined_m.points.to_csv(args.out / "measured_refine_points.csv", index=False)
        refined_m.repeats.to_csv(args.out / "measured_refined.csv", index=False)
        predicted.table.to_csv(args.out / "predicted.csv", index=False)
        p_repeats.to_csv(args.out / "predicted_refined.csv", index=False)
        cpu.to_csv(args.out / "cpu.csv", index=False)
        chain.to_csv(args.out / "chain.csv", index=False)
        conflicts.to_csv(args.out / "conflicts.csv", index=False)
        summary.to_csv(args.out / "ceilings.csv", index=False)
        (args.out / "inputs.json").write_text(
            json.dumps(
                {
                    **inputs,
                    "clients": args.clients,
                    "repeats": args.repeats,
                    "rel_tol": args.rel_tol,
                    "uptime_before": before,
                    "uptime_after": after_live,
                },
                indent=1,
            )
        )


def _predict_only(args) -> None:
    """Step 4 alone: the refined predictions from a saved ``inputs.json``, against the measured
    ceilings saved beside it (``measured_refined.csv``, median of its repeats) if present."""
    import pandas as pd

    from twin.scenario.locking import load_locking_study
    from twin.sim.locking_refine import refine_ceilings
    from twin.sim.locking_study import run_locking_study

    spec = load_locking_study(STUDY)
    names = args.strategy or list(spec.strategies)
    inputs = json.loads(args.predict_only.read_text())
    clients = int(inputs.get("clients", args.clients))
    repeats = int(inputs.get("repeats", args.repeats))
    rel_tol = float(inputs.get("rel_tol", args.rel_tol))
    measured_csv = args.predict_only.parent / "measured_refined.csv"
    measured = pd.read_csv(measured_csv) if measured_csv.exists() else None
    if args.sweep_inputs:
        inputs = _sweep_inputs(inputs, pd.read_csv(args.predict_only.parent / "cpu.csv"), names)
    print(f"predicted from {args.predict_only} ({clients} clients, {repeats} repeats); {_uptime()}")
    cpu0 = time.process_time()
    for name in names:
        sim = _predicted(spec, inputs, name, clients, args)
        coarse = run_locking_study(sim, strategies=[name])
        refined = refine_ceilings(sim, coarse.table, _simulate, repeats=repeats, rel_tol=rel_tol)
        each = refined.repeats["ceiling_tps"]
        line = f"{name:12s} predicted {each.median():7,.0f} ({each.min():,.0f}–{each.max():,.0f})"
        if measured is not None:
            m = measured.loc[measured["strategy"] == name, "ceiling_tps"]
            if len(m):
                line += f"  measured {m.median():7,.0f}  ratio {each.median() / m.median():.2f}"
        print(line, flush=True)
    print(f"this process's CPU {time.process_time() - cpu0:.0f} s; {_uptime()}")


def _predicted(spec, inputs: dict, name: str, clients: int, args):
    """The prediction's spec on the shared host, with the scheduler options asked for."""
    from twin.locking_live import predicted_spec

    return predicted_spec(spec, inputs, name, clients, shared_host=True)


def _sweep_inputs(inputs: dict, cpu, names: list[str]) -> dict:
    """``inputs`` with what the live sweep's CPU table measured in place of the paced probe:
    each strategy's wake-up at light load and its cycle CPU scaled to the sweep's marginal CPU
    per claim (the queue has no cycle: its consumer is measured on its own)."""
    from twin.locking_live import model_cpu_ms, predicted_spec
    from twin.scenario.locking import load_locking_study

    spec = load_locking_study(STUDY)
    cycles = {k: v for k, v in inputs.items() if not k.startswith("live_")}  # the sweep's instead
    out = dict(cycles)
    for name in names:
        out[f"cycle_{name}_wakeup_ms"] = _light_wakeup(cpu, name)
        key = f"cycle_{name}_client_cpu_ms"
        if key in inputs:
            model = model_cpu_ms(predicted_spec(spec, cycles, name, 8, shared_host=True), name)
            scale = _marginal_cpu(cpu, name)[0] / model
            out[key] = inputs[key] * scale
            out[f"cycle_{name}_server_cpu_ms"] = inputs[f"cycle_{name}_server_cpu_ms"] * scale
        print(
            f"{name}: wake-up {out[f'cycle_{name}_wakeup_ms']:.3f} ms, CPU per claim "
            f"{_marginal_cpu(cpu, name)[0]:.3f} ms (sweep)"
        )
    return out


def _probe_line(inputs: dict, names: list[str]) -> str:
    """Per strategy, the CPU per claim (client + server, ms) of the one-client paced cycle
    and of the live clients at the live probe's rate, with the machine's other CPU there."""
    parts = []
    for name in names:
        cycle = [inputs.get(f"cycle_{name}_{p}_cpu_ms", float("nan")) for p in ("client", "server")]
        live = [inputs.get(f"live_{name}_{p}_cpu_ms", float("nan")) for p in ("client", "server")]
        parts.append(
            f"{name} cycle {cycle[0]:.3f}+{cycle[1]:.3f}, live at "
            f"{inputs.get(f'live_{name}_tps', float('nan')):,.0f} TPS {live[0]:.3f}+{live[1]:.3f}"
            f" over {inputs.get(f'live_{name}_trips', float('nan')):.2f} round trips"
            f" (other {inputs.get(f'live_{name}_other_cpu_ms', float('nan')):.3f})"
        )
    return "CPU per claim, client+server ms: " + "; ".join(parts)


def _chain_frame(traces: list[dict], sim, sweep_points: int, live_cpu: list[dict] = ()):
    """The hot row's chain (``twin.sim.locking_chain.row_chain``) at each rate of the live
    row-lock sweep (its first traces; the refinements' points come after), measured and
    simulated with the prediction's spec at the same rate, one row each; with the wait per
    wake-up, live (``schedstat`` of our processes, per time scheduled in) and model (per CPU
    burst on the host: its run-queue wait and its wait for a core)."""
    import pandas as pd

    from twin.sim.locking_chain import row_chain
    from twin.sim.locking_measure import measure_window
    from twin.sim.locking_study import trace_point

    waits: dict[float, float] = {}
    for c in live_cpu:  # the sweep's point comes first at each rate
        if c["strategy"] == "pessimistic":
            waits.setdefault(c["offered_tps"], c["wakeup_ms"])
    rows = []
    for t in traces[:sweep_points] if sim is not None else []:
        rate, win = t["offered_tps"], t["window"]
        live = row_chain(t["trace"], since=win.start, until=win.end)
        point, simulated = trace_point(sim, rate)
        model_win = measure_window(sim, rate)
        model = row_chain(simulated, since=model_win.start, until=model_win.end)
        live["wakeup_ms"] = waits.get(rate, float("nan"))
        model["wakeup_ms"] = point["host_wait_ms"]
        rows.append({"offered_tps": rate, "source": "live", **live})
        rows.append({"offered_tps": rate, "source": "model", "p95_ms": point["p95_ms"], **model})
    return pd.DataFrame(rows)


def _chain_table(chain):
    """Per rate, live over model: the hot row's hold and hand-off (mean, p95), how busy it
    was, and the waiter order (mean rank: 0 FIFO, 0.5 any waiter alike)."""
    from rich.table import Table

    table = Table(
        title="row lock, hot row (live / model): hold = lock answer → commit answer, hand-off = "
        "commit answer → next grant (ms); busy share; waiter order (mean rank: 0 FIFO, 0.5 "
        "random); wait per wake-up (ms: live schedstat per time scheduled in, model per CPU burst)",
        title_justify="left",
    )
    for header in ("offered TPS", "locks/s", "hold", "hold p95", "hand-off", "hand-off p95"):
        table.add_column(header, justify="right")
    for header in ("busy", "mean rank", "oldest first", "wait/wake-up"):
        table.add_column(header, justify="right")
    for rate, pair in chain.groupby("offered_tps", sort=True):
        live, model = (pair[pair["source"] == s].iloc[0] for s in ("live", "model"))

        def both(key: str, fmt: str = "{:.2f}", live=live, model=model) -> str:
            return f"{fmt.format(live[key])} / {fmt.format(model[key])}"

        table.add_row(
            f"{rate:,.0f}",
            both("locks_per_s", "{:,.0f}"),
            both("hold_ms"),
            both("hold_p95_ms"),
            both("handoff_ms"),
            both("handoff_p95_ms"),
            both("busy"),
            both("mean_rank"),
            both("oldest_share", "{:.0%}"),
            both("wakeup_ms", "{:.3f}"),
        )
    return table


def _conflict_frame(measured, predicted, sim=None):
    """The optimistic claim's version conflicts per claim at each rate, live and predicted,
    and the model's CPU per answered claim there with its own retries (its CPU per round trip
    times its round trips per answered claim), to hold against the live CPU per claim (the
    CPU table's "model" column is a claim without conflicts)."""
    import pandas as pd

    from twin.sim.locking_measure import round_trips_per_answer

    def per_claim(table):
        mine = table[table["strategy"] == "optimistic"].set_index("offered_tps")
        return mine["retries"] / mine["claims"].clip(lower=1), mine["failed"]

    if "optimistic" not in set(measured["strategy"]) or "optimistic" not in set(
        predicted["strategy"]
    ):
        return pd.DataFrame()
    (live, live_failed), (model, model_failed) = per_claim(measured), per_claim(predicted)
    frame = pd.DataFrame(
        {
            "live_conflicts_per_claim": live,
            "model_conflicts_per_claim": model,
            "live_failed": live_failed,
            "model_failed": model_failed,
        }
    )
    if sim is not None:
        mine = predicted[predicted["strategy"] == "optimistic"].set_index("offered_tps")
        per_trip = sim.client.cpu_ms + sim.database.statement_ms
        trips = mine.apply(lambda r: round_trips_per_answer(sim, "optimistic", r), axis=1)
        frame["model_cpu_ms_per_claim"] = per_trip * trips
    return frame.dropna(subset=["live_conflicts_per_claim"]).reset_index()


def _conflict_table(conflicts):
    from rich.table import Table

    table = Table(
        title="optimistic: version conflicts per claim (retries / claims) and claims failed "
        "after the retries, live / model",
        title_justify="left",
    )
    for header in ("offered TPS", "conflicts per claim", "failed", "model CPU/claim ms"):
        table.add_column(header, justify="right")
    for row in conflicts.itertuples(index=False):
        model = row.model_conflicts_per_claim
        model_failed = "—" if model != model else f"{row.model_failed:.0f}"
        cpu = getattr(row, "model_cpu_ms_per_claim", float("nan"))
        table.add_row(
            f"{row.offered_tps:,.0f}",
            f"{row.live_conflicts_per_claim:.3f} / " + ("—" if model != model else f"{model:.3f}"),
            f"{row.live_failed:.0f} / {model_failed}",
            "—" if cpu != cpu else f"{cpu:.3f}",
        )
    return table


def _light_wakeup(cpu, name: str) -> float:
    """Our processes' run-queue wait per wake-up at the sweep's points up to 300 TPS (median),
    where our own load is light: the machine's other load, to compare with the input."""
    if cpu.empty:
        return float("nan")
    mine = cpu[(cpu["strategy"] == name) & (cpu["offered_tps"] <= 300)]
    return float(mine["wakeup_ms"].median()) if len(mine) else float("nan")


def _ranked(summary, which: str) -> str:
    """Strategies lowest ceiling first, joined by '<' where the next one's range of repeats
    lies wholly above, else by '≈'."""
    ranked = summary.sort_values(f"{which}_tps", na_position="first").to_dict("records")
    text = ranked[0]["strategy"] if ranked else ""
    for lower, upper in itertools.pairwise(ranked):
        apart = upper[f"{which}_min"] > lower[f"{which}_max"]
        text += (" < " if apart else " ≈ ") + upper["strategy"]
    return text


def _agrees(summary) -> str:
    """'yes' when every pair of strategies whose measured ranges do not overlap is predicted
    in the same order; else the pairs predicted the other way round."""
    rows = summary.to_dict("records")
    wrong = [
        f"{a['strategy']} < {b['strategy']}"
        for a in rows
        for b in rows
        if a["measured_max"] < b["measured_min"] and not a["predicted_tps"] < b["predicted_tps"]
    ]
    return "yes" if not wrong else "NO (measured " + "; ".join(wrong) + ")"


def _simulate(spec, strategy: str, offered: float) -> dict:
    from twin.sim.locking_study import simulate_point

    return simulate_point(spec, strategy, offered)


def _top_cpu(cpu, name: str) -> float:
    """Our CPU per answered claim (ms) at the passing live point with the most claims per
    second: what the ceiling runs into (the slope of :func:`_marginal_cpu` is not, since the
    CPU per claim falls as the load rises)."""
    mine = cpu[(cpu["strategy"] == name) & cpu["passes"]] if not cpu.empty else cpu
    if mine.empty:
        return float("nan")
    top = mine.loc[(mine["answered"] / mine["seconds"]).idxmax()]
    return float(top["cpu_ms_per_claim"])


def _marginal_cpu(cpu, name: str) -> tuple[float, float, float]:
    """The live CPU per claim as the slope of our busy cores against answered claims per
    second over the points within the objective (scipy's linregress), so fixed background
    work (timers, the WAL writer) goes to the intercept: (ms per claim, its standard error,
    background cores). NaN with fewer than three points."""
    from scipy import stats

    if cpu.empty:
        return float("nan"), float("nan"), float("nan")
    mine = cpu[(cpu["strategy"] == name) & cpu["passes"]]
    if len(mine) < 3:
        return float("nan"), float("nan"), float("nan")
    fit = stats.linregress(mine["answered"] / mine["seconds"], mine["ours_cores"])
    return 1000 * fit.slope, 1000 * fit.stderr, fit.intercept


if __name__ == "__main__":
    main()
