"""Runs the Estimator's own upstream test files against hub_tf1's compat layer.

Usage (from anywhere; see bench/estimator_conformance/README.md):

  python3 bench/estimator_conformance/run.py [--venv .venv/modern] [--jobs 2]
      [--files PATTERN] [--shared DIR] [--timeout S] [--write-baseline]

Rules of this file:
* Standard library only; it runs under any Python 3 and drives the venv's
  interpreter in subprocesses: one pytest process per upstream test file,
  cwd in a temporary results directory (never the repository), with
  PYTHONPATH=<repo>:<this dir> and `-p conformance_plugin`, which calls
  `estimator_integration.compat.install()` before any test file is imported.
* The upstream files are run unchanged from the shared directory; nothing of
  them is copied.
* Results (junit XML, logs, summary.json) go to a temporary directory whose
  name is printed.  Only --write-baseline writes into the repository
  (baseline.json, tempfile + os.replace).
* Exit status 0 iff every file ran to completion and no failure is new with
  respect to baseline.json (a timeout or a crash is a new failure).
"""

import argparse
import concurrent.futures
import datetime
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, Iterable, List, Optional, Set, Tuple
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BASELINE_PATH = os.path.join(HERE, "baseline.json")
PLUGIN = "conformance_plugin"
INFO_ENV = "ESTIMATOR_CONFORMANCE_INFO"
ALIASES_ENV = "ESTIMATOR_CONFORMANCE_UNITTEST_ALIASES"
UPSTREAM_DIR = "estimator_upstream_tests"
PACKAGE_DIR = os.path.join("tensorflow_estimator", "python", "estimator")
DEFAULT_TIMEOUT_S = 600

# The 51 non-TPU, non-distribute files whose per-file results the shared
# README lists (paths relative to tensorflow_estimator/python/estimator/),
# with the seconds they took there on TF 2.21: the slowest start first.
SUITE = {
    "canned/rnn_test.py": 52,
    "canned/dnn_linear_combined_test.py": 41,
    "exporter_test.py": 27,
    "keras_test.py": 27,
    "canned/dnn_test_fc_v2.py": 23,
    "canned/linear_test.py": 23,
    "training_test.py": 17,
    "canned/linear_optimizer/python/sdca_test.py": 16,
    "canned/baseline_test.py": 15,
    "canned/dnn_linear_combined_estimator_test.py": 11,
    "canned/dnn_estimator_test.py": 10,
    "canned/linear_estimator_test.py": 10,
    "estimator_test.py": 9,
    "head/binary_class_head_test.py": 9,
    "head/multi_label_head_test.py": 9,
    "extenders_test.py": 7,
    "head/multi_class_head_test.py": 7,
    "hooks/hooks_test.py": 6,
    "keras_premade_model_test.py": 6,
    "head/regression_head_test.py": 6,
    "canned/linear_model_test.py": 6,
    "early_stopping_test.py": 5,
    "hooks/basic_session_run_hooks_test.py": 5,
    "head/multi_head_test.py": 5,
    "head/sequential_head_test.py": 5,
    "model_fn_test.py": 4,
    "util_test.py": 4,
    "object_checkpointing_test.py": 4,
    "head/base_head_test.py": 4,
    "canned/parsing_utils_test.py": 4,
    "canned/canned_estimator_ds_integration_test.py": 4,
    "canned/v1/dnn_linear_combined_test_v1.py": 4,
    "canned/baseline_estimator_test.py": 4,
    "run_config_test.py": 3,
    "export/export_test.py": 3,
    "export/function_test.py": 3,
    "gc_test.py": 3,
    "estimator_export_test.py": 3,
    "inputs/numpy_io_test.py": 3,
    "canned/head_test.py": 3,
    "canned/optimizers_test.py": 3,
    "canned/saved_model_estimator_test.py": 3,
    "canned/timeseries/estimators_test.py": 3,
    "canned/v1/dnn_test_fc_v2_v1.py": 3,
    "canned/v1/linear_test_v1.py": 3,
    "canned/v1/baseline_test_v1.py": 3,
    "canned/v1/dnn_estimator_test_v1.py": 3,
    "canned/timeseries/ar_model_training_test.py": 3,
    "canned/timeseries/ar_model_test.py": 3,
    "canned/optimizers_test_v2.py": 2,
    "canned/kmeans_test.py": 1,
}
README_COUNT = 51
COLLECTION = "<collection>"


def walk_test_files(package_root: str) -> List[str]:
  """Lists the upstream test files outside tpu/ and distribute*.

  Args:
    package_root: .../estimator_upstream_tests/tensorflow_estimator/python/
      estimator.

  Returns:
    Sorted paths relative to `package_root` of the files named *_test.py,
    *_test_v2.py or *_v1.py, without tpu/ and names starting with
    "distribute" or "keras_distribute".
  """
  found = []
  for dirpath, dirnames, filenames in os.walk(package_root):
    dirnames[:] = sorted(d for d in dirnames
                         if d != "tpu" and not d.startswith("distribute"))
    for name in filenames:
      if not name.endswith(("_test.py", "_test_v2.py", "_v1.py")):
        continue
      if name.startswith(("distribute", "keras_distribute")):
        continue
      rel = os.path.relpath(os.path.join(dirpath, name), package_root)
      found.append(rel.replace(os.sep, "/"))
  return sorted(found)


def parse_junit(xml_text: str, rel_file: str) -> Dict[str, object]:
  """Reads one pytest junit XML report.

  Args:
    xml_text: the report's contents.
    rel_file: the test file's path relative to the package root; it prefixes
      every test id.

  Returns:
    {"passed": int, "failed": int, "skipped": int, "failures": sorted list of
    "rel_file::Class::test" ids of failed or errored tests}; a collection
    error has the id "rel_file::<collection>".

  Raises:
    ET.ParseError: the XML is malformed.
  """
  root = ET.fromstring(xml_text)
  stem = os.path.splitext(os.path.basename(rel_file))[0]
  passed = failed = skipped = 0
  failures: Set[str] = set()
  for case in root.iter("testcase"):
    outcomes = {child.tag for child in case}
    if outcomes & {"failure", "error"}:
      failed += 1
      failures.add(_test_id(rel_file, stem, case.get("classname", ""),
                            case.get("name", "")))
    elif "skipped" in outcomes:
      skipped += 1
    else:
      passed += 1
  return {"passed": passed, "failed": failed, "skipped": skipped,
          "failures": sorted(failures)}


def _test_id(rel_file: str, stem: str, classname: str, name: str) -> str:
  if not classname:
    return "%s::%s" % (rel_file, COLLECTION)
  parts = classname.split(".")
  if stem in parts:
    parts = parts[len(parts) - parts[::-1].index(stem):]
  return "::".join([rel_file] + parts + [name])


def expected_failures(baseline: Dict[str, object], tf_version: str,
                      files: Iterable[str]) -> Set[str]:
  """The failures the baseline expects of this TensorFlow on these files.

  Args:
    baseline: the parsed baseline.json.
    tf_version: the interpreter's `tf.__version__`.
    files: the test files that were run (relative paths).

  Returns:
    The upstream failures, plus the modern-only ones when TensorFlow is newer
    than 2.15, restricted to `files`.
  """
  wanted = set(files)
  expected = set(baseline.get("upstream", {}).get("failures", []))
  if not is_legacy(tf_version):
    expected |= set(baseline.get("modern_only", {}).get("failures", {}))
  return {test for test in expected if test.split("::", 1)[0] in wanted}


def is_legacy(tf_version: str) -> bool:
  major, minor = (int(part) for part in tf_version.split(".")[:2])
  return (major, minor) <= (2, 15)


def compare(seen: Set[str], expected: Set[str],
            completed: Iterable[str]) -> Tuple[List[str], List[str]]:
  """Splits the observed failures against the expected ones.

  Args:
    seen: failure ids observed in this run.
    expected: failure ids the baseline expects (see expected_failures).
    completed: files whose run completed with a report; expected failures of
      other files are neither new nor fixed.

  Returns:
    (new, fixed): sorted ids failing now but not expected, and expected ids
    of completed files that did not fail.
  """
  done = set(completed)
  new = sorted(seen - expected)
  fixed = sorted(test for test in expected - seen
                 if test.split("::", 1)[0] in done)
  return new, fixed


def updated_baseline(baseline: Dict[str, object], info: Dict[str, object],
                     seen: Set[str], files: List[str],
                     venv: str) -> Dict[str, object]:
  """The baseline with this run's failures recorded.

  On TensorFlow <= 2.15 (layer inactive) the "upstream" section is replaced;
  on newer TensorFlow the "modern_only" section gets the failures not in
  "upstream", keeping the reasons already written and marking new ones as
  unreviewed.  Entries of files not run are kept.

  Args:
    baseline: the current baseline (may be empty).
    info: the interpreter record written by the plugin.
    seen: failure ids of this run.
    files: the files this run covered.
    venv: the venv used, as given on the command line.

  Returns:
    A new baseline dict.
  """
  run = set(files)
  result = json.loads(json.dumps(baseline))  # Deep copy.
  stamp = {
      "tf_version": info.get("tf_version"),
      "python_version": info.get("python_version"),
      "compat_active": info.get("compat_active"),
      "venv": venv,
      "date": datetime.date.today().isoformat(),
  }
  if is_legacy(str(info.get("tf_version"))):
    kept = [t for t in result.get("upstream", {}).get("failures", [])
            if t.split("::", 1)[0] not in run]
    result["upstream"] = dict(stamp, failures=sorted(set(kept) | seen))
  else:
    upstream = set(result.get("upstream", {}).get("failures", []))
    old = result.get("modern_only", {}).get("failures", {})
    reasons = {t: r for t, r in old.items() if t.split("::", 1)[0] not in run}
    for test in sorted(seen - upstream):
      reasons[test] = old.get(test, "UNREVIEWED: read the log, write a reason")
    result["modern_only"] = dict(stamp, failures=dict(sorted(reasons.items())))
  return result


def write_json_atomic(path: str, data: Dict[str, object]) -> None:
  """Writes `data` as JSON to `path` through a temporary file and a rename.

  Args:
    path: destination.
    data: JSON-serializable dict.
  """
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".baseline.",
                             suffix=".tmp")
  try:
    with os.fdopen(fd, "w") as f:
      json.dump(data, f, indent=2, sort_keys=False)
      f.write("\n")
    os.replace(tmp, path)
  except BaseException:
    os.unlink(tmp)
    raise


def run_file(python: str, shared: str, rel: str, results: str,
             timeout_s: float,
             unittest_aliases: bool = True) -> Dict[str, object]:
  """Runs one upstream test file in its own pytest process.

  Args:
    python: the venv's interpreter.
    shared: the shared directory (holding estimator_upstream_tests/).
    rel: the file, relative to the package root.
    results: the run's results directory.
    timeout_s: seconds before the process group is killed.
    unittest_aliases: whether the plugin puts back the unittest aliases
      Python 3.12 removed.

  Returns:
    {"file", "rc", "seconds", "timed_out", "log", "info" (path), and the
    parse_junit fields, or "error" when there is no usable report}.
  """
  slug = rel.replace("/", "__")[:-len(".py")]
  work = os.path.join(results, slug)
  os.makedirs(work)
  tmp = os.path.join(work, "tmp")
  os.makedirs(tmp)
  xml_path = os.path.join(work, "junit.xml")
  log_path = os.path.join(work, "log.txt")
  info_path = os.path.join(work, "info.json")
  test_path = os.path.join(shared, UPSTREAM_DIR, PACKAGE_DIR, rel)
  env = dict(os.environ)
  env["PYTHONPATH"] = os.pathsep.join([REPO, HERE])
  env[INFO_ENV] = info_path
  env["TEST_TMPDIR"] = tmp
  env["TMPDIR"] = tmp
  env[ALIASES_ENV] = "1" if unittest_aliases else "0"
  cmd = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--import-mode=importlib", "-W", "ignore", "-p", PLUGIN, "-rfE",
         "--junitxml=" + xml_path, test_path]
  start = time.monotonic()
  timed_out = False
  with open(log_path, "wb") as log:
    log.write(("$ " + " ".join(cmd) + "\n").encode())
    log.flush()
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
      rc = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
      timed_out = True
      os.killpg(proc.pid, 9)
      rc = proc.wait()
  seconds = time.monotonic() - start
  shutil.rmtree(tmp, ignore_errors=True)
  result = {"file": rel, "rc": rc, "seconds": round(seconds, 1),
            "timed_out": timed_out, "log": log_path, "info": info_path,
            "passed": 0, "failed": 0, "skipped": 0, "failures": []}
  if timed_out:
    result["error"] = "timed out after %d s" % timeout_s
    return result
  result["pytest_summary"] = pytest_summary(log_path)
  try:
    with open(xml_path) as f:
      result.update(parse_junit(f.read(), rel))
  except (OSError, ET.ParseError) as e:
    result["error"] = "no junit report (rc=%s): %s" % (rc, e)
  return result


def pytest_summary(log_path: str) -> str:
  """pytest's own last summary line ("3 failed, 48 passed ... in 8.22s").

  Args:
    log_path: the file's combined output.

  Returns:
    The line without its "=" padding, or "" when there is none.
  """
  try:
    with open(log_path, errors="replace") as f:
      lines = f.read().splitlines()
  except OSError:
    return ""
  for line in reversed(lines):
    text = line.strip().strip("=").strip()
    if re.match(r"^(\d+ \w+|no tests ran)", text) and " in " in text:
      return text
  return ""


def load_baseline() -> Dict[str, object]:
  if not os.path.exists(BASELINE_PATH):
    return {}
  with open(BASELINE_PATH) as f:
    return json.load(f)


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--venv", default=".venv/modern",
                      help="virtualenv, relative to the repository root or "
                      "absolute (default: %(default)s)")
  parser.add_argument("--jobs", type=int, default=2)
  parser.add_argument("--files", default=None,
                      help="fnmatch pattern on the relative file paths, e.g. "
                      "'head/*' (default: all 51)")
  parser.add_argument("--shared", default=os.path.join(REPO, "..", "shared"),
                      help="directory holding %s/ (default: <repo>/../shared)"
                      % UPSTREAM_DIR)
  parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                      help="seconds per file (default: %(default)s)")
  parser.add_argument("--no-unittest-aliases", dest="unittest_aliases",
                      action="store_false",
                      help="do not put back the unittest.TestCase aliases "
                      "Python 3.12 removed (see conformance_plugin.py)")
  parser.add_argument("--write-baseline", action="store_true",
                      help="record this run's failures in baseline.json")
  args = parser.parse_args(argv)

  venv = args.venv if os.path.isabs(args.venv) else os.path.join(REPO,
                                                                 args.venv)
  python = os.path.join(venv, "bin", "python")
  if not os.path.exists(python):
    print("no interpreter at %s" % python)
    return 2
  shared = os.path.abspath(args.shared)
  package_root = os.path.join(shared, UPSTREAM_DIR, PACKAGE_DIR)
  if not os.path.isdir(package_root):
    print("no upstream tests at %s" % package_root)
    return 2
  walked = walk_test_files(package_root)
  present = {rel for rel in SUITE
             if os.path.isfile(os.path.join(package_root, rel))}
  missing = sorted(set(SUITE) - present)
  extra = sorted(set(walked) - set(SUITE))
  print("upstream files: %d of the README's %d found in %s" % (
      len(present), README_COUNT, package_root))
  print("(walking *_test.py/*_test_v2.py/*_v1.py outside tpu/ and "
        "distribute* finds %d: the README's files except %s, plus %d it does "
        "not list, which are not run: %s)" % (
            len(walked), ", ".join(sorted(set(SUITE) - set(walked))) or
            "none", len(extra), ", ".join(extra) or "none"))
  if len(SUITE) != README_COUNT or missing:
    print("missing from %s: %s" % (package_root, ", ".join(missing)))
    return 2
  files = sorted(SUITE, key=lambda rel: (-SUITE[rel], rel))
  if args.files:
    files = [rel for rel in files if fnmatch.fnmatch(rel, args.files)]
    if not files:
      print("no file matches %r" % args.files)
      return 2
  results = tempfile.mkdtemp(prefix="estimator_conformance_")
  print("venv %s, %d files, %d jobs, results in %s" % (
      venv, len(files), args.jobs, results))
  sys.stdout.flush()

  wall = time.monotonic()
  outcomes = []
  with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
    futures = [pool.submit(run_file, python, shared, rel, results,
                           args.timeout, args.unittest_aliases)
               for rel in files]
    for future in concurrent.futures.as_completed(futures):
      r = future.result()
      outcomes.append(r)
      print("%-50s rc=%-3s %4d passed %3d failed %3d skipped %6.1fs  %s" % (
          r["file"], r["rc"], r["passed"], r["failed"], r["skipped"],
          r["seconds"], r["error"] if "error" in r else
          "(pytest: %s)" % r["pytest_summary"]))
      sys.stdout.flush()
  wall = time.monotonic() - wall
  outcomes.sort(key=lambda r: r["file"])

  info = {}
  for r in outcomes:
    if os.path.exists(r["info"]):
      with open(r["info"]) as f:
        info = json.load(f)
      break
  tf_version = str(info.get("tf_version", "unknown"))
  seen = set()
  incomplete = []
  for r in outcomes:
    seen |= set(r["failures"])
    if "error" in r:
      incomplete.append(r["file"])
      seen.add("%s::<%s>" % (r["file"], r["error"]))
  completed = [r["file"] for r in outcomes if "error" not in r]
  baseline = load_baseline()
  if info:
    expected = expected_failures(baseline, tf_version, files)
  else:
    expected = set()
  new, fixed = compare(seen, expected, completed)

  print()
  print("TensorFlow %s, Python %s, compat layer %s; wall %.0f s" % (
      tf_version, info.get("python_version", "?"),
      "active" if info.get("compat_active") else "inactive", wall))
  print("total: %d passed, %d failed, %d skipped over %d files (%d did not "
        "complete)" % (sum(r["passed"] for r in outcomes),
                       sum(r["failed"] for r in outcomes),
                       sum(r["skipped"] for r in outcomes), len(outcomes),
                       len(incomplete)))
  print("expected failures (baseline): %d, seen: %d" % (len(expected),
                                                         len(seen)))
  print("new failures (%d):" % len(new))
  for test in new:
    print("  " + test)
  print("fixed (in the baseline, passed now) (%d):" % len(fixed))
  for test in fixed:
    print("  " + test)

  summary = {"tf_version": tf_version, "info": info, "venv": venv,
             "wall_seconds": round(wall, 1), "files": outcomes,
             "new": new, "fixed": fixed}
  write_json_atomic(os.path.join(results, "summary.json"), summary)
  print("results: %s" % results)

  if args.write_baseline:
    if not info:
      print("no interpreter record; baseline not written")
      return 1
    if incomplete:
      print("files did not complete (%s); baseline not written" %
            ", ".join(incomplete))
      return 1
    write_json_atomic(BASELINE_PATH, updated_baseline(
        baseline, info, seen, files, args.venv))
    print("wrote %s" % BASELINE_PATH)
    return 0
  return 0 if not new and not incomplete and info else 1


if __name__ == "__main__":
  sys.exit(main())
