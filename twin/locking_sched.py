"""What the OS scheduler did to the live benchmark's processes, from perf's sched tracepoints.

The locking model puts every CPU burst of the clients and the servers in one FIFO line for the
host's cores, each burst after a wake-up wait (``host.wakeup_ms``). Live, the row lock's hold
grows with the load faster than the model's (docs/locking.md, Sessions 4 and 5), because a
woken process waits longer for a core than the model's line makes it. This module reads
``perf script -F tid,cpu,time,event,trace`` of ``sched:sched_switch``, ``sched:sched_waking``
and ``sched:sched_wakeup`` (``benchmarks/probe_sched.py`` records them during live points) and
measures, per party (``client``, ``server``, ``other``):

* the **bursts**: each stretch a task ran, switch-in to switch-out; mean, coefficient of
  variation, p99 and the mean residual a task arriving at a random instant waits for
  (``E[S²] / 2 E[S]``), and the share that ended by preemption (the task still runnable);
* the **waits**: from ``sched_waking`` (on the waker's CPU) to the switch-in, per wake-up;
  of it ``waking → wakeup`` (the target CPU enqueues the task, after an IPI and, on an idle
  vCPU, its wake from halt, which ``/proc/<pid>/schedstat`` does not count); and the waits of
  preempted tasks, switch-out to switch-in;
* the **idle share**: how much of our tasks' waiting time the *other* CPU spent idle. A
  single line for all cores (the model) never leaves a core idle while a burst waits; Linux's
  per-CPU run queues can, until a balance pulls the task.

Pure: text in, numbers out (no perf needed to test it).
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping

import numpy as np

__all__ = ["PARTIES", "sched_summary"]

PARTIES = ("client", "server", "other")
_SWITCH = re.compile(
    r"prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+) ==> next_comm=.*? next_pid=(\d+)"
)
_WAKE = re.compile(r"pid=(\d+) prio=\d+ target_cpu=(\d+)")


def _overlap(spans: list[tuple[float, float]], a: float, b: float) -> float:
    """Seconds of ``[a, b)`` covered by the sorted, disjoint ``spans``."""
    total, i = 0.0, max(0, bisect.bisect_left(spans, (a, a)) - 1)
    while i < len(spans) and spans[i][0] < b:
        s, e = spans[i]
        total += max(0.0, min(b, e) - max(a, s))
        i += 1
    return total


def sched_summary(lines: Iterable[str], party_of: Mapping[int, str]) -> dict[str, dict]:
    """Per party (``party_of``: tid → ``client`` / ``server``; any other tid is ``other``; tid
    0 is the idle task), the bursts, waits and idle share described in the module docstring,
    times in ms; ``span_s`` is the trace's length."""
    running: dict[int, tuple[int, float]] = {}  # cpu -> (tid, since)
    idle_since: dict[int, float] = {}
    idle: dict[int, list[tuple[float, float]]] = defaultdict(list)
    bursts: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    pending: dict[int, tuple[float, str]] = {}  # tid -> (since, "woken" | "preempted")
    woke_at: dict[int, float] = {}
    waits: list[tuple[str, str, float, float, int]] = []
    ipi: dict[str, list[float]] = defaultdict(list)
    first = last = None
    for line in lines:
        parts = line.split(None, 4)
        if len(parts) < 5 or not parts[3].startswith("sched:"):
            continue
        cpu, t = int(parts[1].strip("[]")), float(parts[2].rstrip(":"))
        first = t if first is None else first
        last = t
        event = parts[3].rstrip(":")
        if event == "sched:sched_switch":
            m = _SWITCH.search(parts[4])
            if m is None:
                continue
            prev, state, nxt = int(m.group(1)), m.group(2), int(m.group(3))
            cur = running.get(cpu)
            if prev != 0 and cur is not None and cur[0] == prev:
                bursts[party_of.get(prev, "other")].append((t - cur[1], state.startswith("R")))
            if prev != 0 and state.startswith("R"):
                pending[prev] = (t, "preempted")
            if nxt == 0:
                idle_since[cpu] = t
            elif prev == 0 and cpu in idle_since:
                idle[cpu].append((idle_since.pop(cpu), t))
            running[cpu] = (nxt, t)
            if nxt in pending:
                since, kind = pending.pop(nxt)
                party = party_of.get(nxt, "other")
                waits.append((party, kind, since, t, cpu))
                if kind == "woken" and nxt in woke_at:
                    ipi[party].append(woke_at.pop(nxt) - since)
        elif event in ("sched:sched_waking", "sched:sched_wakeup"):
            m = _WAKE.search(parts[4])
            if m is None:
                continue
            tid = int(m.group(1))
            if event == "sched:sched_waking" and tid not in pending:
                pending[tid] = (t, "woken")
            elif event == "sched:sched_wakeup" and tid in pending:
                woke_at[tid] = t
    cpus = sorted(set(running) | set(idle))
    out: dict[str, dict] = {"span_s": {"s": (last - first) if first is not None else 0.0}}
    for party in PARTIES:
        b = np.array([x[0] for x in bursts[party]]) * 1000
        row: dict[str, float] = {"bursts": float(len(b))}
        if len(b):
            row |= {
                "burst_ms": float(b.mean()),
                "burst_cv": float(b.std() / b.mean()) if b.mean() > 0 else 0.0,
                "burst_p99_ms": float(np.percentile(b, 99)),
                "residual_ms": float((b**2).mean() / (2 * b.mean())) if b.mean() > 0 else 0.0,
                "preempted_share": float(np.mean([x[1] for x in bursts[party]])),
                "cpu_s": float(b.sum() / 1000),
            }
        for kind in ("woken", "preempted"):
            mine = [w for w in waits if w[0] == party and w[1] == kind]
            if not mine:
                continue
            total = sum(w[3] - w[2] for w in mine)
            row[f"{kind}_waits"] = float(len(mine))
            row[f"{kind}_wait_ms"] = 1000 * total / len(mine)
            if len(cpus) == 2 and total > 0:  # the other CPU idle while we waited
                other = {cpus[0]: cpus[1], cpus[1]: cpus[0]}
                spans = {c: sorted(idle[c]) for c in cpus}
                row[f"{kind}_other_idle_share"] = (
                    sum(_overlap(spans[other[w[4]]], w[2], w[3]) for w in mine) / total
                )
        if ipi[party]:
            row["waking_to_wakeup_ms"] = 1000 * float(np.mean(ipi[party]))
        out[party] = row
    return out
