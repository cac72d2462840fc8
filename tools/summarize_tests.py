#!/usr/bin/env python3
"""Counts individual test cases across the Bazel run and the pytest run.

tools/test.sh runs the suite twice: `bazel test //...` with .venv/legacy and
pytest (one process per test file) with .venv/modern.  This script reads what both left behind and prints
one block per environment and then a single last line

    N passed, N failed, N skipped

It exits with status 1 when anything failed or nothing passed, else 0.

Bazel: the Build Event Protocol file (`--build_event_json_file`) names every
test target of the run, its overall status and its `test.xml` (absltest writes
JUnit XML to $XML_OUTPUT_FILE; for a target that writes none, e.g. one that
crashed on import, Bazel generates an XML with one error).  A target whose
status is not PASSED counts at least one failure even if its XML shows none
(timeouts, crashes after the last test), and so does an expected target (from
`bazel query`) that has no result at all (it failed to build).

pytest: one run per test file, each leaving `<name>.xml` (--junitxml) and
`<name>.exit` (its exit status) in --pytest_dir (or a single run given by
--pytest_xml/--pytest_exit).  Exit status 5 (nothing collected) is reported
but is not a failure by itself; 124/137 (killed by `timeout`) is a failure;
any other non-zero status without a failed case in the XML counts as one
failure.

Standard library only: it runs with whatever python3 is at hand.
"""

import argparse
import dataclasses
import json
import os
import sys
from typing import Iterable, Optional
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ElementTree

_PYTEST_NO_TESTS = 5
_TIMEOUT_EXITS = (124, 137)  # timeout(1): TERM, or KILL after the grace.
_TF_SESSION_HELPER = "test_session"


@dataclasses.dataclass
class Counts:
  passed: int = 0
  failed: int = 0
  skipped: int = 0

  def add(self, other: "Counts") -> None:
    self.passed += other.passed
    self.failed += other.failed
    self.skipped += other.skipped

  def __str__(self) -> str:
    return "%d passed, %d failed, %d skipped" % (self.passed, self.failed,
                                                  self.skipped)


@dataclasses.dataclass
class Outcome:
  """The result of one unit of the run (a Bazel target or a test file)."""
  name: str
  status: str
  counts: Counts
  failures: list[str]


def count_cases(
    cases: Iterable[ElementTree.Element]) -> tuple[Counts, list[str]]:
  """Classifies JUnit <testcase> elements as passed, failed or skipped.

  Understands both absltest's dialect (skips are `result="suppressed"` or
  `status="notrun"`) and pytest's (`<skipped>` child elements).  A skipped
  `test_session` is left out: it is tf.test.TestCase's session helper, which
  unittest runs and skips as "Not a test." in every TensorFlow test class
  (conftest.py drops it from pytest runs the same way).

  Returns:
    The counts and the names of the failed cases.
  """
  counts = Counts()
  failures = []
  for case in cases:
    name = ".".join(p for p in (case.get("classname"), case.get("name")) if p)
    tags = {child.tag for child in case}
    if tags & {"failure", "error"}:
      counts.failed += 1
      failures.append(name)
    elif ("skipped" in tags or case.get("result") == "suppressed" or
          case.get("status") == "notrun"):
      if case.get("name") != _TF_SESSION_HELPER:
        counts.skipped += 1
    else:
      counts.passed += 1
  return counts, failures


def junit_file_outcomes(path: str) -> tuple[Counts, list[str]]:
  """count_cases() over all test cases of a JUnit XML file."""
  return count_cases(ElementTree.parse(path).getroot().iter("testcase"))


def _uri_to_path(uri: str) -> str:
  return urllib.request.url2pathname(urllib.parse.urlparse(uri).path)


def bazel_outcomes(bep_path: Optional[str],
                   expected_targets: Iterable[str]) -> list[Outcome]:
  """One Outcome per test target, from a Build Event Protocol JSON file."""
  statuses = {}  # label -> overall status
  xml_files = {}  # (label, run, shard) -> (attempt, path)
  test_labels = set(expected_targets)
  if bep_path and os.path.exists(bep_path):
    with open(bep_path, encoding="utf-8") as f:
      for line in f:
        line = line.strip()
        if not line:
          continue
        event = json.loads(line)
        event_id = event.get("id", {})
        if "targetConfigured" in event_id:
          configured = event.get("configured", {})
          if configured.get("targetKind", "").endswith(" test rule") or (
              "testSize" in configured):
            test_labels.add(event_id["targetConfigured"]["label"])
        elif "testResult" in event_id:
          key = event_id["testResult"]
          for output in event.get("testResult", {}).get("testActionOutput", []):
            if output.get("name") == "test.xml":
              slot = (key["label"], key.get("run"), key.get("shard"))
              attempt = key.get("attempt", 1)
              if slot not in xml_files or xml_files[slot][0] <= attempt:
                xml_files[slot] = (attempt, _uri_to_path(output["uri"]))
        elif "testSummary" in event_id:
          label = event_id["testSummary"]["label"]
          test_labels.add(label)
          statuses[label] = event.get("testSummary", {}).get(
              "overallStatus", "NO_STATUS")

  outcomes = []
  for label in sorted(test_labels):
    status = statuses.get(label, "NO RESULT (not built or not run)")
    counts, failures = Counts(), []
    for (xml_label, _, _), (_, path) in sorted(xml_files.items()):
      if xml_label != label:
        continue
      if os.path.exists(path):
        file_counts, file_failures = junit_file_outcomes(path)
        counts.add(file_counts)
        failures.extend(file_failures)
    if status != "PASSED" and counts.failed == 0:
      counts.failed += 1
      failures.append("%s: %s" % (label, status))
    outcomes.append(Outcome(label, status, counts, failures))
  return outcomes


def pytest_outcomes(xml_path: Optional[str],
                    exit_code: Optional[int],
                    name: Optional[str] = None) -> list[Outcome]:
  """Outcomes of one pytest run, from its --junitxml output and exit status.

  Args:
    xml_path: the JUnit XML file (may be missing if pytest was killed).
    exit_code: pytest's exit status (124/137: killed by `timeout`).
    name: what the run covered (one test file); None to group the cases by
      test module instead.
  """
  by_name = {}
  if xml_path and os.path.exists(xml_path):
    root = ElementTree.parse(xml_path).getroot()
    for case in root.iter("testcase"):
      key = name
      if key is None:
        # pytest's classname is the dotted module path plus the class name.
        classname = case.get("classname") or ""
        key = ".".join(
            p for p in classname.split(".") if not p[:1].isupper()) or "?"
      by_name.setdefault(key, []).append(case)
  outcomes = []
  for key, cases in sorted(by_name.items()):
    counts, failures = count_cases(cases)
    status = "FAILED" if counts.failed else "PASSED"
    outcomes.append(Outcome(key, status, counts, failures))
  label = name or "pytest"
  if exit_code in _TIMEOUT_EXITS:
    # A killed pytest normally leaves no XML; whatever it left still counts.
    outcomes.append(Outcome(label, "TIMEOUT", Counts(failed=1),
                            ["%s: killed by the time limit" % label]))
  elif exit_code == _PYTEST_NO_TESTS:
    outcomes.append(Outcome(label, "NO TESTS", Counts(), []))
  elif exit_code not in (None, 0) and not any(
      o.counts.failed for o in outcomes):
    outcomes.append(Outcome(label, "EXIT %d" % exit_code, Counts(failed=1),
                            ["pytest exited with status %d" % exit_code]))
  return outcomes


def pytest_dir_outcomes(directory: str) -> list[Outcome]:
  """Outcomes of per-file pytest runs: <name>.xml and <name>.exit pairs."""
  outcomes = []
  if not os.path.isdir(directory):
    return outcomes
  for entry in sorted(os.listdir(directory)):
    if not entry.endswith(".exit"):
      continue
    name = entry[:-len(".exit")]
    with open(os.path.join(directory, entry), encoding="utf-8") as f:
      text = f.read().strip()
    exit_code = int(text) if text.lstrip("-").isdigit() else -1
    outcomes.extend(pytest_outcomes(
        os.path.join(directory, name + ".xml"), exit_code, name=name))
  return outcomes


def print_block(title: str, outcomes: list[Outcome]) -> Counts:
  total = Counts()
  print("== %s" % title)
  if not outcomes:
    print("   (no results)")
  for outcome in outcomes:
    total.add(outcome.counts)
    print("   %-52s %-8s %s" % (outcome.name, outcome.status, outcome.counts))
    for failure in outcome.failures:
      print("       FAILED: %s" % failure)
  print("   total: %s" % total)
  return total


def main(argv: Optional[list[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--bazel_bep", help="--build_event_json_file output")
  parser.add_argument("--bazel_targets",
                      help="file listing the expected test targets, one a "
                      "line (bazel query 'tests(//...)')")
  parser.add_argument("--bazel_exit", type=int,
                      help="exit status of `bazel test`")
  parser.add_argument("--bazel_title", default="legacy: bazel test //...")
  parser.add_argument("--pytest_xml", help="pytest --junitxml output")
  parser.add_argument("--pytest_exit", type=int,
                      help="exit status of pytest")
  parser.add_argument("--pytest_dir",
                      help="per-file pytest runs: <name>.xml + <name>.exit")
  parser.add_argument("--pytest_title", default="modern: pytest tests/")
  args = parser.parse_args(argv)

  total = Counts()
  if args.bazel_bep or args.bazel_exit is not None:
    expected = []
    if args.bazel_targets and os.path.exists(args.bazel_targets):
      with open(args.bazel_targets, encoding="utf-8") as f:
        expected = [line.strip() for line in f if line.strip().startswith("/")]
    outcomes = bazel_outcomes(args.bazel_bep, expected)
    # 0: all passed, 3: some tests failed (already counted), 4: no test
    # targets.  Anything else (build or analysis error, crash) is a failure
    # of the run itself.
    if args.bazel_exit not in (None, 0, 3, 4) or (
        args.bazel_exit == 3 and not any(o.counts.failed for o in outcomes)):
      outcomes.append(Outcome("bazel", "EXIT %d" % args.bazel_exit,
                              Counts(failed=1),
                              ["bazel test exited with status %d" %
                               args.bazel_exit]))
    total.add(print_block(args.bazel_title, outcomes))
  if args.pytest_dir:
    total.add(print_block(args.pytest_title,
                          pytest_dir_outcomes(args.pytest_dir)))
  elif args.pytest_xml or args.pytest_exit is not None:
    total.add(print_block(args.pytest_title,
                          pytest_outcomes(args.pytest_xml, args.pytest_exit)))
  print(total)
  return 1 if total.failed or not total.passed else 0


if __name__ == "__main__":
  sys.exit(main())
