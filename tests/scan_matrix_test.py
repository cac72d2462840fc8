"""scan finds every payload kind in every place a module can hide it.

Rules of this file:
* One snippet builds the payload matrix (places x kinds) plus clean modules;
  it runs once under tensorflow_hub 0.15 (.venv/ref) and once under hub_tf1
  (tests/fidelity_lib.py), so both exporters' modules are scanned.
* Nothing of a module runs: only its files are read.
* Where a payload is must be shown by the report itself (variant tags,
  signature/initializer, function and call chain); the test derives the
  expected function names from the module's own graph, not from TF's naming.
* `saved_model_cli scan`'s own code (the TensorFlow of this interpreter) is
  measured on the same modules: whatever it finds, hub_tf1 must find too.
  `matrix_table()` renders both results as the table of docs/SCAN.md.
"""

import atexit
import collections
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Tuple

from absl import logging
from absl.testing import absltest

from hub_tf1 import cli
from hub_tf1.format import module_files
from hub_tf1.inspection import op_policy
from hub_tf1.inspection import scan
from tests import fidelity_lib

# kind -> op type it must be reported as.
KINDS = collections.OrderedDict([
    ("write_file", "WriteFile"),
    ("read_file", "ReadFile"),
    ("matching_files", "MatchingFiles"),
    ("print_v2_to_file", "PrintV2"),
    ("py_function", "EagerPyFunc"),
    ("numpy_function", "PyFunc"),
    ("network_send", "CollectiveBcastSendV2"),
])
# Only meaningful in a table initializer: a text file table whose file name
# is computed, i.e. not one of the module's assets.
TABLE_ONLY_KINDS = {"non_asset_text_file_table": "InitializeTableFromTextFileV2"}

PLACES = [
    "top_default", "top_train_variant_only", "signature_extra_only",
    "control_dependency_only", "unreached", "variable_initializer",
    "table_initializer", "v1_while_body", "v1_cond_branch", "function",
    "nested_function", "while_v2_body", "while_v2_cond", "if_v2_branch",
    "case_branch", "dataset_map",
]

_SNIPPET = r"""
import traceback

KINDS = %(kinds)r
TABLE_ONLY_KINDS = %(table_only)r
PLACES = %(places)r

def payload(kind, tag):
  target = os.path.join(TMP, "payload_" + tag)
  if kind == "write_file":
    return tf.io.write_file(target, "pwned")
  if kind == "read_file":
    return tf.io.read_file(target)
  if kind == "matching_files":
    return tf.io.matching_files(os.path.join(TMP, "*"))
  if kind == "print_v2_to_file":
    return tf.print("pwned", output_stream="file://" + target)
  if kind == "py_function":
    return tf.py_function(lambda: 1.0, [], tf.float32)
  if kind == "numpy_function":
    return tf.numpy_function(lambda: 1.0, [], tf.float64)
  if kind == "network_send":
    return tf.raw_ops.CollectiveBcastSendV2(
        input=tf.constant([1.0]), group_size=2, group_key=1, instance_key=1)
  raise ValueError(kind)

def tie(value, p, control_only=False):
  # `value`, made to depend on payload `p` (by data when it is a tensor).
  if isinstance(p, tf.Tensor) and not control_only and \
      value.dtype != tf.string:
    # Not tf.size: that folds to a constant when the shape is static.
    d = tf.strings.length(p) if p.dtype == tf.string else p
    return value + tf.cast(tf.reduce_sum(d), value.dtype) * 0
  with tf.control_dependencies([p]):
    return tf.identity(value)

def make_module_fn(place, kind, tag):
  def module_fn(train=False):
    x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
    p = lambda: payload(kind, tag)
    y = x * 2.0
    extra = None
    if place == "top_default":
      y = tie(y, p())
    elif place == "top_train_variant_only":
      if train:
        y = tie(y, p())
    elif place == "signature_extra_only":
      extra = tie(x * 3.0, p())
    elif place == "control_dependency_only":
      y = tie(y, p(), control_only=True)
    elif place == "unreached":
      p()
    elif place == "variable_initializer":
      v = tf.compat.v1.get_variable(
          "v", initializer=tie(tf.constant([1.0]), p()))
      y = y + tf.reduce_sum(v)
    elif place == "table_initializer":
      if kind == "non_asset_text_file_table":
        name = tf.strings.join([TMP, "/", "vocab.txt"])
        init = tf.lookup.TextFileInitializer(
            name, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
            tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER)
      else:
        init = tf.lookup.KeyValueTensorInitializer(
            tie(tf.constant(["a", "b"]), p()),
            tf.constant([1, 2], tf.int64))
      table = tf.lookup.StaticHashTable(init, -1)
      y = y + tf.cast(table.lookup(tf.constant("a")), tf.float32)
    elif place == "v1_while_body":
      y = tf.compat.v1.while_loop(lambda i, v: i < 2,
                                  lambda i, v: (i + 1, tie(v, p())),
                                  [tf.constant(0), y])[1]
    elif place == "v1_cond_branch":
      y = tf.compat.v1.cond(tf.reduce_sum(x) > 0,
                            lambda: tie(y, p()), lambda: y)
    elif place in ("function", "nested_function"):
      @tf.function
      def inner(v):
        return tie(v, p())
      @tf.function
      def outer(v):
        return inner(v) if place == "nested_function" else tie(v, p())
      y = outer(y)
    elif place == "while_v2_body":
      y = tf.while_loop(lambda i, v: i < 2,
                        lambda i, v: (i + 1, tie(v, p())),
                        [tf.constant(0), y])[1]
    elif place == "while_v2_cond":
      y = tf.while_loop(
          lambda i, v: tie(tf.cast(i, tf.float32), p()) < 2.0,
          lambda i, v: (i + 1, v), [tf.constant(0), y])[1]
    elif place == "if_v2_branch":
      y = tf.cond(tf.reduce_sum(x) > 0, lambda: tie(y, p()), lambda: y)
    elif place == "case_branch":
      y = tf.switch_case(tf.constant(1), [lambda: y, lambda: tie(y, p())])
    elif place == "dataset_map":
      ds = tf.data.Dataset.from_tensors(y).map(lambda v: tie(v, p()))
      y = tf.data.experimental.get_single_element(ds)
    elif place == "clean":
      y = clean_body(x, y)
    else:
      raise ValueError(place)
    hub.add_signature(inputs=x, outputs=y)
    if extra is not None:
      hub.add_signature("extra", inputs=x, outputs=extra)
  return module_fn

def clean_body(x, y):
  # What ordinary modules do: variables, an asset vocabulary table, logging
  # with tf.compat.v1.Print / tf.print to stderr, functions, control flow.
  vocab = os.path.join(TMP, "tokens.txt")
  with open(vocab, "w") as f:
    f.write("a\nb\n")
  w = tf.compat.v1.get_variable("w", initializer=tf.constant([1.0]))
  table = tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(
      vocab, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64,
      tf.lookup.TextFileIndex.LINE_NUMBER), -1)
  y = y * w + tf.cast(table.lookup(tf.constant("b")), tf.float32)
  y = tf.compat.v1.Print(y, [y], message="y: ")
  @tf.function
  def f(v):
    return tf.cond(tf.reduce_sum(v) > 0, lambda: v + 1.0, lambda: v)
  y = f(y)
  for v2 in (False, True):
    (tf.compat.v1.enable_control_flow_v2 if v2 else
     tf.compat.v1.disable_control_flow_v2)()
    y = tf.compat.v1.while_loop(lambda i, v: i < 2,
                                lambda i, v: (i + 1, v * 1.0),
                                [tf.constant(0), y])[1]
  y = tf.data.experimental.get_single_element(
      tf.data.Dataset.from_tensors(y).map(lambda v: v + 1.0))
  return y

def export(module_fn, path, two_variants):
  tags_and_args = None
  if two_variants:
    tags_and_args = [(set(), {"train": False}), ({"train"}, {"train": True})]
  with tf.Graph().as_default():
    m = hub.Module(hub.create_module_spec(module_fn,
                                          tags_and_args=tags_and_args))
    with tf.compat.v1.Session() as sess:
      # Values are fed, so no initializer (and no payload) runs.
      for v in tf.compat.v1.global_variables():
        v.load([0.0] * int(v.shape[0]), sess)
      m.export(path, sess)

built, failed = {}, {}
cells = [(p, k) for p in PLACES for k in KINDS]
cells += [("table_initializer", k) for k in TABLE_ONLY_KINDS]
cells += [("clean", "none")]
for place, kind in cells:
  tag = place + "__" + kind
  path = os.path.join(TMP, "modules", tag)
  # TF1 while/cond contexts for the v1_ places, functional While/If for
  # the v2 ones, TensorFlow's default for the rest.
  default_v2 = tf.compat.v1.control_flow_v2_enabled()
  if place.startswith("v1_"):
    tf.compat.v1.disable_control_flow_v2()
  elif "_v2_" in place:
    tf.compat.v1.enable_control_flow_v2()
  try:
    export(make_module_fn(place, kind, tag), path,
           two_variants=(place in ("top_train_variant_only", "clean")))
    built[tag] = path
  except Exception:
    failed[tag] = traceback.format_exc()[-2000:]
  finally:
    if default_v2:
      tf.compat.v1.enable_control_flow_v2()
    else:
      tf.compat.v1.disable_control_flow_v2()
emit("built", built)
emit("failed", failed)
""" % {"kinds": list(KINDS), "table_only": list(TABLE_ONLY_KINDS),
       "places": PLACES}

_SMCLI_CODE = r"""
import io, json, sys, contextlib
from tensorflow.python.saved_model import loader_impl
from tensorflow.python.tools import saved_model_cli
out = {}
for path in json.loads(sys.argv[1]):
  sm = loader_impl.parse_saved_model(path)
  found = []
  for mg in sm.meta_graphs:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
      saved_model_cli.scan_meta_graph_def(mg, saved_model_cli._OP_DENYLIST)
    text = buf.getvalue()
    tags = sorted(mg.meta_info_def.tags)
    if "contains the following denylisted ops" in text:
      ops = sorted(o for o in saved_model_cli._OP_DENYLIST if repr(o) in text)
      found.append([tags, ops])
  out[path] = found
print(json.dumps(out))
"""

_MEMO: Dict[str, object] = {}


def build_matrix() -> Dict[str, Dict[str, str]]:
  """Builds the matrix with both implementations, once per process.

  Returns:
    {"original": {tag: module dir}, "hub_tf1": {...}} where tag is
    "PLACE__KIND"; also keeps the build failures under "failed:...".
  """
  if "matrix" not in _MEMO:
    base = tempfile.mkdtemp(prefix="scan_matrix_",
                            dir=os.environ.get("TEST_TMPDIR"))
    atexit.register(shutil.rmtree, base, True)
    result = {}
    for name, reference in (("original", True), ("hub_tf1", False)):
      out = fidelity_lib.run(_SNIPPET, reference, tmp_base=base, timeout=900)
      result[name] = out["built"]
      result["failed:" + name] = out["failed"]
    _MEMO["matrix"] = result
  return _MEMO["matrix"]


def saved_model_cli_findings(paths: List[str]) -> Dict[str, list]:
  """Runs saved_model_cli's own scan function on each module dir.

  Args:
    paths: module directories.

  Returns:
    path -> [[tags, [denylisted ops it reported]], ...] (one entry per
    variant in which it reported something).
  """
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  result = subprocess.run([sys.executable, "-c", _SMCLI_CODE,
                           json.dumps(paths)], env=env, check=True,
                          stdout=subprocess.PIPE, text=True, timeout=600)
  return json.loads(result.stdout.strip().splitlines()[-1])


def _functions_called_by(node, attr_names) -> List[str]:
  names = []
  for attr in attr_names:
    if attr in node.attr:
      value = node.attr[attr]
      if value.HasField("func"):
        names.append(value.func.name)
      names.extend(f.name for f in value.list.func)
  return names


def _all_nodes(graph_def):
  """(function name or "", node) for every node, top level and library."""
  for node in graph_def.node:
    yield "", node
  for function in graph_def.library.function:
    for node in function.node_def:
      yield function.signature.name, node


# place -> (op types of the calling node, attrs naming the called function).
_FUNCTIONAL_PLACES = {
    "while_v2_body": (("While", "StatelessWhile"), ("body",)),
    "while_v2_cond": (("While", "StatelessWhile"), ("cond",)),
    "if_v2_branch": (("If", "StatelessIf"), ("then_branch", "else_branch")),
    "case_branch": (("Case", "StatelessCase"), ("branches",)),
    "dataset_map": (("MapDataset", "ParallelMapDataset",
                     "ParallelMapDatasetV2"), ("f",)),
}
_CALLS = ("PartitionedCall", "StatefulPartitionedCall")


def check_place(place: str, finding: scan.Finding, meta_graph) -> str:
  """"" when `finding` shows it is in `place` of `meta_graph`, else why not."""
  graph_def = meta_graph.graph_def
  top = {n.name: n for n in graph_def.node}
  want_tags = ("train",) if place == "top_train_variant_only" else ()
  if finding.tags != want_tags:
    return "tags %s, expected %s" % (finding.tags, want_tags)
  want_where = {
      "unreached": (), "signature_extra_only": ("signature:extra",),
      "variable_initializer": ("variable initializer",),
      "table_initializer": ("table initializer",),
  }.get(place, ("signature:default",))
  if finding.where != want_where:
    return "where %s, expected %s" % (finding.where, want_where)
  if place in _FUNCTIONAL_PLACES:
    ops, attrs = _FUNCTIONAL_PLACES[place]
    targets = [name for _, n in _all_nodes(graph_def) if n.op in ops
               for name in _functions_called_by(n, attrs)]
    if finding.function not in targets or not finding.call_chain or \
        finding.call_chain[-1] != finding.function:
      return "function %s (chain %s), expected one of %s" % (
          finding.function, finding.call_chain, targets)
    if finding.call_chain[0] not in top:
      return "chain %s does not start at a top-level node" % (
          finding.call_chain,)
    return ""
  if place in ("function", "nested_function"):
    if not finding.call_chain or finding.call_chain[0] not in top or \
        top[finding.call_chain[0]].op not in _CALLS:
      return "chain %s does not start at a call node" % (finding.call_chain,)
    outer = top[finding.call_chain[0]].attr["f"].func.name
    want = [outer]
    if place == "nested_function":
      functions = {f.signature.name: f for f in graph_def.library.function}
      inner = [f for n in functions[outer].node_def if n.op in _CALLS
               for f in _functions_called_by(n, ("f",))]
      if len(inner) != 1:
        return "outer function %s calls %s" % (outer, inner)
      want.append(inner[0])
    if list(finding.call_chain[1:]) != want or finding.function != want[-1]:
      return "chain %s, expected %s" % (finding.call_chain, want)
    return ""
  if finding.function or finding.call_chain:
    return "in function %s, expected the top-level graph" % finding.function
  if place in ("v1_while_body", "v1_cond_branch"):
    key = "while_context" if place == "v1_while_body" else "cond_context"
    from tensorflow.core.protobuf import control_flow_pb2  # pylint: disable=g-import-not-at-top
    parser = (control_flow_pb2.WhileContextDef if key == "while_context"
              else control_flow_pb2.CondContextDef)
    # A context is named SCOPE/while_context (or SCOPE/cond_text): its
    # nodes are under SCOPE/.
    contexts = [parser.FromString(b).context_name.rsplit("/", 1)[0]
                for b in meta_graph.collection_def[key].bytes_list.value]
    if not any(finding.node.startswith(c + "/") for c in contexts):
      return "node %s is in none of the %s %s" % (finding.node, key, contexts)
  if place == "control_dependency_only":
    data_inputs = {i.split(":")[0] for n in graph_def.node for i in n.input
                   if not i.startswith("^")}
    if finding.node in data_inputs:
      return "node %s is also a data input" % finding.node
  return ""


def scan_dir(path: str) -> Tuple[list, List[scan.Finding]]:
  saved_model = module_files.read_saved_model(path)
  return (list(saved_model.meta_graphs),
          scan.scan_meta_graphs(saved_model.meta_graphs))


def matrix_table(matrix) -> str:
  """The docs/SCAN.md table: per place x kind, what each tool finds."""
  cells = sorted(matrix["hub_tf1"])
  smcli = saved_model_cli_findings(
      [matrix[i][c] for i in ("original", "hub_tf1") for c in cells
       if c in matrix[i]])
  kinds = list(KINDS) + list(TABLE_ONLY_KINDS)
  lines = ["| place | " + " | ".join(kinds) + " |",
           "|---" * (len(kinds) + 1) + "|"]
  for place in PLACES:
    row = []
    for kind in kinds:
      tag = place + "__" + kind
      if tag not in matrix["hub_tf1"]:
        row.append("n/a")
        continue
      marks = []
      for impl in ("original", "hub_tf1"):
        path = matrix[impl].get(tag)
        if path is None:
          marks.append("-")
          continue
        _, findings = scan_dir(path)
        ours = any(f.op == (KINDS.get(kind) or TABLE_ONLY_KINDS[kind])
                   for f in findings)
        theirs = bool(smcli[path])
        marks.append("%s/%s" % ("Y" if ours else "N",
                                "Y" if theirs else "N"))
      row.append(marks[0] if marks[0] == marks[1] else " ".join(marks))
    lines.append("| %s | %s |" % (place, " | ".join(row)))
  return "\n".join(lines)


class ScanMatrixTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    fidelity_lib.skip_without_ref(self)
    self.matrix = build_matrix()

  def test_every_cell_built_by_both(self):
    for impl in ("original", "hub_tf1"):
      failed = self.matrix["failed:" + impl]
      self.assertEmpty(failed, "%s could not build: %s" % (
          impl, "\n\n".join("%s:\n%s" % kv for kv in failed.items())))
    self.assertEqual(sorted(self.matrix["original"]),
                     sorted(self.matrix["hub_tf1"]))
    self.assertLen(self.matrix["hub_tf1"],
                   len(PLACES) * len(KINDS) + len(TABLE_ONLY_KINDS) + 1)

  def test_every_payload_found_in_its_place(self):
    problems = []
    for impl in ("original", "hub_tf1"):
      for tag, path in sorted(self.matrix[impl].items()):
        place, kind = tag.split("__")
        if place == "clean":
          continue
        op = KINDS.get(kind) or TABLE_ONLY_KINDS[kind]
        self.assertIn(op, op_policy.FLAGGED_OPS)
        meta_graphs, findings = scan_dir(path)
        by_tags = {tuple(sorted(m.meta_info_def.tags)): m
                   for m in meta_graphs}
        hits = [f for f in findings if f.op == op]
        others = [f.describe() for f in findings if f.op != op]
        if not hits or others:
          problems.append("%s %s: found %s" % (
              impl, tag, [f.describe() for f in findings]))
          continue
        reasons = [check_place(place, f, by_tags[f.tags]) for f in hits]
        if all(reasons):
          problems.append("%s %s: %s" % (impl, tag, "; ".join(reasons)))
        if place == "top_train_variant_only" and any(
            f.tags == () for f in findings):
          problems.append("%s %s: finding in the default variant" % (
              impl, tag))
    self.assertEmpty(problems, "\n".join(problems))

  def test_cli_exit_code_and_json_name_the_payload(self):
    path = self.matrix["hub_tf1"]["while_v2_body__write_file"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
      self.assertEqual(cli.main(["scan", "--json", path]), 1)
    self.assertIn('"WriteFile"', out.getvalue())
    self.assertIn("signature:default", out.getvalue())

  def test_strict_policy_refuses_every_write_payload(self):
    import hub_tf1 as hub  # pylint: disable=g-import-not-at-top
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    for impl in ("original", "hub_tf1"):
      for tag, path in sorted(self.matrix[impl].items()):
        if not tag.endswith("__write_file"):
          continue
        # The snippet's payload target: TMP/payload_TAG, module TMP/modules/TAG.
        target = os.path.join(os.path.dirname(os.path.dirname(path)),
                              "payload_" + tag)
        with tf.Graph().as_default():
          with self.assertRaises(hub.UnsafeModuleError, msg=(impl, tag)):
            hub.Module(path, op_policy="strict")
        self.assertFalse(os.path.exists(target), (impl, tag))

  def test_clean_module_scans_clean(self):
    for impl in ("original", "hub_tf1"):
      path = self.matrix[impl]["clean__none"]
      meta_graphs, findings = scan_dir(path)
      self.assertEmpty([f.describe() for f in findings], impl)
      ops = set()
      for m in meta_graphs:
        ops.update(n.op for _, n in _all_nodes(m.graph_def))
      # The clean module does hold what must not be flagged.
      for alternatives in (["Print"], ["InitializeTableFromTextFileV2"],
                           ["MapDataset"], ["PartitionedCall"],
                           ["If", "StatelessIf"], ["While", "StatelessWhile"],
                           ["Enter"]):
        self.assertTrue(ops.intersection(alternatives), (impl, alternatives))
      self.assertEqual(cli.main(["scan", path]), 0, impl)

  def test_superset_of_saved_model_cli(self):
    paths = [p for impl in ("original", "hub_tf1")
             for p in self.matrix[impl].values()]
    smcli = saved_model_cli_findings(paths)
    missed = []
    for path in paths:
      _, findings = scan_dir(path)
      ours = {(tuple(f.tags), f.op) for f in findings}
      for tags, ops in smcli[path]:
        for op in ops:
          if (tuple(tags), op) not in ours:
            missed.append("%s: %s in %s" % (path, op, tags))
    self.assertEmpty(missed, "\n".join(missed))
    # And saved_model_cli does see at least the top-level WriteFile payload.
    self.assertTrue(smcli[self.matrix["hub_tf1"]["top_default__write_file"]])
    logging.info("scan matrix (hub_tf1 scan / saved_model_cli):\n%s",
                 matrix_table(self.matrix))


if __name__ == "__main__":
  absltest.main()
