# Sourced by demo.sh and test.sh: make .venv with the project, every optional extra (all) and
# the dev tools installed.
# Re-installs only when pyproject.toml or setup.py changed, so repeated runs start at once.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "setting up .venv with $($PY --version)" >&2
    "$PY" -m venv .venv
fi
STAMP=.venv/.parktwin-installed
WANT="$(cat pyproject.toml setup.py | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    echo "installing parktwin and its dependencies into .venv" >&2
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".[all,dev]"
    echo "$WANT" > "$STAMP"
fi
# Broker tests start their own Mosquitto on a free port: the binary must exist.
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
    echo "installing mosquitto (apt)" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq mosquitto >/dev/null
fi
export PATH="$ROOT/.venv/bin:$PATH:/usr/sbin"
