#!/usr/bin/env bash
# Runs the whole test suite, from a fresh clone if need be (README: "Running
# the tests"):
#
#   1. tools/bootstrap.sh        .venv/legacy, .venv/modern, .venv/ref,
#                                .venv/ref_modern
#                                (idempotent: seconds when they are current)
#   2. Bazel                     installed with apt-get when missing and root
#   3. bazel test //...          every tests/*_test.py with .venv/legacy
#                                (TF 2.15.1 + Estimator)
#   4. pytest                    the same files with .venv/modern (TF 2.21 on
#                                Python 3.13 + the same Estimator wheel through
#                                estimator_integration/compat), one process
#                                per file
#   5. tools/summarize_tests.py  per-environment results, then the last line
#                                "N passed, N failed, N skipped"
#
# Exits non-zero when any test failed, any step broke, or nothing passed.
# Extra arguments go to `bazel test` (e.g. --test_tag_filters=-cluster).
# HUB_TF1_PYTEST_JOBS (default 2): test files pytest runs at the same time.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() {
  echo "tools/test.sh: $*" >&2
  exit 1
}

# Debian's packages: bazel-bootstrap is Bazel 4.2.3; bazel-platforms provides
# the @platforms repository the WORKSPACE points at.
PLATFORMS_DIR=/usr/share/bazel/tools/platforms
APT_PACKAGES=(bazel-bootstrap bazel-platforms)

ensure_bazel() {
  if command -v bazel >/dev/null && [[ -f "$PLATFORMS_DIR/WORKSPACE" ]]; then
    return 0
  fi
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "tools/test.sh: installing ${APT_PACKAGES[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${APT_PACKAGES[@]}" \
      >/dev/null || die "apt-get install ${APT_PACKAGES[*]} failed"
    command -v bazel >/dev/null || die "bazel is still missing after apt-get"
    [[ -f "$PLATFORMS_DIR/WORKSPACE" ]] || die "$PLATFORMS_DIR is missing"
    return 0
  fi
  cat >&2 <<EOF
tools/test.sh: Bazel 4.2.3 (Debian's bazel-bootstrap) and bazel-platforms are
needed. Install them as root, then run this script again:

    sudo apt-get update && sudo apt-get install -y ${APT_PACKAGES[*]}
EOF
  exit 1
}

echo "== set-up"
bash tools/bootstrap.sh || die "tools/bootstrap.sh failed"
ensure_bazel

OUT="$(mktemp -d "${TMPDIR:-/tmp}/hub_tf1_tests.XXXXXX")"
echo "tools/test.sh: results go to $OUT"

echo "== legacy environment: bazel test //... (.venv/legacy)"
bazel query 'tests(//...)' >"$OUT/bazel_targets.txt" 2>"$OUT/bazel_query.log"
bazel test //... --keep_going --build_event_json_file="$OUT/bep.json" "$@"
bazel_exit=$?

echo "== modern environment: pytest, one process per test file (.venv/modern)"
# One pytest process per file, like Bazel's one target per file: no TF global
# state (eager/graph mode, flags, default graph) leaks between files, and the
# same per-file time limits apply (cluster tests 900 s, others 300 s).
mkdir -p "$OUT/pytest"
run_pytest_file() {  # run_pytest_file tests/<path>_test.py
  local file="$1" name limit stem
  name="$(echo "${file#tests/}" | tr / .)"
  name="${name%.py}"
  limit=300
  # Cluster tests: files named *cluster*, and files with a cluster part that
  # Bazel runs as a separate <name>_cluster_test target (pytest runs both).
  stem="$(basename "$file" .py)"
  if [[ "$file" == *cluster* ]] ||
     grep -q "name = \"${stem%_test}_cluster_test\"" tests/BUILD; then
    limit=900
  fi
  PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
    timeout --kill-after=30 "$limit" \
    .venv/modern/bin/python -m pytest "$file" \
      --rootdir="$ROOT" -p no:cacheprovider -rfEs -q \
      -o python_files='*_test.py' -o junit_suite_name="$name" \
      --junitxml="$OUT/pytest/$name.xml" >"$OUT/pytest/$name.log" 2>&1
  local code=$?
  echo "$code" >"$OUT/pytest/$name.exit"
  case $code in
    0) echo "PASSED   $file"
       # Each distinct skip reason once, with how many tests it skipped.
       sed -nE 's/^SKIPPED \[([0-9]+)\] [^:]+:[0-9]+: /\1\t/p' \
         "$OUT/pytest/$name.log" |
         awk -F'\t' '{n[$2] += $1} END {for (r in n) print "    skipped " n[r] ": " r}' ;;
    5) echo "NO TESTS $file" ;;
    124|137) echo "TIMEOUT  $file (after ${limit}s; log: $OUT/pytest/$name.log)" ;;
    *) echo "FAILED   $file (log: $OUT/pytest/$name.log)"
       grep -E '^(FAILED|ERROR) ' "$OUT/pytest/$name.log" | sed 's/^/    /' ;;
  esac
}
export -f run_pytest_file
export ROOT OUT
find tests -path tests/testdata -prune -o -name '*_test.py' -print | sort |
  xargs -r -n 1 -P "${HUB_TF1_PYTEST_JOBS:-2}" bash -c 'run_pytest_file "$0"'

if [[ -n "${CI:-}" ]]; then
  bazel shutdown >/dev/null 2>&1  # Leave no server behind on CI machines.
fi

echo
echo "== summary"
.venv/modern/bin/python tools/summarize_tests.py \
  --bazel_bep="$OUT/bep.json" --bazel_targets="$OUT/bazel_targets.txt" \
  --bazel_exit="$bazel_exit" \
  --bazel_title="legacy (.venv/legacy, TF 2.15.1 + Estimator): bazel test //..." \
  --pytest_dir="$OUT/pytest" \
  --pytest_title="modern (.venv/modern, TF 2.21 + Estimator via compat): pytest, one run per file"
