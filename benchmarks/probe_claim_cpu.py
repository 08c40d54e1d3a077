"""Where a claim's CPU goes: the short probes behind docs/locking.md, Session 5.

Three probes, each a minute or less at normal priority (note ``uptime``, printed before and
after: on a shared machine the figures move with the others' load):

    python benchmarks/probe_claim_cpu.py cycle pessimistic b2b,paced2ms,split1ms,split10ms
        one client paced alone, CPU per cycle (claim and release) in the client, our backend,
        the WAL writer and PostgreSQL's other processes; the host's softirq; context switches
    python benchmarks/probe_claim_cpu.py loop atomic --rate 250 --seconds 2 --repeats 3
        the live client's loop (``run_client_point``, in this process) against the paced
        probe's loop with one and with two sleeps per cycle, at the same rate
    python benchmarks/probe_claim_cpu.py clients atomic 8@1000,2@1000,8@1000,2@1000
        the live clients (``LiveStudy``) at the same total rate over more or fewer processes:
        CPU per claim, the clients' sleeps (voluntary switches) and preemptions per claim
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG = os.environ.get("PARKTWIN_PG_DSN", "postgresql://127.0.0.1:5432/test")
REDIS = os.environ.get("PARKTWIN_REDIS_URL", "redis://127.0.0.1:6379/0")
STUDY = ROOT / "benchmarks" / "locking_live.yaml"


def _switches(pids: list[int]) -> tuple[int, int]:
    """Voluntary and involuntary context switches of ``pids`` together (ended ones count 0)."""
    from twin.locking_probe import context_switches

    counts = [c for pid in pids if (c := context_switches(pid)) is not None]
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def _softirq_s() -> float:
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    return (int(fields[5]) + int(fields[6])) / os.sysconf("SC_CLK_TCK")


def _cycle(args) -> None:
    """One client, claim and release, paced as named; CPU per cycle per process group."""
    import psycopg

    from parktwin.adapters.stores import open_store, run_claim, run_release
    from twin.locking_probe import sum_cpu_s

    store = open_store(args.strategy, PG, namespace=f"probe_{uuid.uuid4().hex[:6]}", pool_size=1)
    store.setup({"r": 10**6})
    with store.pool.connection() as conn:
        backend = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
    with psycopg.connect(PG) as conn:
        kinds = dict(conn.execute("SELECT pid, backend_type FROM pg_stat_activity").fetchall())
    groups = {
        "backend": [backend],
        "walwriter": [p for p, k in kinds.items() if k == "walwriter"],
        "pg_other": [p for p, k in kinds.items() if k not in ("client backend", "walwriter")],
    }
    gaps = {"b2b": (0, 0), "paced2ms": (0.002, 0), "split1ms": (0.001, 0.001)}
    gaps["split10ms"] = (0.010, 0.010)
    try:
        for mode in args.modes.split(","):
            before, after = gaps[mode]
            n = args.cycles if before < 0.005 else args.cycles // 3
            for i in range(50):
                run_claim(store, f"w{mode}{i}", "r")
                run_release(store, f"w{mode}{i}", "r")
            pids = [os.getpid(), backend]
            cpu0 = {g: sum_cpu_s(p) or 0.0 for g, p in groups.items()}
            c0, s0, irq0, t0 = (
                time.process_time(),
                _switches(pids),
                _softirq_s(),
                time.perf_counter(),
            )
            for i in range(n):
                if before:
                    time.sleep(before)
                run_claim(store, f"{mode}{i}", "r")
                if after:
                    time.sleep(after)
                run_release(store, f"{mode}{i}", "r")
            wall, s1 = time.perf_counter() - t0, _switches(pids)
            per = {g: 1000 * ((sum_cpu_s(p) or 0.0) - cpu0[g]) / n for g, p in groups.items()}
            per["client"] = 1000 * (time.process_time() - c0) / n
            per["softirq"] = 1000 * (_softirq_s() - irq0) / n
            text = ", ".join(f"{k} {v:.4f}" for k, v in per.items())
            print(
                f"{args.strategy} {mode}: ms per cycle: {text}; wall {1000 * wall / n:.2f}; "
                f"switches per cycle (client, backend) {(s1[0] - s0[0]) / n:.2f} voluntary, "
                f"{(s1[1] - s0[1]) / n:.2f} involuntary",
                flush=True,
            )
    finally:
        store.drop()
        store.close()


def _loop(args) -> None:
    """The live client's loop and the paced probe's, same store, same rate, alternated."""
    from parktwin.adapters.stores import open_store, run_claim, run_release
    from parktwin.adapters.stores.load import run_client_point, target_name

    url = PG if args.strategy in ("pessimistic", "optimistic") else REDIS
    store = open_store(args.strategy, url, namespace=f"probe_{uuid.uuid4().hex[:6]}", pool_size=1)
    store.setup({target_name(r): 10**6 for r in range(12)})
    params = {"shares": [0.25] + [0.75 / 11] * 11, "seed": 1, "max_retries": 5}
    params["backoff_ms"] = (1.0, 50.0)
    gap = 1 / args.rate
    try:
        for k in range(args.repeats):
            order = {"rate": args.rate, "stop": args.seconds, "t0": time.monotonic() + 0.05}
            order.update(index=k, mtps=1, stays=[0.004] * 12, releases=[], trace=False)
            c0 = time.process_time()
            out = run_client_point(store, params, order)
            n = sum(1 for s in out["status"] if s)
            print(f"live loop: {1000 * (time.process_time() - c0) / n:.3f} ms per claim ({n})")
            for split in (False, True):
                n = int(args.rate * args.seconds)
                c0 = time.process_time()
                for i in range(n):
                    time.sleep(max(0.0, gap / 2 - 0.0003) if split else max(0.0, gap - 0.0006))
                    run_claim(store, f"p{k}{split}{i}", target_name(i % 12))
                    if split:
                        time.sleep(max(0.0, gap / 2 - 0.0003))
                    run_release(store, f"p{k}{split}{i}", target_name(i % 12))
                label = "two sleeps" if split else "one sleep"
                print(f"probe loop, {label}: {1000 * (time.process_time() - c0) / n:.3f} ms")
    finally:
        store.drop()
        store.close()


def _clients(args) -> None:
    """The live clients at each ``clients@rate`` of the plan, a warm-up point first."""
    from twin.locking_live import LiveStudy, parse_backends
    from twin.scenario.locking import load_locking_study

    spec = load_locking_study(STUDY)
    for item in args.plan.split(","):
        clients, rate = int(item.split("@")[0]), float(item.split("@")[1])
        with LiveStudy(parse_backends([PG, REDIS]), clients) as live:
            live(spec, args.strategy, rate)
            pids = [p.pid for p in live._procs]
            s0 = _switches(pids)
            row = live(spec, args.strategy, rate)
            s1, c = _switches(pids), live.cpu[-1]
        n = max(1, c["answered"])
        others = (c["host_busy_s"] - c["clients_cpu_s"] - c["servers_cpu_s"]) / c["seconds"]
        print(
            f"{args.strategy} {clients} clients at {rate:,.0f} TPS: p95 {row['p95_ms']:.1f} ms; "
            f"client {1000 * c['clients_cpu_s'] / n:.3f} ms, server "
            f"{1000 * c['servers_cpu_s'] / n:.3f} ms per claim; others {others:.2f} cores; "
            f"client sleeps {(s1[0] - s0[0]) / n:.2f}, preempted {(s1[1] - s0[1]) / n:.2f} "
            "per claim",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="probe", required=True)
    cycle = sub.add_parser("cycle")
    cycle.add_argument("strategy", choices=("pessimistic", "optimistic"))
    cycle.add_argument("modes", help="comma list of b2b, paced2ms, split1ms, split10ms")
    cycle.add_argument("--cycles", type=int, default=300)
    loop = sub.add_parser("loop")
    loop.add_argument("strategy")
    loop.add_argument("--rate", type=float, default=250)
    loop.add_argument("--seconds", type=float, default=2)
    loop.add_argument("--repeats", type=int, default=3)
    clients = sub.add_parser("clients")
    clients.add_argument("strategy")
    clients.add_argument("plan", help="comma list of CLIENTS@TPS")
    args = parser.parse_args()
    os.system("uptime")
    {"cycle": _cycle, "loop": _loop, "clients": _clients}[args.probe](args)
    os.system("uptime")


if __name__ == "__main__":
    main()
