"""Search tariff parameters for an objective, with common random numbers and confidence intervals.

A tariff search asks one question many times: "is this price better than that one?". Over a
noisy simulation the answer is only trustworthy if the noise does not change from candidate to
candidate, so every candidate here is simulated with the **same seed and the same replication
indexes** (common random numbers, :mod:`twin.sim.rng`): replication *r* of every candidate sees
the same drivers arrive at the same instants wanting the same stays and carrying the same
budgets, and only what the tariff does with them differs. Two consequences:

* The objective is a deterministic function of the parameters (same inputs, same answer), so a
  grid is reproducible and ``scipy.optimize`` does not chase noise.
* Differences between candidates are *paired*; their t intervals
  (:func:`twin.stats.paired_difference`) are much narrower than the intervals of the
  candidates themselves, which is what lets the search say whether the best candidate is
  really better than the runner-up.

Objectives (see ``docs/optimize.md`` for the reasoning):

``revenue``
    Maximise revenue per day. With ``max_blocking`` (pp), candidates whose mean *turned-away*
    share (blocked + reneged: drivers willing to pay who found no space) exceeds the cap are
    penalised: each pp over the cap costs a whole day's revenue at the current tariff.
``occupancy-target``
    Minimise the squared gap (pp²) between the mean occupancy in a *window* and ``target``
    (Shoup's 85 %). Which of two tariffs comes closer is judged per replication, on the
    absolute gaps ``|occupancy_r − target|`` (paired). The window is a fixed set of days and
    hours of the day; by default the busiest four consecutive hours of the busier day type
    (weekdays or weekend) at the current tariff, because that is when a lot is scarce and what
    the 85 % rule is about (an all-day mean of a lot that empties every night can never reach
    85 %).
``blocking``
    Minimise the turned-away share subject to revenue per day of at least ``min_revenue``
    (default: the current tariff's revenue, i.e. "turn fewer drivers away without earning
    less"; 0 disables the floor). Each 1 % of revenue short of the floor costs 100 pp. Ties
    (e.g. several prices with nobody turned away) go to the higher revenue.

Penalties are a device for the search; the statistics (intervals, paired comparisons) are
always about the figure itself: revenue, the turned-away share, the gap to the target.

The package, by what each part does: :mod:`~twin.optimize.params` (the searched parameters,
the occupancy window, the settings), :mod:`~twin.optimize.objectives` (the objective and the
evaluator that simulates candidates with common random numbers), :mod:`~twin.optimize.search`
(grid or scipy search, ranking, the result) and :mod:`~twin.optimize.plots` (the picture).
Everything public is importable from ``twin.optimize`` as before.
"""

from __future__ import annotations

from twin.optimize.objectives import Evaluation, Progress, key_figures
from twin.optimize.params import (
    DEFAULT_WINDOW_HOURS,
    NUMERIC_KEYS_HELP,
    OBJECTIVES,
    MethodName,
    ObjectiveName,
    OptimizeError,
    OptimizeSpec,
    ParamRange,
    Window,
    busiest_window,
    make_spec,
    parse_param,
    parse_window,
)
from twin.optimize.plots import plot_optimization
from twin.optimize.search import (
    OptimizationResult,
    as_scenario,
    build_table,
    check_params,
    default_param,
    optimize,
)

__all__ = [
    "DEFAULT_WINDOW_HOURS",
    "NUMERIC_KEYS_HELP",
    "OBJECTIVES",
    "Evaluation",
    "MethodName",
    "ObjectiveName",
    "OptimizationResult",
    "OptimizeError",
    "OptimizeSpec",
    "ParamRange",
    "Progress",
    "Window",
    "as_scenario",
    "build_table",
    "busiest_window",
    "check_params",
    "default_param",
    "key_figures",
    "make_spec",
    "optimize",
    "parse_param",
    "parse_window",
    "plot_optimization",
]
