"""Colocation constraints and imported graph structure as in tensorflow_hub 0.15.

The same snippet runs against the original (.venv/ref) and hub_tf1.

Rules of this file:
- Signature inputs that are several outputs of one op (`tf.split`) which
  another module op is colocated with: that op's colocation follows the
  caller's tensors when they share one group, and applying raises the
  original's exception type, with the original's phrase (taken from its
  message) and both candidate groups, when they differ or when only some
  outputs are fed (also for ops the signature does not need).
- Colocation groups are compared with the module and apply scopes replaced
  by placeholders, on the ops that both implementations import (hub_tf1
  imports a pruned sub-graph).
- Imported ops carry a `_class` attribute exactly where the original's do,
  with the same (scope-relative) values, also when the Module is created and
  applied under the caller's `colocate_with`, and both agree on whether
  applying under `tf.control_dependencies` changes the GraphDef.
- The two create-time colocation errors raise the original's type and
  contain the first line of the original's message.
"""

import ast
import re

from absl.testing import absltest

from tests import fidelity_lib

_SNIPPET = r"""
def module_fn():
  x = tf.compat.v1.placeholder(tf.float32, [4, 2], name="x")
  a, b = tf.split(x, 2, name="split")
  with tf.compat.v1.colocate_with(a.op):
    y = tf.identity(a, name="y")
  z = tf.add(b, 1.0, name="z")
  hub.add_signature(inputs={"a": a, "b": b}, outputs={"y": y, "z": z})
  hub.add_signature("part", inputs={"a": a}, outputs={"y": y})
  # `y` is not needed here, but it is colocated with the partly fed `split`.
  hub.add_signature("unneeded", inputs={"a": a}, outputs={"w": a * 3.0})

spec = hub.create_module_spec(module_fn)

def relative(value, scopes):
  value = tf.compat.as_str(value)
  for scope, label in scopes:
    value = value.replace("@" + scope + "/", "@<" + label + ">/")
  return value

def groups_in(graph, scope, scopes):
  return {op.name[len(scope) + 1:]: [relative(g, scopes)
                                     for g in op.colocation_groups()]
          for op in graph.get_operations()
          if op.name.startswith(scope + "/")}

def describe(e):
  return {"type": type(e).__name__, "message": str(e)}

for case, signature in (("same", "default"), ("diff", "default"),
                        ("part", "part"), ("unneeded", "unneeded")):
  with tf.Graph().as_default() as g:
    with tf.device("/cpu:0"):
      c = tf.constant([[1., 2.]] * 2, name="c")
    with tf.compat.v1.colocate_with(c):
      ca = tf.identity(c, name="ca")
      cb = tf.identity(c, name="cb")
    d = tf.constant([[1., 2.]] * 2, name="d")
    m = hub.Module(spec, name="m")
    feed = {"same": {"a": ca, "b": cb}, "diff": {"a": ca, "b": d}}.get(
        case, {"a": ca})
    try:
      out = m(feed, signature=signature, as_dict=True)
    except Exception as e:  # pylint: disable=broad-except
      emit(case, describe(e))
      continue
    scope = "m_apply_" + signature
    emit(case, {"groups": groups_in(g, scope, [(scope, "apply")]),
                "y_device": out["y"].device if "y" in out else None})

def state_fn():
  x = tf.compat.v1.placeholder(tf.float32, [None, 2], name="x")
  w = tf.compat.v1.get_variable("w", [2, 3])
  with tf.compat.v1.colocate_with(w):
    r = tf.identity(w, name="r")
  hub.add_signature(inputs=x, outputs=tf.matmul(x, r, name="out"))

state_spec = hub.create_module_spec(state_fn)

def build(with_dependency):
  with tf.Graph().as_default() as g:
    x = tf.compat.v1.placeholder(tf.float32, [None, 2], name="in")
    m = hub.Module(state_spec, name="m")
    dep = tf.no_op(name="dep")
    if with_dependency:
      with tf.control_dependencies([dep]):
        m(x)
    else:
      m(x)
    return g.as_graph_def()

def build_colocated():
  # Created and applied under the caller's colocate_with: every new op joins
  # the caller's group, except where the module's graph says otherwise.
  with tf.Graph().as_default() as g:
    x = tf.compat.v1.placeholder(tf.float32, [None, 2], name="in")
    c = tf.constant(1.0, name="c")
    with tf.compat.v1.colocate_with(c):
      m = hub.Module(state_spec, name="m")
      m(x)
    return g.as_graph_def()

plain, dependent = build(False), build(True)
emit("control_dependencies_same_graph", plain == dependent)
scopes = [("m_apply_default", "apply"), ("m", "module")]
for label, graph_def in (("plain", plain), ("dependent", dependent),
                         ("colocated", build_colocated())):
  emit(label + "_ops", sorted(n.name for n in graph_def.node))
  emit(label + "_class", {
      n.name: [relative(v, scopes) for v in n.attr["_class"].list.s]
      for n in graph_def.node if "_class" in n.attr})

def colocated_input_fn():
  c = tf.constant(1.0, name="c")
  with tf.compat.v1.colocate_with(c):
    x = tf.compat.v1.placeholder(tf.float32, [], name="x")
  hub.add_signature(inputs=x, outputs=x + 1.0)

def colocated_state_fn():
  c = tf.constant(1.0, name="c")
  with tf.compat.v1.colocate_with(c):
    v = tf.compat.v1.get_variable("v", [2])
  x = tf.compat.v1.placeholder(tf.float32, [], name="x")
  hub.add_signature(inputs=x, outputs=x + v)

for case, fn, tags in (("create_input", colocated_input_fn, None),
                       ("create_state", colocated_state_fn, None),
                       ("create_state_tags", colocated_state_fn,
                        [({"train"}, {})])):
  try:
    hub.create_module_spec(fn, tags)
    emit(case, None)
  except Exception as e:  # pylint: disable=broad-except
    emit(case, describe(e))
"""


def _first_phrase(message: str) -> str:
  """The original's leading sentence, without a trailing aside or period."""
  line = message.split("\n")[0]
  line = re.sub(r"\s*\([^()]*\)\.?\s*$", "", line)
  return line.rstrip(".: ")


class ColocationFidelityTest(fidelity_lib.BothRunsTestCase):

  SNIPPET = _SNIPPET

  def test_split_inputs_in_one_group_follow_the_callers_group(self):
    ref, ours = self.results()
    self.assertIn("groups", ref["same"], ref["same"])
    self.assertIn("groups", ours["same"], ours["same"])
    ref_groups, our_groups = ref["same"]["groups"], ours["same"]["groups"]
    self.assertIn("y", ref_groups)
    self.assertIn("y", our_groups)
    # The original moved `y` off the module's split: a real rewrite.
    self.assertNotIn("loc:@<apply>/split", ref_groups["y"])
    for name in sorted(set(ref_groups) & set(our_groups)):
      self.assertEqual(ref_groups[name], our_groups[name],
                       "colocation groups of op %r" % name)
    self.assertEqual(ref["same"]["y_device"], ours["same"]["y_device"])

  def _assert_same_error(self, ref_error, our_error):
    self.assertIn("type", ref_error, ref_error)
    self.assertIn("type", our_error, "hub_tf1 did not raise: %s" % our_error)
    self.assertEqual(ref_error["type"], our_error["type"])
    phrase = _first_phrase(ref_error["message"])
    self.assertTrue(phrase)
    self.assertIn(phrase, our_error["message"])
    return phrase

  def _assert_rewrite_error(self, case):
    ref, ours = self.results()
    self._assert_same_error(ref[case], ours[case])
    # Both candidate groups the original names appear in our message.
    found = re.search(r"rewriting (\[.*?\]) vs (\[.*?\])",
                      ref[case]["message"])
    self.assertIsNotNone(found, ref[case]["message"])
    for candidates in found.groups():
      for group in ast.literal_eval(candidates):
        self.assertIn(group.decode(), ours[case]["message"])

  def test_split_inputs_in_different_groups_raise(self):
    self._assert_rewrite_error("diff")

  def test_partly_fed_split_raises(self):
    self._assert_rewrite_error("part")

  def test_partly_fed_split_raises_for_ops_the_signature_does_not_need(self):
    self._assert_rewrite_error("unneeded")

  def test_control_dependencies_graph_equality_agrees(self):
    ref, ours = self.results()
    self.assertEqual(ref["control_dependencies_same_graph"],
                     ours["control_dependencies_same_graph"])

  def test_imported_ops_carry_class_where_the_originals_do(self):
    ref, ours = self.results()
    for label in ("plain", "dependent", "colocated"):
      common = set(ref[label + "_ops"]) & set(ours[label + "_ops"])
      self.assertIn("m_apply_default/r", common)
      ref_class, our_class = ref[label + "_class"], ours[label + "_class"]
      self.assertEqual(sorted(set(ref_class) & common),
                       sorted(set(our_class) & common), label)
      for name in sorted(set(ref_class) & common):
        self.assertEqual(ref_class[name], our_class[name],
                         "%s: _class of %r" % (label, name))
      # Ops only hub_tf1 has (none expected) must not carry a `_class`.
      self.assertEqual(sorted(set(our_class) - set(ref[label + "_ops"])), [])

  def test_create_time_colocation_errors(self):
    ref, ours = self.results()
    for case in ("create_input", "create_state", "create_state_tags"):
      self.assertIsNotNone(ref[case], case)
      self.assertIsNotNone(ours[case], "%s: hub_tf1 did not raise" % case)
      self._assert_same_error(ref[case], ours[case])
    self.assertIn("'default'", ours["create_input"]["message"])
    self.assertIn("loc:@c", ours["create_input"]["message"])
    self.assertIn("VarHandleOp", ours["create_state"]["message"])
    self.assertIn("train", ours["create_state_tags"]["message"])


if __name__ == "__main__":
  absltest.main()
