"""The twin of a running lot: ``emit`` (a simulated lot's feed, with faults on a schedule);
forecasts from its state; the mirror and divergence detector build on ``parktwin.adapters``
events."""
