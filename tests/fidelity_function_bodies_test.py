"""Modules made and applied inside function bodies, as in tensorflow_hub 0.15.

The same snippet runs against the original (.venv/ref) and hub_tf1.

Rules of this file:
- Function bodies: `function.Defun`, `tf.function` traced in a TF1 graph
  and `tf.compat.v1.wrap_function` called in one, each with and without a
  stand-in TPU replicate context.  The stand-in is what the original looks
  for: the function graph's control-flow context is an instance of a class
  whose name ends in "TPUReplicateContext" (here an `XLAControlFlowContext`,
  the base class of the real one), entered inside the body; no TPU needed.
- Each body constructs the module and applies it twice; the outer graph's
  `global_variables_initializer()` runs once, then the function twice.
  Expected values come from the original applying the module twice in the
  outer graph, never from constants here.
- The module has a counter bumped by an `assign_add` that the output
  reaches only through a control dependency (it must run: 2 per run), and
  a second counter bumped by an op no signature needs (pruned: stays 0).
- Under the stand-in context the original works and hub_tf1 must equal it;
  without it the original fails (its state stays in the function, so the
  outer `init` is not an element of the outer graph), which this file
  asserts, while hub_tf1 lifts the state and must give the same values.
- Errors: a module with per-application collections (an asset) under the
  stand-in context raises the original's type and phrase; a module scope
  already taken in the outer graph raises the original's type
  (AssertionError) and hub_tf1 names the scope and the function body.
- Beyond the original: `Dataset.map` in a TF1 graph works in hub_tf1.
- `wrap_function` with no enclosing graph (eager) keeps the state in the
  function, as the original does; both give the outer graph's values.
"""

from absl.testing import absltest

from tests import fidelity_lib

_SNIPPET = r"""
from tensorflow.python.framework import function as function_lib
from tensorflow.python.ops import control_flow_ops

class StandInTPUReplicateContext(control_flow_ops.XLAControlFlowContext):
  pass

def module_fn():
  x = tf.compat.v1.placeholder(tf.float32, [2], name="x")
  w = tf.compat.v1.get_variable("w", initializer=[2.0, 3.0])
  counter = tf.compat.v1.get_variable("counter", initializer=0,
                                      dtype=tf.int32, trainable=False)
  unused = tf.compat.v1.get_variable("unused_counter", initializer=0,
                                     dtype=tf.int32, trainable=False)
  tf.compat.v1.assign_add(unused, 100, name="unused_bump")
  bump = tf.compat.v1.assign_add(counter, 1, name="bump")
  with tf.control_dependencies([bump]):
    y = tf.identity(x * w, name="y")
  hub.add_signature(inputs=x, outputs=y)

def asset_fn():
  x = tf.compat.v1.placeholder(tf.float32, [2], name="x")
  path = os.path.join(TMP, "vocab.txt")
  with open(path, "w") as f:
    f.write("a\nb\n")
  tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS,
                                 tf.constant(path, name="asset_path"))
  hub.add_signature(inputs=x, outputs=x + 1.0)

SPECS = {"main": hub.create_module_spec(module_fn),
         "asset": hub.create_module_spec(asset_fn)}

def apply_twice(x, spec_name, tpu):
  context = None
  if tpu:
    context = StandInTPUReplicateContext()
    context.Enter()
  try:
    m = hub.Module(SPECS[spec_name], name="m")
    return m(x) + m(x)
  finally:
    if context is not None:
      context.Exit()

def describe(e):
  return {"error": type(e).__name__, "message": str(e),
          "is_assertion_error": isinstance(e, AssertionError)}

def build(kind, x, spec_name, tpu):
  if kind == "outer":
    return apply_twice(x, spec_name, tpu=False)
  if kind == "defun":
    @function_lib.Defun(tf.float32)
    def defun_body(v):
      return apply_twice(v, spec_name, tpu)
    out = defun_body(x)
    out.set_shape([2])
    return out
  if kind == "tf_function":
    @tf.function
    def function_body(v):
      return apply_twice(v, spec_name, tpu)
    return function_body(x)
  if kind == "wrap_function":
    def wrapped_body(v):
      return apply_twice(v, spec_name, tpu)
    wrapped = tf.compat.v1.wrap_function(
        wrapped_body, [tf.TensorSpec([2], tf.float32)])
    return wrapped(x)
  if kind == "dataset_map":
    dataset = tf.data.Dataset.from_tensors(x).map(
        lambda v: apply_twice(v, spec_name, tpu))
    iterator = tf.compat.v1.data.make_initializable_iterator(dataset.repeat())
    tf.compat.v1.add_to_collection("iterator_init", iterator.initializer)
    return iterator.get_next()
  raise ValueError(kind)

def run_case(kind, tpu, spec_name="main", taken=False):
  with tf.Graph().as_default() as g:
    x = tf.constant([1.0, 10.0])
    if taken:
      tf.constant(0, name="m")
    try:
      out = build(kind, x, spec_name, tpu)
      init = tf.compat.v1.global_variables_initializer()
      variables = {v.op.name: v for v in tf.compat.v1.global_variables()}
      with tf.compat.v1.Session() as sess:
        sess.run(init)
        sess.run(tf.compat.v1.get_collection("iterator_init"))
        initial = {k: sess.run(v).tolist() for k, v in variables.items()}
        runs = [sess.run(out).tolist() for _ in range(2)]
        final = {k: sess.run(v).tolist() for k, v in variables.items()}
      return {"outer_graph_ops": sorted(variables), "initial": initial,
              "runs": runs, "final": final}
    except Exception as e:  # pylint: disable=broad-except
      return describe(e)

emit("outer", run_case("outer", False))
emit("outer_asset", run_case("outer", False, "asset"))
for kind in ("defun", "tf_function", "wrap_function"):
  for tpu in (True, False):
    label = "%s_%s" % (kind, "tpu" if tpu else "plain")
    emit(label, run_case(kind, tpu))
  emit(kind + "_tpu_asset", run_case(kind, True, "asset"))
  emit(kind + "_plain_asset", run_case(kind, False, "asset"))
  emit(kind + "_tpu_taken", run_case(kind, True, taken=True))
emit("dataset_map", run_case("dataset_map", False))

# wrap_function with no enclosing graph (TF2 eager): the state stays in the
# function's graph, initialized through a pruned function.
try:
  eager_wrapped = tf.compat.v1.wrap_function(
      lambda v: apply_twice(v, "main", tpu=False),
      [tf.TensorSpec([2], tf.float32)])
  eager_wrapped.prune([], [
      op for op in eager_wrapped.graph.get_operations()
      if op.name.startswith("m/") and op.name.endswith("/Assign")])()
  emit("eager_wrap_function", {"runs": [
      eager_wrapped(tf.constant([1.0, 10.0])).numpy().tolist()
      for _ in range(2)]})
except Exception as e:  # pylint: disable=broad-except
  emit("eager_wrap_function", describe(e))
"""

_KINDS = ("defun", "tf_function", "wrap_function")


class FunctionBodiesTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    if fidelity_lib.ref_available():
      cls.ref, cls.ours = fidelity_lib.run_both(_SNIPPET)

  def setUp(self):
    super().setUp()
    fidelity_lib.skip_without_ref(self)

  def assertSameAsOuter(self, result, outer, label):
    self.assertNotIn("error", result, "%s: %s" % (label, result))
    self.assertEqual(result, outer, label)

  def test_outer_graph_baseline(self):
    self.assertEqual(self.ours["outer"], self.ref["outer"])
    final = self.ref["outer"]["final"]
    self.assertEqual(final["m/counter"], 4)  # 2 applications x 2 runs.
    self.assertEqual(final["m/unused_counter"], 0)

  def test_under_tpu_context_equals_original(self):
    outer = self.ref["outer"]
    for kind in _KINDS:
      label = kind + "_tpu"
      with self.subTest(label):
        self.assertSameAsOuter(self.ref[label], outer, "original " + label)
        self.assertSameAsOuter(self.ours[label], outer, label)

  def test_without_tpu_context_works_where_original_fails(self):
    outer = self.ref["outer"]
    for kind in _KINDS:
      label = kind + "_plain"
      with self.subTest(label):
        self.assertEqual(self.ref[label]["error"], "ValueError")
        self.assertIn("is not an element of this graph",
                      self.ref[label]["message"])
        self.assertSameAsOuter(self.ours[label], outer, label)

  def test_collections_under_tpu_context_fail_as_original(self):
    for kind in _KINDS:
      label = kind + "_tpu_asset"
      with self.subTest(label):
        ref, ours = self.ref[label], self.ours[label]
        self.assertEqual(ref["error"], "NotImplementedError", ref)
        # tf.function puts the traceback first: the phrase is the last line.
        phrase = ref["message"].split(" Collections found")[0].split(
            "NotImplementedError: ")[-1]
        self.assertEqual(ours["error"], ref["error"], ours)
        self.assertIn(phrase, ours["message"])
        self.assertIn("asset_filepaths", ours["message"])

  def test_collections_without_tpu_context(self):
    outer = self.ref["outer_asset"]
    self.assertEqual(self.ours["outer_asset"], outer)
    for kind in _KINDS:
      label = kind + "_plain_asset"
      with self.subTest(label):
        if "error" not in self.ref[label]:
          self.assertEqual(self.ref[label], outer)
        self.assertSameAsOuter(self.ours[label], outer, label)

  def test_scope_taken_in_outer_graph(self):
    for kind in _KINDS:
      label = kind + "_tpu_taken"
      with self.subTest(label):
        ref, ours = self.ref[label], self.ours[label]
        self.assertEqual(ref["error"], "AssertionError", ref)
        self.assertEqual(ours["error"], "StateScopeTakenError", ours)
        self.assertTrue(ours["is_assertion_error"])
        self.assertIn("name scope m/ is already taken in the enclosing graph",
                      ours["message"])
        self.assertIn("TPU replicate context", ours["message"])

  def test_dataset_map_beyond_original(self):
    outer = self.ref["outer"]
    ours = self.ours["dataset_map"]
    self.assertNotIn("error", ours, ours)
    self.assertEqual(ours["runs"], outer["runs"])
    self.assertEqual(ours["initial"], outer["initial"])
    self.assertEqual(ours["final"]["m/unused_counter"], 0)

  def test_wrap_function_without_enclosing_graph(self):
    ref, ours = self.ref["eager_wrap_function"], self.ours["eager_wrap_function"]
    self.assertNotIn("error", ref, ref)
    self.assertEqual(ours, ref)
    self.assertEqual(ref["runs"], self.ref["outer"]["runs"])


if __name__ == "__main__":
  absltest.main()
