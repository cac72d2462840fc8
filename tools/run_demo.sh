#!/usr/bin/env bash
# The README's main command: sets up .venv/legacy if needed (seconds when it
# is current) and runs the end-to-end demo, `python -m estimator_integration.demo`
# (create_module_spec -> export -> hub.Module -> train a tf.estimator model ->
# LatestModuleExporter -> reload and show what changed).  Arguments are passed
# on to the demo; it needs none.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash tools/bootstrap.sh legacy

if [[ ! -f estimator_integration/demo.py ]]; then
  echo "tools/run_demo.sh: estimator_integration/demo.py does not exist yet;" \
    "there is no demo to run in this checkout." >&2
  exit 1
fi
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
  exec .venv/legacy/bin/python -m estimator_integration.demo "$@"
