#!/usr/bin/env bash
# Set up (first run only) and simulate the default scenario, printing its summary.
# Extra arguments go to `parktwin run`, e.g. scripts/demo.sh --replications 10 --out out/
source "$(dirname "$0")/bootstrap.sh"
exec parktwin run scenarios/downtown_garage.yaml "$@"
