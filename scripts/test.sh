#!/usr/bin/env bash
# Set up (first run only), lint, and run the whole test suite. CI runs exactly this.
source "$(dirname "$0")/bootstrap.sh"
ruff check .
pytest "$@"
# Pricing-regression gate: exit 1 if revenue, prices or occupancy moved beyond replication
# noise, 2 if a scenario has no baseline (see reports/README.md; set -e stops here either way).
parktwin regress scenarios/*.yaml --baseline reports/baselines/
