"""twin.locking_sched: the scheduler's bursts and waits read from perf's sched tracepoints."""

from __future__ import annotations

import pytest

from twin.locking_sched import sched_summary


def _switch(cpu: int, t: float, prev: int, state: str, nxt: int) -> str:
    return (
        f"{prev} [{cpu:03d}] {t:.6f}: sched:sched_switch: prev_comm=a prev_pid={prev} "
        f"prev_prio=120 prev_state={state} ==> next_comm=b next_pid={nxt} next_prio=120"
    )


def _wake(event: str, cpu: int, t: float, pid: int, target: int) -> str:
    return (
        f"1 [{cpu:03d}] {t:.6f}: sched:{event}: comm=c pid={pid} prio=120 target_cpu={target:03d}"
    )


def test_bursts_waits_and_the_other_cpu_idle_while_a_task_waits() -> None:
    """A client (10) runs 0.1 ms and sleeps; the server (20) wakes it 0.05 ms before it runs
    again (0.01 ms of it the IPI); it is preempted after 0.1 ms by another task (30) and waits
    0.1 ms, all of it while the other CPU sits idle: a wait a single line for both cores would
    not have had."""
    lines = [
        _switch(0, 1.000000, 0, "R", 10),
        _switch(1, 1.000000, 0, "R", 20),
        _switch(0, 1.000100, 10, "S", 0),
        _wake("sched_waking", 1, 1.000200, 10, 0),
        _wake("sched_wakeup", 0, 1.000210, 10, 0),
        _switch(0, 1.000250, 0, "R", 10),
        _switch(1, 1.000300, 20, "S", 0),
        _switch(0, 1.000350, 10, "R", 30),
        _switch(0, 1.000450, 30, "S", 10),
        _switch(1, 1.000500, 0, "R", 20),
        "a line perf prints that is not a tracepoint",
    ]
    s = sched_summary(lines, {10: "client", 20: "server"})
    client, server, other = s["client"], s["server"], s["other"]
    assert client["bursts"] == 2 and client["burst_ms"] == pytest.approx(0.1)
    assert client["burst_cv"] == pytest.approx(0, abs=1e-6)
    assert client["residual_ms"] == pytest.approx(0.05)  # E[S²] / 2E[S] of equal bursts
    assert client["preempted_share"] == 0.5
    assert client["woken_waits"] == 1 and client["woken_wait_ms"] == pytest.approx(0.05)
    assert client["waking_to_wakeup_ms"] == pytest.approx(0.01)
    assert client["woken_other_idle_share"] == pytest.approx(0, abs=1e-6)
    assert client["preempted_wait_ms"] == pytest.approx(0.1)
    assert client["preempted_other_idle_share"] == pytest.approx(1.0)
    assert server["bursts"] == 1 and server["burst_ms"] == pytest.approx(0.3)
    assert other["bursts"] == 1 and other["burst_ms"] == pytest.approx(0.1)
    assert s["span_s"]["s"] == pytest.approx(0.0005)
