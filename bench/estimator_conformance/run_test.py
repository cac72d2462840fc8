"""Tests of run.py's junit parsing and baseline comparison (synthetic input).

Rules of this file: no TensorFlow, no subprocess; every input is built here.
Run with `.venv/modern/bin/python bench/estimator_conformance/run_test.py`
(it is outside tests/ on purpose: CI's suite does not run it).
"""

import json
import os
import sys
import xml.etree.ElementTree as ET

from absl.testing import absltest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # pylint: disable=g-import-not-at-top,wrong-import-position

_REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests"><testsuite name="pytest" errors="1"
 failures="2" skipped="1" tests="6">
<testcase classname="binary_class_head_test.BinaryClassHead" name="test_a"/>
<testcase classname="binary_class_head_test.BinaryClassHead"
 name="test_float_labels_eval"><failure message="x">AssertionError</failure>
</testcase>
<testcase classname="binary_class_head_test.BinaryClassHead"
 name="test_float_labels_eval"><failure message="x">subtest</failure>
</testcase>
<testcase classname="binary_class_head_test.Outer.Inner" name="test_b">
<error message="error in setup">boom</error></testcase>
<testcase classname="binary_class_head_test.BinaryClassHead" name="test_c">
<skipped message="skip"/></testcase>
<testcase classname="binary_class_head_test" name="test_function"/>
</testsuite></testsuites>
"""
_FILE = "head/binary_class_head_test.py"
_COLLECTION_ERROR = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="0" skipped="0"
 tests="1"><testcase classname="" name="kmeans_test">
<error message="collection failure">No module named 'sklearn'</error>
</testcase></testsuite></testsuites>
"""


class ParseJunitTest(absltest.TestCase):

  def test_counts_and_ids(self):
    result = run.parse_junit(_REPORT, _FILE)
    self.assertEqual(result["passed"], 2)
    self.assertEqual(result["failed"], 3)
    self.assertEqual(result["skipped"], 1)
    self.assertEqual(result["failures"], [
        _FILE + "::BinaryClassHead::test_float_labels_eval",
        _FILE + "::Outer::Inner::test_b",
    ])

  def test_collection_error(self):
    result = run.parse_junit(_COLLECTION_ERROR, "canned/kmeans_test.py")
    self.assertEqual(result["failures"],
                     ["canned/kmeans_test.py::" + run.COLLECTION])
    self.assertEqual((result["passed"], result["failed"]), (0, 1))

  def test_malformed_report_raises(self):
    with self.assertRaises(ET.ParseError):
      run.parse_junit("<testsuites><testcase", _FILE)

  def test_classname_with_package_prefix(self):
    report = ('<testsuites><testsuite><testcase classname="a.b.gc_test.GcTest"'
              ' name="t"><failure/></testcase></testsuite></testsuites>')
    self.assertEqual(run.parse_junit(report, "gc_test.py")["failures"],
                     ["gc_test.py::GcTest::t"])


class CompareTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.baseline = {
        "upstream": {"failures": ["a_test.py::A::t1", "b_test.py::B::t1"]},
        "modern_only": {"failures": {"a_test.py::A::t2": "rounding"}},
    }

  def test_expected_depends_on_tf_version(self):
    files = ["a_test.py", "b_test.py"]
    self.assertEqual(run.expected_failures(self.baseline, "2.15.1", files),
                     {"a_test.py::A::t1", "b_test.py::B::t1"})
    self.assertEqual(run.expected_failures(self.baseline, "2.21.0", files),
                     {"a_test.py::A::t1", "a_test.py::A::t2",
                      "b_test.py::B::t1"})

  def test_expected_restricted_to_files_run(self):
    self.assertEqual(
        run.expected_failures(self.baseline, "2.21.0", ["b_test.py"]),
        {"b_test.py::B::t1"})

  def test_new_and_fixed(self):
    expected = run.expected_failures(self.baseline, "2.21.0",
                                     ["a_test.py", "b_test.py"])
    seen = {"a_test.py::A::t1", "a_test.py::A::t3"}
    new, fixed = run.compare(seen, expected, ["a_test.py", "b_test.py"])
    self.assertEqual(new, ["a_test.py::A::t3"])
    self.assertEqual(fixed, ["a_test.py::A::t2", "b_test.py::B::t1"])

  def test_incomplete_file_is_not_fixed(self):
    expected = run.expected_failures(self.baseline, "2.15.1",
                                     ["a_test.py", "b_test.py"])
    seen = {"a_test.py::A::t1", "b_test.py::<timed out after 600 s>"}
    new, fixed = run.compare(seen, expected, ["a_test.py"])
    self.assertEqual(new, ["b_test.py::<timed out after 600 s>"])
    self.assertEqual(fixed, [])

  def test_no_difference(self):
    expected = {"a_test.py::A::t1"}
    self.assertEqual(run.compare(set(expected), expected, ["a_test.py"]),
                     ([], []))


class UpdatedBaselineTest(absltest.TestCase):

  def test_legacy_run_replaces_upstream_of_files_run(self):
    baseline = {"upstream": {"failures": ["a_test.py::A::old",
                                          "c_test.py::C::kept"]}}
    info = {"tf_version": "2.15.1", "python_version": "3.11.9",
            "compat_active": False}
    result = run.updated_baseline(baseline, info, {"a_test.py::A::new"},
                                  ["a_test.py"], ".venv/legacy")
    self.assertEqual(result["upstream"]["failures"],
                     ["a_test.py::A::new", "c_test.py::C::kept"])
    self.assertEqual(result["upstream"]["tf_version"], "2.15.1")
    self.assertIn("date", result["upstream"])
    self.assertEqual(baseline["upstream"]["failures"],
                     ["a_test.py::A::old", "c_test.py::C::kept"])

  def test_modern_run_keeps_reasons_and_skips_upstream(self):
    baseline = {
        "upstream": {"failures": ["a_test.py::A::t1"]},
        "modern_only": {"failures": {"a_test.py::A::t2": "rounding",
                                     "a_test.py::A::gone": "was broken"}},
    }
    info = {"tf_version": "2.21.0", "compat_active": True}
    seen = {"a_test.py::A::t1", "a_test.py::A::t2", "a_test.py::A::t9"}
    result = run.updated_baseline(baseline, info, seen, ["a_test.py"],
                                  ".venv/modern")
    reasons = result["modern_only"]["failures"]
    self.assertEqual(sorted(reasons), ["a_test.py::A::t2", "a_test.py::A::t9"])
    self.assertEqual(reasons["a_test.py::A::t2"], "rounding")
    self.assertTrue(reasons["a_test.py::A::t9"].startswith("UNREVIEWED"))
    self.assertEqual(result["upstream"], baseline["upstream"])


class WalkAndWriteTest(absltest.TestCase):

  def test_walk_excludes_tpu_and_distribute(self):
    root = self.create_tempdir().full_path
    for rel in ["x_test.py", "tpu/y_test.py", "distribute_z_test.py",
                "keras_distribute_strategy_test.py", "canned/v1/w_v1.py",
                "canned/o_test_v2.py", "canned/helper.py",
                "distribute_lib/q_test.py"]:
      os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
      open(os.path.join(root, rel), "w").close()
    self.assertEqual(run.walk_test_files(root),
                     ["canned/o_test_v2.py", "canned/v1/w_v1.py",
                      "x_test.py"])

  def test_write_json_atomic_leaves_no_temp_file(self):
    directory = self.create_tempdir().full_path
    path = os.path.join(directory, "baseline.json")
    run.write_json_atomic(path, {"k": [1, 2]})
    run.write_json_atomic(path, {"k": [3]})
    with open(path) as f:
      self.assertEqual(json.load(f), {"k": [3]})
    self.assertEqual(os.listdir(directory), ["baseline.json"])

  def test_suite_has_the_readme_count(self):
    self.assertLen(run.SUITE, run.README_COUNT)


if __name__ == "__main__":
  absltest.main()
