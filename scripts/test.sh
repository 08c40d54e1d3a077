#!/usr/bin/env bash
# Set up (first run only), lint, check the layout, run the whole test suite. CI runs exactly this.
source "$(dirname "$0")/bootstrap.sh"
ruff check .
ruff format --check .  # layout: the files as ruff format writes them (Python; see pyproject)
pytest "$@"
# Pricing-regression gate: exit 1 if revenue, prices or occupancy moved beyond replication
# noise, 2 if a scenario has no baseline (see reports/README.md; set -e stops here either way).
parktwin regress scenarios/*.yaml --baseline reports/baselines/
