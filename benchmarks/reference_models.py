"""Reference SimPy models for the throughput benchmark (M/G/c/c loss system).

The throughput benchmark compares our simulator against two plain-SimPy
implementations of the *same* system, so that "vehicles per second" has a
meaningful baseline:

* :func:`run_idiomatic_simpy` -- SimPy the way tutorials write it (one process
  per vehicle, ``simpy.Resource`` for the spots). This is what a typical user
  would write and is the baseline to beat.
* :func:`run_callback_simpy` -- the fastest plain SimPy we could write for the
  model: no processes, just ``Timeout`` events with callbacks and an integer
  busy-spot counter. This is roughly the ceiling of what SimPy's event loop can
  do, i.e. the per-event cost of SimPy itself.

The model: one lot with ``c`` spots, Poisson arrivals with rate ``lambda``,
lognormal dwell with mean 2 h and coefficient of variation 1, blocked vehicles
leave (no queue, no lanes), flat tariff (revenue = number of parked vehicles),
offered load ``lambda * E[dwell] = 0.9 * c``. By the insensitivity of the
Erlang loss formula the stationary blocking probability is Erlang-B(c, 0.9c)
regardless of the dwell distribution, which gives us a correctness check.

Both models consume identical pre-drawn inputs (:func:`draw_inputs`) and stop
right after the last arrival has been handled, so for the same seed they return
the same ``blocked`` count and ``sim_time_s``.

Run ``python benchmarks/reference_models.py`` for the timing table.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Generator

import numpy as np
import simpy

MEAN_DWELL_S: float = 7200.0
"""Mean dwell time (2 h)."""
SD_DWELL_S: float = 7200.0
"""Dwell standard deviation (coefficient of variation 1)."""
LOAD_PER_SPOT: float = 0.9
"""Offered load per spot: ``lambda * E[dwell] / c``."""


def lognormal_params(mean: float, sd: float) -> tuple[float, float]:
    """Return ``(mu, sigma)`` of the underlying normal for a lognormal with given mean and sd.

    ``sigma**2 = ln(1 + (sd/mean)**2)`` and ``mu = ln(mean) - sigma**2 / 2``.
    """
    sigma2 = math.log1p((sd / mean) ** 2)
    return math.log(mean) - sigma2 / 2.0, math.sqrt(sigma2)


def arrival_rate(c: int) -> float:
    """Poisson arrival rate (vehicles/s) giving offered load ``0.9 * c`` Erlang."""
    return LOAD_PER_SPOT * c / MEAN_DWELL_S


def draw_inputs(c: int, n_vehicles: int, seed: int) -> tuple[list[float], list[float]]:
    """Draw all interarrival times and dwell times up front, in bulk.

    Drawing in bulk with a numpy ``Generator`` keeps RNG cost out of the
    per-event loop, so the benchmark measures the simulation engine, not the
    random-number generator. Interarrivals are drawn first, then dwells, so the
    same ``(c, n_vehicles, seed)`` always gives the same vehicles. Vehicle ``i``
    arrives ``interarrivals[i]`` seconds after vehicle ``i - 1`` (vehicle 0
    after t=0) and would stay ``dwells[i]`` seconds if admitted.

    The arrays are converted to Python lists: indexing a list yields plain
    ``float`` objects, which are much cheaper in the event loop than numpy
    scalars (and keep ``env.now`` a plain ``float``).
    """
    if c < 1:
        raise ValueError(f"c must be >= 1, got {c}")
    if n_vehicles < 1:
        raise ValueError(f"n_vehicles must be >= 1, got {n_vehicles}")
    rng = np.random.default_rng(seed)
    interarrivals = rng.exponential(1.0 / arrival_rate(c), size=n_vehicles)
    mu, sigma = lognormal_params(MEAN_DWELL_S, SD_DWELL_S)
    dwells = rng.lognormal(mean=mu, sigma=sigma, size=n_vehicles)
    return interarrivals.tolist(), dwells.tolist()


def run_idiomatic_simpy(c: int, n_vehicles: int, seed: int) -> dict[str, float]:
    """Simulate the M/G/c/c lot with tutorial-style SimPy (one process per vehicle).

    Why: this is the code a typical SimPy user writes -- a source process that
    yields interarrival timeouts and spawns a ``car`` process per vehicle; each
    car checks ``spots.count`` and either leaves (blocked) or holds a
    ``simpy.Resource`` slot for its dwell. Every admitted vehicle costs a
    process start, a request, a timeout, a release and a process end, and
    ``Resource`` release scans the ``users`` list (O(c)), so this baseline gets
    slower as ``c`` grows.

    Parked vehicles are counted when their request is made (it is granted at
    once because ``count < c``), not after ``yield req``, so the last vehicle
    is counted even though the run stops at its arrival time.

    The run stops when the source process finishes, i.e. right after the last
    vehicle's arrival was handled; departures still pending are ignored. (A
    numeric ``env.run(until=t_last)`` would not do: SimPy schedules that stop
    event as URGENT, so it fires *before* the arrival at the same instant and
    the last vehicle would be lost.)

    Returns ``{"arrivals", "parked", "blocked", "sim_time_s"}``; ``sim_time_s``
    is the time of the last arrival.
    """
    interarrivals, dwells = draw_inputs(c, n_vehicles, seed)
    env = simpy.Environment()
    spots = simpy.Resource(env, capacity=c)
    parked = 0
    blocked = 0

    def car(env: simpy.Environment, dwell: float) -> Generator[simpy.Event, object, None]:
        nonlocal parked, blocked
        if spots.count >= c:
            blocked += 1
            return
        parked += 1
        with spots.request() as req:
            yield req
            yield env.timeout(dwell)

    def source(env: simpy.Environment) -> Generator[simpy.Event, object, None]:
        for interarrival, dwell in zip(interarrivals, dwells, strict=True):
            yield env.timeout(interarrival)
            env.process(car(env, dwell))

    env.run(until=env.process(source(env)))
    return {
        "arrivals": n_vehicles,
        "parked": parked,
        "blocked": blocked,
        "sim_time_s": env.now,
    }


def run_callback_simpy(c: int, n_vehicles: int, seed: int) -> dict[str, float]:
    """Simulate the same M/G/c/c lot with the leanest plain SimPy we could write.

    Why: this isolates the cost of SimPy's event loop itself (heap push/pop,
    ``Timeout`` construction, callback dispatch) from the cost of generators,
    processes and ``Resource`` bookkeeping. There are no processes: each
    arrival is an ``env.timeout(interarrival)`` whose callback checks an
    integer busy counter, schedules the vehicle's departure timeout (callback:
    ``busy -= 1``) if a spot is free, and schedules the next arrival. That is
    the minimum number of events for this model: one per arrival plus one per
    admitted vehicle.

    It uses exactly the draws of :func:`run_idiomatic_simpy` and the same
    floating-point time arithmetic (``env.now + delay``), so for the same seed
    it returns the same ``blocked`` count and ``sim_time_s``. The run stops via
    an event triggered by the last arrival's callback (see
    :func:`run_idiomatic_simpy` for why not ``until=<number>``).

    Returns ``{"arrivals", "parked", "blocked", "sim_time_s"}``; ``sim_time_s``
    is the time of the last arrival.
    """
    interarrivals, dwells = draw_inputs(c, n_vehicles, seed)
    env = simpy.Environment()
    timeout = env.timeout
    done = env.event()
    next_interarrival = iter(interarrivals[1:]).__next__
    next_dwell = iter(dwells).__next__
    busy = 0
    blocked = 0
    remaining = n_vehicles

    def depart(_event: simpy.Event) -> None:
        nonlocal busy
        busy -= 1

    def arrive(_event: simpy.Event) -> None:
        nonlocal busy, blocked, remaining
        dwell = next_dwell()
        if busy >= c:
            blocked += 1
        else:
            busy += 1
            timeout(dwell).callbacks.append(depart)
        remaining -= 1
        if remaining:
            timeout(next_interarrival()).callbacks.append(arrive)
        else:
            done.succeed()

    timeout(interarrivals[0]).callbacks.append(arrive)
    env.run(until=done)
    return {
        "arrivals": n_vehicles,
        "parked": n_vehicles - blocked,
        "blocked": blocked,
        "sim_time_s": env.now,
    }


def erlang_b(c: int, a: float) -> float:
    """Erlang-B blocking probability for ``c`` servers and offered load ``a`` Erlang.

    Uses the numerically stable recursion ``B(0) = 1``,
    ``B(k) = a B(k-1) / (k + a B(k-1))``, which works for any ``c`` (no factorial
    overflow). Cross-checked against scipy in :func:`main`.
    """
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_b_scipy(c: int, a: float) -> float:
    """Erlang-B via scipy: ``B = P(N = c) / P(N <= c)`` for ``N ~ Poisson(a)`` (log space)."""
    from scipy.stats import poisson

    return float(math.exp(poisson.logpmf(c, a) - poisson.logcdf(c, a)))


def main() -> None:
    """Time both references for c = 50, 500, 5000 and print a comparison table."""
    n_vehicles = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    repeats = 3
    seed = 20_240_601
    models = {"idiomatic": run_idiomatic_simpy, "callback": run_callback_simpy}
    t_start = time.perf_counter()

    print(f"M/G/c/c reference models: n_vehicles={n_vehicles}, best of {repeats}, seed={seed}")
    header = ("c", "model", "vehicles/s", "µs/vehicle", "blocked %", "Erlang-B %")
    print("{:>5} {:>10} {:>12} {:>11} {:>10} {:>11}".format(*header))
    for c in (50, 500, 5000):
        a = LOAD_PER_SPOT * c
        b_theory = erlang_b(c, a)
        b_scipy = erlang_b_scipy(c, a)
        assert math.isclose(b_theory, b_scipy, rel_tol=1e-9, abs_tol=1e-300), (b_theory, b_scipy)
        results = {}
        for name, fn in models.items():
            best = math.inf
            for _ in range(repeats):
                t0 = time.perf_counter()
                res = fn(c, n_vehicles, seed)
                best = min(best, time.perf_counter() - t0)
            results[name] = res
            rate = n_vehicles / best
            us_per_vehicle = best / n_vehicles * 1e6
            blocked_pct = 100 * res["blocked"] / n_vehicles
            print(
                f"{c:>5} {name:>10} {rate:>12,.0f} {us_per_vehicle:>11.2f} "
                f"{blocked_pct:>10.3f} {100 * b_theory:>11.3g}"
            )
        assert results["idiomatic"] == results["callback"], results

    t0 = time.perf_counter()
    draw_inputs(50, n_vehicles, seed)
    t_draw = time.perf_counter() - t0
    print(f"(included above) bulk RNG draw for {n_vehicles} vehicles: {t_draw * 1e3:.1f} ms")
    print("idiomatic == callback (parked, blocked, sim_time_s) for every c: OK")

    # Erlang-B check at c=50, a=45 over independent seeds (fast callback model).
    c, a, n_seeds = 50, 45.0, 10
    fractions = np.array(
        [run_callback_simpy(c, n_vehicles, s)["blocked"] / n_vehicles for s in range(n_seeds)]
    )
    mean = fractions.mean()
    half = 1.96 * fractions.std(ddof=1) / math.sqrt(n_seeds)
    print(
        f"Erlang-B check c={c}, a={a:g}: simulated {100 * mean:.3f}% ± {100 * half:.3f}% "
        f"(95% CI, {n_seeds} seeds) vs theory {100 * erlang_b(c, a):.3f}%"
    )
    print(f"total wall time {time.perf_counter() - t_start:.1f} s")


if __name__ == "__main__":
    main()
