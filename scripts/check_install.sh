#!/usr/bin/env bash
# ParkTwin as a user installs it, end to end (slow: ~2-5 min, downloads the dependencies):
#   1. build the sdist and, from it, the wheel in an isolated build (python -m build);
#   2. install the wheel with its `sim` and `plot` extras in a new venv outside the repository;
#   3. from an empty folder: parktwin --version, examples --copy x, run x/surface_lot.yaml,
#      sweep --file x/sweeps/..., locking (the shipped study, ~30 s), regress (shipped gate);
#   4. install the wheel alone (no extra) in a second venv: import twin.core and every core
#      module, parktwin --help, and print both installs' sizes.
# tests/test_install.py checks the same faster (no download, light commands); this is the
# check to run before a release. Usage: scripts/check_install.sh [WORK_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
WORK="${1:-$(mktemp -d)}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
case "$WORK/" in "$ROOT"/*) echo "WORK_DIR must be outside the repository" >&2; exit 2 ;; esac
echo "working in $WORK" >&2

"$PY" -m venv "$WORK/buildenv"
"$WORK/buildenv/bin/pip" install --quiet build
"$WORK/buildenv/bin/python" -m build --outdir "$WORK/dist" "$ROOT" >/dev/null
WHEEL="$(ls "$WORK"/dist/parktwin-*.whl)"
echo "built $(basename "$WORK"/dist/*.tar.gz) and $(basename "$WHEEL")" >&2

"$PY" -m venv "$WORK/user"
"$WORK/user/bin/pip" install --quiet "$WHEEL[sim,plot]"
mkdir -p "$WORK/try"
cd "$WORK/try"
P="$WORK/user/bin/parktwin"
"$P" --version
"$P" examples --copy x >/dev/null
"$P" run x/surface_lot.yaml --days 2 --replications 2 --out out/surface >/dev/null
"$P" report out/surface >/dev/null
"$P" sweep --file x/sweeps/surface_lot_price_demand.yaml --days 1 --replications 1 \
    --out out/sweep >/dev/null
"$P" locking --out out/locking >/dev/null
"$P" regress >/dev/null  # the shipped scenarios against the shipped baselines
echo "installed wheel: examples, run, report, sweep, locking and regress work from $WORK/try" >&2

"$PY" -m venv "$WORK/core"
"$WORK/core/bin/pip" install --quiet --no-deps "$WHEEL"
"$WORK/core/bin/python" -c "
import importlib, pkgutil, twin.core
for m in pkgutil.walk_packages(twin.core.__path__, 'twin.core.'):
    importlib.import_module(m.name)
print('twin.core imports with the standard library alone')"
"$WORK/core/bin/pip" install --quiet "$WHEEL"
"$WORK/core/bin/parktwin" --help >/dev/null
# MB in site-packages, without the pip and setuptools every new venv starts with
size() {
    local sp; sp="$(echo "$1"/lib/python3*/site-packages)"
    local all; all="$(du -sk "$sp" | cut -f1)"
    local venv; venv="$(du -skc "$sp"/pip "$sp"/pip-* "$sp"/setuptools "$sp"/setuptools-* \
        "$sp"/pkg_resources "$sp"/_distutils_hack 2>/dev/null | tail -1 | cut -f1)"
    echo $(( (all - venv) / 1024 ))
}
echo "installed size: base (typer, rich) $(size "$WORK/core") MB;" \
     "with sim and plot $(size "$WORK/user") MB" >&2
