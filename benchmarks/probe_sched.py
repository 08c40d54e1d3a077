"""The row lock's live points with the OS scheduler traced: bursts, waits and idle cores.

Runs the live benchmark's pessimistic claims (``benchmarks/locking_live.yaml``, ``--clients``
client processes on PostgreSQL) at each ``--rates`` point while ``perf record`` captures the
scheduler's tracepoints on every CPU, then prints per party (our clients, our backends and the
WAL writer, everything else) what ``twin.locking_sched.sched_summary`` measures: the bursts'
mean, spread and residual, the waits per wake-up and after a preemption, the IPI's share
(``waking → wakeup``), and how much of our waiting time the other CPU sat idle. This is what
the locking model's one FIFO line for the host's cores is to be compared with (docs/locking.md,
Session 5). Needs ``perf`` and root (or ``perf_event_paranoid`` ≤ 0); each point is a few
seconds, the trace tens of MB in ``--out``.

    python benchmarks/probe_sched.py [--rates 700,1000,1500] [--clients 8] [--out DIR]
        [--pg postgresql://127.0.0.1:5432/test]

Run it on a quiet machine for figures about the live benchmark; on a loaded one the other
load's long slices dominate the waits (its own table says so in the ``other`` rows).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EVENTS = ("sched:sched_switch", "sched:sched_waking", "sched:sched_wakeup")


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="700,1000,1500", help="offered TPS, comma-separated")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--pg", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--out", type=Path, help="keep the perf data here (default: a temp dir)")
    args = parser.parse_args()
    try:
        rates = [float(r) for r in args.rates.split(",")]
    except ValueError:
        sys.exit(f"--rates {args.rates!r}: allowed are offered TPS separated by commas")
    if shutil.which("perf") is None:
        print("perf not found: this probe records the scheduler's tracepoints with it")
        sys.exit(2)

    from twin.locking_live import LiveStudy
    from twin.locking_sched import PARTIES, sched_summary
    from twin.scenario.locking import load_locking_study

    spec = load_locking_study(ROOT / "benchmarks" / "locking_live.yaml")
    data = spec.model_dump()
    data["measure"] |= {"window_claims": 4000, "min_window_s": 2.5}  # a few seconds a point
    spec = type(spec).model_validate(data)
    out = args.out or Path(tempfile.mkdtemp(prefix="probe_sched_"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"before: {_uptime()}")
    with LiveStudy({"postgres": args.pg}, args.clients) as live:
        live(spec, "pessimistic", 50.0)  # start the clients and their backends untraced
        for rate in rates:
            path = out / f"perf-{rate:g}.data"
            events = [x for e in EVENTS for x in ("-e", e)]
            perf = subprocess.Popen(
                ["perf", "record", "-q", "-a", "-o", str(path), *events],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)
            row = live(spec, "pessimistic", rate)
            perf.send_signal(signal.SIGINT)
            perf.wait()
            cpu = live.cpu[-1]
            party = dict.fromkeys((p.pid for p in live._procs), "client")
            party |= dict.fromkeys(live._server_pids("pessimistic"), "server")
            text = subprocess.run(
                ["perf", "script", "-i", str(path), "-F", "tid,cpu,time,event,trace"],
                capture_output=True,
                text=True,
            ).stdout
            summary = sched_summary(text.splitlines(), party)
            print(
                f"\n{rate:g} TPS: achieved {row['achieved_tps']:.0f}, p95 {row['p95_ms']:.1f} ms, "
                f"schedstat wait per wake-up {cpu['wakeup_ms']:.3f} ms; {_uptime()}"
            )
            print(
                "party   bursts/s  burst ms  cv    p99   residual  preempted  "
                "wait/wake ms  IPI ms  other CPU idle  wait/preempt ms"
            )
            for name in PARTIES:
                s = summary[name]
                if not s.get("bursts"):
                    continue
                print(
                    f"{name:7s} {s['bursts'] / summary['span_s']['s']:8.0f}  "
                    f"{s['burst_ms']:8.3f}  {s['burst_cv']:.2f}  {s['burst_p99_ms']:.3f}  "
                    f"{s['residual_ms']:8.3f}  {s['preempted_share']:9.0%}  "
                    f"{s.get('woken_wait_ms', float('nan')):12.3f}  "
                    f"{s.get('waking_to_wakeup_ms', float('nan')):6.3f}  "
                    f"{s.get('woken_other_idle_share', float('nan')):14.1%}  "
                    f"{s.get('preempted_wait_ms', float('nan')):15.3f}"
                )
    print(f"\nafter: {_uptime()}; perf data in {out}")


if __name__ == "__main__":
    main()
