"""The twin of a running lot: ``emit`` (a simulated lot's feed, with faults on a schedule),
the mirror of a live feed (``mirror``), forecasts from its state (``forecast``) and the
divergence detector (``divergence``); they build on ``parktwin.adapters`` events."""
