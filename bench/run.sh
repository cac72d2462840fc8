#!/usr/bin/env bash
# The benchmark command (see bench/README.md): bash bench/run.sh [--quick] [--only ROW] ...
# The driver needs only the standard library; every measurement runs in a
# fresh process of the right virtualenv (.venv/legacy or .venv/ref).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="$(command -v python3 || echo "$ROOT/.venv/legacy/bin/python")"
exec "$PYTHON" "$ROOT/bench/run.py" "$@"
