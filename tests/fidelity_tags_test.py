"""ModuleSpec.get_tags() lists graph variants as tensorflow_hub 0.15 does.

The same snippet runs against the original (.venv/ref) and hub_tf1; the
lists, their order and the element types must be equal, for specs made by
create_module_spec and for the modules they export, loaded back.
"""

from absl.testing import absltest

from tests import fidelity_lib
from tests import testing_modules as tm

_SNIPPET = """
def module_fn(scale=1.0):
  x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
  hub.add_signature(inputs=x, outputs=x * scale)

def describe(tags_list):
  return [[type(t).__name__, sorted(t)] for t in tags_list]

CASES = {
    "train_first": [({"train"}, {"scale": 2.0}), (set(), {})],
    "incomparable": [({"b"}, {}), ({"a"}, {}), (set(), {})],
    "supersets": [({"a", "z"}, {}), ({"a"}, {}), (set(), {}), ({"b"}, {})],
}
for name, tags_and_args in sorted(CASES.items()):
  spec = hub.create_module_spec(module_fn, tags_and_args=tags_and_args)
  emit(name, describe(spec.get_tags()))
  path = os.path.join(TMP, name)
  with tf.Graph().as_default():
    module = hub.Module(spec, tags=tags_and_args[0][0])
    with tf.compat.v1.Session() as session:
      module.export(path, session)
  emit(name + "/loaded", describe(hub.load_module_spec(path).get_tags()))
"""


class TagsFidelityTest(absltest.TestCase):

  def test_get_tags_matches_original(self):
    fidelity_lib.skip_without_ref(self)
    theirs, ours = fidelity_lib.run_both(_SNIPPET, tm.make_temp_dir(self))
    self.assertLen(theirs, 6)
    self.assertEqual(ours, theirs)


if __name__ == "__main__":
  absltest.main()
