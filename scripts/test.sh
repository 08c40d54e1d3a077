#!/usr/bin/env bash
# Set up (first run only), lint, and run the whole test suite. CI runs exactly this.
source "$(dirname "$0")/bootstrap.sh"
ruff check .
pytest "$@"
