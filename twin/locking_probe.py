"""Reading the CPU a workload uses from ``/proc`` and Redis: what the locking benchmark's
probes and live points count, and over which processes.

The live points (``twin.locking_live.LiveStudy``) and the paced probes of ``measure_inputs``
must count the *same* processes, or their CPU per claim is not comparable: both count our
client processes, our PostgreSQL client backends and every PostgreSQL process that is not a
client backend (the postmaster, the WAL writer, the checkpointer, the background writer, the
autovacuum and replication launchers and workers), whose work the claims cause (commits, dirty
buffers); not other sessions' backends, which on a shared machine are other people's load
(:func:`pg_workload_pids`). Redis's own CPU comes from ``INFO cpu``. Kept apart from
``twin.locking_live`` so that module stays within the size the layering test allows.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "context_switches",
    "host_busy_s",
    "pg_workload_pids",
    "proc_cpu_s",
    "redis_cpu_s",
    "run_queue_s",
    "server_cpu_ms",
    "sum_cpu_s",
    "voluntary_switches",
    "wakeup_ms",
]


def host_busy_s() -> float:
    """CPU seconds all cores have been busy since boot (``/proc/stat``: user, nice, system,
    irq, softirq; not idle, iowait or steal); 0 where it cannot be read."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    except (OSError, ValueError):
        return 0.0
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float | None:
    """CPU seconds a process has run: ``/proc/<pid>/schedstat`` (ns), else ``stat`` (ticks);
    None where neither can be read (another host, no permission)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def run_queue_s(pids: list[int]) -> tuple[float, int]:
    """Seconds ``pids`` have waited on a run queue and how many times they were scheduled in
    (``/proc/<pid>/schedstat`` fields 2 and 3); (0, 0) where it cannot be read."""
    wait, count = 0.0, 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/schedstat").read_text().split()
            wait, count = wait + int(fields[1]) / 1e9, count + int(fields[2])
        except (OSError, ValueError, IndexError):
            continue
    return wait, count


def wakeup_ms(before: tuple[float, int], after: tuple[float, int]) -> float:
    """Mean wait on the run queue per time scheduled in, in ms, between two
    :func:`run_queue_s` readings (NaN when nothing was scheduled)."""
    count = after[1] - before[1]
    return 1000 * (after[0] - before[0]) / count if count > 0 else math.nan


def context_switches(pid: int) -> tuple[int, int] | None:
    """Times process ``pid`` has blocked and has been preempted (``voluntary_ctxt_switches``,
    ``nonvoluntary_ctxt_switches`` in ``/proc/<pid>/status``); None if unreadable."""
    counts: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
                counts[name] = int(value)
    except (OSError, ValueError):
        return None
    if len(counts) < 2:
        return None
    return counts["voluntary_ctxt_switches"], counts["nonvoluntary_ctxt_switches"]


def voluntary_switches(pid: int) -> int | None:
    """Times process ``pid`` has blocked (:func:`context_switches`): each is a wake-up it later
    needs a core for; None if unreadable."""
    both = context_switches(pid)
    return None if both is None else both[0]


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def pg_workload_pids(conn, *, application_name: str | None = None, backend: int | None = None):
    """The PostgreSQL processes whose CPU a workload's claims cost: its own client backends
    (those with ``application_name``, or the one ``backend``), every process that is not a
    client backend (WAL writer, checkpointer, background writer, autovacuum, launchers) and
    the postmaster; not other sessions' client backends (another user's load). ``conn``: an
    open psycopg connection to the server."""
    rows = conn.execute(
        "SELECT pid, backend_type, application_name FROM pg_stat_activity"
    ).fetchall()
    pids = [
        int(pid)
        for pid, kind, app in rows
        if kind != "client backend"
        or (application_name is not None and app == application_name)
        or (backend is not None and int(pid) == backend)
    ]
    postmaster = _parent(pids[0]) if pids else None
    return pids + ([postmaster] if postmaster is not None else [])


def sum_cpu_s(pids: list[int]) -> float | None:
    """CPU seconds run by ``pids`` together (processes that ended count as 0)."""
    if not pids:
        return None
    return sum(cpu for pid in pids if (cpu := proc_cpu_s(pid)) is not None)


def server_cpu_ms(pid: int, fn: Callable[[], object], n: int) -> float | None:
    """Mean CPU of server process ``pid`` (a PostgreSQL backend) per call of ``fn``, in ms."""
    for _ in range(min(50, n)):
        fn()
    start = proc_cpu_s(pid)
    if start is None:
        return None
    for _ in range(n):
        fn()
    end = proc_cpu_s(pid)
    return None if end is None else 1000 * (end - start) / n


def redis_cpu_s(r) -> float:
    """Redis's own CPU seconds since it started (``INFO cpu``: user and system)."""
    info = r.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
