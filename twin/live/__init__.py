"""The twin of a running lot: forecasts from its state (and, later, the feed mirror)."""
