#!/usr/bin/env bash
# Creates the project's virtualenvs under .venv/ from the pinned requirement
# files, idempotently: a venv whose stamp matches its pins is left alone.
#
#   .venv/legacy  TF 2.15.1 + tf-estimator-nightly (the main environment)
#   .venv/modern  TF 2.21 + tf-keras 2.21 + tf-estimator-nightly on the newest
#                 Python that TF 2.21 supports and pyenv here has (3.13, then
#                 3.12; else 3.11, with the reason printed)
#   .venv/ref     tensorflow_hub 0.15.0 on top of .venv/legacy (interop and
#                 benchmark reference; never imported by our own code)
#   .venv/ref_modern
#                 tensorflow_hub 0.16.1 on top of .venv/modern (the same for
#                 the TF2 APIs on TF 2.21: hub.load, hub.KerasLayer)
#   .venv/plot    matplotlib only (requirements/plot.txt): bench/run.py draws
#                 bench/RESULTS.png with it; independent of the TF venvs
#
# Usage: tools/bootstrap.sh [legacy|modern|ref|ref_modern|plot ...]   (default: all five)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${HUB_TF1_BASE_PYTHON:-$(command -v python3.11 || command -v python3)}"
PYENV_VERSIONS="${PYENV_ROOT:-$HOME/.pyenv}/versions"
PIP_FLAGS=(--disable-pip-version-check --no-input -q)

stamp_of() {  # stamp_of FUNCTION FILE...: what decides whether a venv is current.
  # The pins and the code that builds this venv (not the whole script, so
  # that editing one venv's recipe does not rebuild the others).
  local fn="$1"; shift
  { cat "$@"; declare -f make_venv $fn; } | sha256sum | cut -d' ' -f1
}

venv_current() {  # venv_current NAME STAMP
  [[ -x ".venv/$1/bin/python" && -f ".venv/$1/.stamp" && "$(cat ".venv/$1/.stamp")" == "$2" ]]
}

make_venv() {  # make_venv NAME [PYTHON]
  rm -rf ".venv/$1"
  "${2:-$PYTHON}" -m venv ".venv/$1"
  ".venv/$1/bin/pip" install "${PIP_FLAGS[@]}" --upgrade "pip==24.3.1"
}

bootstrap_legacy() {
  local stamp; stamp="$(stamp_of bootstrap_legacy requirements/legacy.txt requirements/legacy-estimator.txt)"
  venv_current legacy "$stamp" && return 0
  echo "bootstrap: creating .venv/legacy (TensorFlow 2.15.1 + tf-estimator-nightly)"
  make_venv legacy
  local pip=.venv/legacy/bin/pip
  # tensorflow 2.15.1 depends on tensorflow-estimator 2.15, which installs the
  # same 'tensorflow_estimator' package as tf-estimator-nightly.  Order is
  # fixed: everything pinned first, then the 2.15 estimator is removed and the
  # nightly installed alone, so its files are the ones on disk.
  "$pip" install "${PIP_FLAGS[@]}" -r requirements/legacy.txt
  "$pip" uninstall "${PIP_FLAGS[@]}" -y tensorflow-estimator
  "$pip" install "${PIP_FLAGS[@]}" --no-deps --force-reinstall \
    "$(grep -E '^tf-estimator-nightly==' requirements/legacy-estimator.txt)"
  echo "$stamp" > .venv/legacy/.stamp
}

modern_python() {  # Prints the interpreter for .venv/modern; reasons go to stderr.
  if [[ -n "${HUB_TF1_MODERN_PYTHON:-}" ]]; then
    echo "$HUB_TF1_MODERN_PYTHON"; return 0
  fi
  local v candidate
  for v in 3.13 3.12; do  # TF 2.21 supports 3.10-3.13.
    for candidate in "$PYENV_VERSIONS"/$v.*/bin/python$v "$(command -v python$v || true)"; do
      if [[ -x "$candidate" ]]; then echo "$candidate"; return 0; fi
    done
  done
  echo "bootstrap: no Python 3.13 or 3.12 found (looked in $PYENV_VERSIONS and" \
       "on PATH); .venv/modern falls back to $PYTHON" >&2
  echo "$PYTHON"
}

bootstrap_modern() {
  local python; python="$(modern_python)"
  local stamp; stamp="$(stamp_of "bootstrap_modern modern_python" requirements/modern.txt requirements/modern-estimator.txt)-$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  venv_current modern "$stamp" && return 0
  echo "bootstrap: creating .venv/modern (TensorFlow 2.21 + tf-estimator-nightly, $("$python" --version))"
  make_venv modern "$python"
  local pip=.venv/modern/bin/pip
  if [[ "$("$python" -c 'import sys; print(sys.version_info[:2] == (3, 13))')" == True ]]; then
    "$pip" install "${PIP_FLAGS[@]}" -r requirements/modern.txt
  else
    # The full pins were resolved on 3.13 (numpy 2.5 needs >= 3.12, ...): on
    # another Python pin only what decides behaviour and let pip resolve the rest.
    echo "bootstrap: $("$python" --version) is not 3.13; installing only the" \
         "tensorflow, tf_keras, pytest and crc32c pins of requirements/modern.txt"
    "$pip" install "${PIP_FLAGS[@]}" $(grep -E '^(tensorflow|tf_keras|keras|pytest|crc32c)==' requirements/modern.txt)
  fi
  "$pip" install "${PIP_FLAGS[@]}" --no-deps \
    "$(grep -E '^tf-estimator-nightly==' requirements/modern-estimator.txt)"
  echo "$stamp" > .venv/modern/.stamp
}

bootstrap_ref() {
  bootstrap_legacy
  local stamp; stamp="$(stamp_of bootstrap_ref requirements/ref.txt requirements/legacy.txt requirements/legacy-estimator.txt)"
  venv_current ref "$stamp" && return 0
  echo "bootstrap: creating .venv/ref (tensorflow_hub 0.15.0 over .venv/legacy)"
  make_venv ref
  # The reference shares the legacy venv's TensorFlow through a .pth file
  # instead of a second 500 MB install.
  local site_legacy site_ref
  site_legacy="$(.venv/legacy/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  site_ref="$(.venv/ref/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  echo "$site_legacy" > "$site_ref/legacy_venv.pth"
  .venv/ref/bin/pip install "${PIP_FLAGS[@]}" --no-deps -r requirements/ref.txt
  echo "$stamp" > .venv/ref/.stamp
}

bootstrap_ref_modern() {
  bootstrap_modern
  local stamp; stamp="$(stamp_of bootstrap_ref_modern requirements/ref_modern.txt requirements/modern.txt requirements/modern-estimator.txt)-$(cat .venv/modern/.stamp)"
  venv_current ref_modern "$stamp" && return 0
  echo "bootstrap: creating .venv/ref_modern (tensorflow_hub 0.16.1 over .venv/modern)"
  # The same interpreter as .venv/modern, so its site-packages (TF 2.21,
  # tf-keras) are importable through a .pth file; only the hub wheel and the
  # setuptools it needs (requirements/ref_modern.txt) are installed here.
  local python; python="$(.venv/modern/bin/python -c 'import sys; print(sys._base_executable)')"
  make_venv ref_modern "$python"
  local site_modern site_ref
  site_modern="$(.venv/modern/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  site_ref="$(.venv/ref_modern/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  echo "$site_modern" > "$site_ref/modern_venv.pth"
  .venv/ref_modern/bin/pip install "${PIP_FLAGS[@]}" --no-deps -r requirements/ref_modern.txt
  echo "$stamp" > .venv/ref_modern/.stamp
}

bootstrap_plot() {
  local stamp; stamp="$(stamp_of bootstrap_plot requirements/plot.txt)"
  venv_current plot "$stamp" && return 0
  echo "bootstrap: creating .venv/plot (matplotlib for bench/RESULTS.png)"
  make_venv plot
  .venv/plot/bin/pip install "${PIP_FLAGS[@]}" -r requirements/plot.txt
  echo "$stamp" > .venv/plot/.stamp
}

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(legacy modern ref ref_modern plot)
for t in "${targets[@]}"; do
  "bootstrap_$t"
done
