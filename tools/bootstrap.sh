#!/usr/bin/env bash
# Creates the project's virtualenvs under .venv/ from the pinned requirement
# files, idempotently: a venv whose stamp matches its pins is left alone.
#
#   .venv/legacy  TF 2.15.1 + tf-estimator-nightly (the main environment)
#   .venv/modern  TF 2.21 (core only: no Estimator exists there)
#   .venv/ref     tensorflow_hub 0.15.0 on top of .venv/legacy (interop and
#                 benchmark reference; never imported by our own code)
#
# Usage: tools/bootstrap.sh [legacy|modern|ref ...]   (default: all three)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${HUB_TF1_BASE_PYTHON:-$(command -v python3.11 || command -v python3)}"
PIP_FLAGS=(--disable-pip-version-check --no-input -q)

stamp_of() {  # The content hash that decides whether a venv is current.
  cat "$@" tools/bootstrap.sh | sha256sum | cut -d' ' -f1
}

venv_current() {  # venv_current NAME STAMP
  [[ -x ".venv/$1/bin/python" && -f ".venv/$1/.stamp" && "$(cat ".venv/$1/.stamp")" == "$2" ]]
}

make_venv() {  # make_venv NAME
  rm -rf ".venv/$1"
  "$PYTHON" -m venv ".venv/$1"
  ".venv/$1/bin/pip" install "${PIP_FLAGS[@]}" --upgrade "pip==24.3.1"
}

bootstrap_legacy() {
  local stamp; stamp="$(stamp_of requirements/legacy.txt requirements/legacy-estimator.txt)"
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

bootstrap_modern() {
  local stamp; stamp="$(stamp_of requirements/modern.txt)"
  venv_current modern "$stamp" && return 0
  echo "bootstrap: creating .venv/modern (TensorFlow 2.21)"
  make_venv modern
  .venv/modern/bin/pip install "${PIP_FLAGS[@]}" -r requirements/modern.txt
  echo "$stamp" > .venv/modern/.stamp
}

bootstrap_ref() {
  bootstrap_legacy
  local stamp; stamp="$(stamp_of requirements/ref.txt requirements/legacy.txt requirements/legacy-estimator.txt)"
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

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(legacy modern ref)
for t in "${targets[@]}"; do
  "bootstrap_$t"
done
