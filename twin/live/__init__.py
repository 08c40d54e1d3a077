"""The twin of a running lot: ``emit`` (a simulated lot's feed, with faults on a schedule);
the mirror, forecast and divergence detector build on ``parktwin.adapters`` events."""
