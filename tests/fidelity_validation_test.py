"""A broken module checkpoint fails at `hub.Module()` as in tensorflow_hub 0.15.

The same snippet runs against the original (.venv/ref) and hub_tf1: it
exports a module with whole and partitioned variables, damages copies of its
checkpoint one way each and reports, per copy, when and how `hub.Module(...)`
(then its initializers) failed.  hub_tf1 must fail already at construction,
with an exception that is an instance of the class the original raised
(whenever it did), whose message contains the original's phrase (found in
the original's message, not written here) and names the module directory,
the file and the variable.
"""

import re

from absl.testing import absltest

from tests import fidelity_lib

_SNIPPET = r"""
import shutil
import numpy as np

def module_fn():
  x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
  w = tf.compat.v1.get_variable(
      "w", [3, 2], initializer=tf.compat.v1.ones_initializer())
  b = tf.compat.v1.get_variable(
      "layer/b", [2], initializer=tf.compat.v1.zeros_initializer())
  emb = tf.compat.v1.get_variable(
      "emb", [10, 2], initializer=tf.compat.v1.ones_initializer(),
      partitioner=tf.compat.v1.fixed_size_partitioner(3))
  hub.add_signature(inputs=x,
                    outputs=tf.matmul(x, w) + b + tf.reduce_sum(emb))

def no_variables_fn():
  x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
  hub.add_signature(inputs=x, outputs=x * 2.0)

base = os.path.join(TMP, "base")
with tf.Graph().as_default():
  m = hub.Module(hub.create_module_spec(module_fn))
  with tf.compat.v1.Session() as s:
    s.run(tf.compat.v1.global_variables_initializer())
    m.export(base, s)
no_vars = os.path.join(TMP, "no_variables")
with tf.Graph().as_default():
  m = hub.Module(hub.create_module_spec(no_variables_fn))
  with tf.compat.v1.Session() as s:
    m.export(no_vars, s)
if os.path.exists(os.path.join(no_vars, "variables")):
  shutil.rmtree(os.path.join(no_vars, "variables"))

def variables_file(d, name="variables.index"):
  return os.path.join(d, "variables", name)

def copy(name):
  d = os.path.join(TMP, name)
  shutil.copytree(base, d)
  return d

def rewrite_checkpoint(d, values, emb_parts=None):
  # `values`: key -> numpy value; `emb_parts`: save "emb" in this many parts.
  shutil.rmtree(os.path.join(d, "variables"))
  with tf.Graph().as_default():
    var_list = {}
    for key, value in values.items():
      var_list[key] = tf.compat.v1.Variable(value, name=key.replace("/", "_"))
    if emb_parts:
      emb = tf.compat.v1.get_variable(
          "emb_src", [10, 2], initializer=tf.compat.v1.ones_initializer(),
          partitioner=tf.compat.v1.fixed_size_partitioner(emb_parts))
      var_list["emb"] = list(emb)
    saver = tf.compat.v1.train.Saver(var_list)
    with tf.compat.v1.Session() as s:
      s.run(tf.compat.v1.global_variables_initializer())
      saver.save(s, os.path.join(d, "variables", "variables"),
                 write_meta_graph=False, write_state=False)

W, B, EMB = np.ones([3, 2], np.float32), np.zeros([2], np.float32), np.ones(
    [10, 2], np.float32)
cases = {"no_variables": no_vars}
d = copy("no_index"); os.remove(variables_file(d)); cases["no_index"] = d
d = copy("no_variables_dir"); shutil.rmtree(os.path.join(d, "variables"))
cases["no_variables_dir"] = d
d = copy("no_data"); os.remove(variables_file(d, "variables.data-00000-of-00001"))
cases["no_data"] = d
d = copy("truncated_data")
with open(variables_file(d, "variables.data-00000-of-00001"), "r+b") as f:
  f.truncate(8)
cases["truncated_data"] = d
d = copy("corrupt_index")
with open(variables_file(d), "r+b") as f:
  f.seek(10); byte = f.read(1); f.seek(10); f.write(bytes([byte[0] ^ 0xff]))
cases["corrupt_index"] = d
d = copy("truncated_index")
with open(variables_file(d), "r+b") as f:
  f.truncate(len(f.read()) // 2)
cases["truncated_index"] = d
d = copy("garbage_index")
with open(variables_file(d), "wb") as f:
  f.write(b"not a table")
cases["garbage_index"] = d
d = copy("missing_variable"); rewrite_checkpoint(d, {"w": W, "emb": EMB})
cases["missing_variable"] = d
d = copy("missing_partitioned"); rewrite_checkpoint(d, {"w": W, "layer/b": B})
cases["missing_partitioned"] = d
d = copy("wrong_shape")
rewrite_checkpoint(d, {"w": np.ones([3, 5], np.float32), "layer/b": B,
                       "emb": EMB})
cases["wrong_shape"] = d
d = copy("wrong_shape_partitioned")
rewrite_checkpoint(d, {"w": W, "layer/b": B,
                       "emb": np.ones([11, 2], np.float32)})
cases["wrong_shape_partitioned"] = d
d = copy("wrong_dtype")
rewrite_checkpoint(d, {"w": W.astype(np.float64), "layer/b": B, "emb": EMB})
cases["wrong_dtype"] = d
d = copy("wrong_dtype_partitioned")
rewrite_checkpoint(d, {"w": W, "layer/b": B, "emb": EMB.astype(np.float64)})
cases["wrong_dtype_partitioned"] = d
d = copy("partitioned_stored_whole")
rewrite_checkpoint(d, {"w": W, "layer/b": B, "emb": EMB})
cases["partitioned_stored_whole"] = d
d = copy("partitioned_stored_in_2"); rewrite_checkpoint(d, {"w": W, "layer/b": B},
                                                        emb_parts=2)
cases["partitioned_stored_in_2"] = d

def describe(stage, e):
  return {"stage": stage,
          "mro": [c.__module__ + "." + c.__name__ for c in type(e).__mro__],
          "message": str(e).replace(TMP, "<TMP>")}

for name, d in sorted(cases.items()):
  with tf.Graph().as_default():
    try:
      m = hub.Module(d)
    except Exception as e:  # pylint: disable=broad-except
      emit(name, describe("construct", e))
      continue
    x = np.ones([1, 3], np.float32) if name != "no_variables" else [1.0, 2.0]
    y = m(x)
    try:
      with tf.compat.v1.Session() as s:
        s.run(tf.compat.v1.global_variables_initializer())
        emit(name, {"stage": "ok", "value": s.run(y).tolist()})
    except Exception as e:  # pylint: disable=broad-except
      emit(name, describe("run", e))
"""

# How to find the original's phrase in its message, per case.
_PHRASES = {
    "no_index": r"Failed to find any matching files for \S+",
    "no_variables_dir": r"Failed to find any matching files for \S+",
    "no_data": r"\S+\.data-\d+-of-\d+; No such file or directory",
    "truncated_data": r"Read less bytes than requested",
    "corrupt_index": r"Unable to read file \(\S+\)|block checksum mismatch",
    "truncated_index": r"not an sstable \(bad magic number\)",
    "garbage_index": r"file is too short to be an sstable",
    "missing_variable": r"Tensor \S+ is not found in",
    "missing_partitioned": r"Tensor \S+ is not found in",
    "wrong_shape": r"Shape of variable .* from checkpoint reader\.",
    "wrong_shape_partitioned": r"tensor_name = \S+; shape in shape_and_slice "
                               r"spec \S+ does not match the shape stored in "
                               r"checkpoint: \S+",
    "wrong_dtype": r"tensor_name = \S+; expected dtype \w+ does not equal "
                   r"original dtype \w+",
    "wrong_dtype_partitioned": r"tensor_name = \S+; expected dtype \w+ does "
                               r"not equal original dtype \w+",
}
# The file and the variable our message must name, per case.
_NAMES = {
    "no_index": ("variables/variables.index", None),
    "no_variables_dir": ("variables/variables.index", None),
    "no_data": ("variables/variables.data-00000-of-00001", "'w'"),
    "truncated_data": ("variables/variables.data-00000-of-00001", "'"),
    "corrupt_index": ("variables/variables.index", None),
    "truncated_index": ("variables/variables.index", None),
    "garbage_index": ("variables/variables.index", None),
    "missing_variable": ("variables/variables.index", "'layer/b'"),
    "missing_partitioned": ("variables/variables.index", "'emb'"),
    "wrong_shape": ("variables/variables.index", "'w'"),
    "wrong_shape_partitioned": ("variables/variables.index", "'emb'"),
    "wrong_dtype": ("variables/variables.index", "'w'"),
    "wrong_dtype_partitioned": ("variables/variables.index", "'emb'"),
}
_WORKING = ("no_variables", "partitioned_stored_whole",
            "partitioned_stored_in_2")


class ValidationFidelityTest(fidelity_lib.BothRunsTestCase):

  SNIPPET = _SNIPPET

  def test_every_case_reported(self):
    theirs, ours = self.results()
    self.assertCountEqual(theirs, list(_NAMES) + list(_WORKING))
    self.assertCountEqual(ours, theirs)

  def test_intact_modules_work_alike(self):
    theirs, ours = self.results()
    for name in _WORKING:
      with self.subTest(name):
        self.assertEqual(theirs[name]["stage"], "ok", theirs[name])
        self.assertEqual(ours[name], theirs[name])

  def test_broken_checkpoints_fail_at_construction(self):
    theirs, ours = self.results()
    for name in _NAMES:
      with self.subTest(name):
        self.assertIn(theirs[name]["stage"], ("construct", "run"))
        self.assertEqual(ours[name]["stage"], "construct", ours[name])

  def test_exception_is_an_instance_of_the_originals(self):
    theirs, ours = self.results()
    for name in _NAMES:
      with self.subTest(name):
        self.assertIn(theirs[name]["mro"][0], ours[name]["mro"],
                      (theirs[name], ours[name]))
        self.assertIn("hub_tf1.errors.Error", ours[name]["mro"])

  def test_message_has_the_originals_phrase(self):
    theirs, ours = self.results()
    for name, pattern in _PHRASES.items():
      with self.subTest(name):
        found = re.findall(pattern, theirs[name]["message"])
        self.assertNotEmpty(found, theirs[name]["message"])
        for phrase in found:
          # The original writes the prefix of a module path as a bytes repr.
          phrase = re.sub(r"b'(<TMP>[^']*)'", r"\1", phrase)
          self.assertIn(phrase, ours[name]["message"])

  def test_message_names_directory_file_and_variable(self):
    _, ours = self.results()
    for name, (filename, variable) in _NAMES.items():
      with self.subTest(name):
        message = ours[name]["message"]
        self.assertIn("Module <TMP>/%s" % name, message)
        self.assertIn("<TMP>/%s/%s" % (name, filename), message)
        if variable:
          self.assertIn(variable, message)


if __name__ == "__main__":
  absltest.main()
