#!/usr/bin/env bash
# The README's main command: sets up the environment if needed (seconds when
# it is current) and runs the end-to-end demo in examples/estimator_demo,
# `python -m examples.estimator_demo` (create_module_spec -> export ->
# hub.Module -> train a tf.estimator model -> LatestModuleExporter -> reload
# and show what changed).
#
#   bash tools/run_demo.sh [DEMO ARGS]            .venv/legacy: TF 2.15.1
#   bash tools/run_demo.sh --modern [DEMO ARGS]   .venv/modern: TF 2.21 on
#                                                 Python 3.13, the Estimator
#                                                 through estimator_integration/compat
#
# Other arguments are passed on to the demo; it needs none.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

venv=legacy
if [[ "${1:-}" == "--modern" ]]; then
  venv=modern
  shift
fi
bash tools/bootstrap.sh "$venv"

if [[ ! -f examples/estimator_demo/__main__.py ]]; then
  echo "tools/run_demo.sh: examples/estimator_demo/__main__.py does not exist;" \
    "there is no demo to run in this checkout." >&2
  exit 1
fi
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
  exec ".venv/$venv/bin/python" -m examples.estimator_demo "$@"
