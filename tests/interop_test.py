"""Modules written by hub_tf1 load and compute the same in tensorflow_hub 0.15.

The other direction (modules written by the original, read by hub_tf1) is
tests/fixtures_test.py.  The original runs in a subprocess with the
interpreter of .venv/ref (TF 2.15.1 + tensorflow_hub 0.15.0); the test is
skipped, saying why, when that virtualenv does not exist.
"""

import json
import os
import subprocess

from absl.testing import absltest
import numpy as np
import tensorflow as tf

import hub_tf1 as hub
from tests import interop_values
from tests import testing_modules as tm

_HERE = os.path.dirname(os.path.realpath(__file__))
_REF_PYTHON = os.path.join(os.path.dirname(_HERE), ".venv", "ref", "bin",
                           "python")
_RUNNER = os.path.join(_HERE, "interop_ref_runner.py")
_VOCAB = ["<unk>", "cat", "dog", "fish", "bird"]


def _module_fn(vocab_file, is_training=False):
  """Dense, sparse, ragged signatures; ref, resource, partitioned state."""
  x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
  w = tf.compat.v1.get_variable("dense/w", [3, 2])
  b = tf.compat.v1.get_variable("dense/b", [2],
                                initializer=tf.compat.v1.ones_initializer())
  with tf.compat.v1.variable_scope("legacy", use_resource=False):
    scale = tf.compat.v1.get_variable(
        "scale", [], initializer=tf.compat.v1.constant_initializer(0.5))
  y = tf.matmul(x, w) + b
  if is_training:
    y = y * 2.0
  hub.add_signature(inputs=x, outputs={"default": y, "scaled": y * scale})

  table = tf.lookup.StaticVocabularyTable(
      tf.lookup.TextFileInitializer(
          vocab_file, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
          tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER),
      num_oov_buckets=1)
  embeddings = tf.compat.v1.get_variable(
      "embeddings", [len(_VOCAB) + 1, 4],
      partitioner=tf.compat.v1.fixed_size_partitioner(2))
  tokens = tf.compat.v1.sparse_placeholder(tf.string, [None, None],
                                           name="tokens")
  ids = tf.SparseTensor(tokens.indices, table.lookup(tokens.values),
                        tokens.dense_shape)
  combined = tf.nn.embedding_lookup_sparse(embeddings, ids, None,
                                           combiner="sqrtn")
  hub.add_signature("tokens", inputs={"tokens": tokens},
                    outputs={"default": combined})

  ragged = tf.compat.v1.ragged.placeholder(tf.float32, 1, [], name="r")
  hub.add_signature("ragged", inputs={"r": ragged},
                    outputs={"default": tf.reduce_sum(ragged, axis=1) * scale,
                             "doubled": ragged * 2.0})
  hub.attach_message("origin", tf.train.BytesList(value=[b"hub_tf1"]))


_CALLS = [
    {"tags": [], "signature": "default", "inputs": {
        "default": {"kind": "dense", "dtype": "float32",
                    "values": [[1, 2, 3], [0.5, -1, 0]]}}},
    {"tags": ["train"], "signature": "default", "inputs": {
        "default": {"kind": "dense", "dtype": "float32",
                    "values": [[1, 2, 3]]}}},
    {"tags": [], "signature": "tokens", "inputs": {
        "tokens": {"kind": "sparse", "dtype": "str",
                   "indices": [[0, 0], [0, 1], [1, 0], [2, 0]],
                   "values": ["cat", "dog", "zebra", "bird"],
                   "dense_shape": [3, 2]}}},
    {"tags": [], "signature": "ragged", "inputs": {
        "r": {"kind": "ragged", "dtype": "float32",
              "values": [1, 2, 3, 4, 5], "row_splits": [0, 2, 2, 5]}}},
]


def _run_hub_tf1(module_dir):
  results = []
  for call in _CALLS:
    with tf.Graph().as_default():
      module = hub.Module(module_dir, tags=set(call["tags"]) or None)
      out = module({k: interop_values.to_tensor(v)
                    for k, v in call["inputs"].items()},
                   signature=call["signature"], as_dict=True)
      with tf.compat.v1.Session() as session:
        session.run([tf.compat.v1.global_variables_initializer(),
                     tf.compat.v1.tables_initializer()])
        results.append(interop_values.to_plain(session.run(out)))
  return results


class InteropTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    if not os.path.exists(_REF_PYTHON):
      self.skipTest("no tensorflow_hub 0.15 reference venv at %s (made by "
                    "tools/bootstrap.sh ref)" % _REF_PYTHON)
    self.tmp = tm.make_temp_dir(self)
    self.vocab = os.path.join(self.tmp, "vocab.txt")
    with open(self.vocab, "w") as f:
      f.write("\n".join(_VOCAB) + "\n")
    self.spec = hub.create_module_spec(
        _module_fn, tags_and_args=[
            (set(), {"vocab_file": self.vocab}),
            ({"train"}, {"vocab_file": self.vocab, "is_training": True})])

  def _run_reference(self, module_dir, reexport=None):
    request = os.path.join(self.tmp, "request.json")
    with open(request, "w") as f:
      json.dump({"module": module_dir, "calls": _CALLS,
                 "message_key": "origin", "reexport": reexport}, f)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    result = subprocess.run([_REF_PYTHON, _RUNNER, request], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, timeout=600, check=False)
    self.assertEqual(result.returncode, 0, result.stderr[-4000:])
    return json.loads(result.stdout)

  def _assert_same(self, ours, theirs):
    self.assertEqual(len(ours), len(theirs))
    for a, b in zip(ours, theirs):
      self.assertEqual(sorted(a), sorted(b))
      for key in a:
        np.testing.assert_allclose(
            np.asarray(a[key]["values"] if isinstance(a[key], dict)
                       else a[key], dtype=np.float64),
            np.asarray(b[key]["values"] if isinstance(b[key], dict)
                       else b[key], dtype=np.float64), rtol=1e-6, atol=1e-6)
        if isinstance(a[key], dict):
          self.assertEqual(a[key]["row_splits"], b[key]["row_splits"])

  def test_module_export_loads_in_original(self):
    path = os.path.join(self.tmp, "exported")
    with tf.Graph().as_default():
      module = hub.Module(self.spec)
      with tf.compat.v1.Session() as session:
        session.run([tf.compat.v1.global_variables_initializer(),
                     tf.compat.v1.tables_initializer()])
        # Fine-tuned weights must be what gets exported.
        session.run(module.variable_map["dense/w"].assign(
            np.arange(6, dtype=np.float32).reshape(3, 2) / 10))
        module.export(path, session)
    os.remove(self.vocab)  # The module must carry its own copy.
    ours = _run_hub_tf1(path)
    reexported = os.path.join(self.tmp, "reexported_by_original")
    theirs = self._run_reference(path, reexport=reexported)
    self.assertEqual(theirs["message"], "hub_tf1")
    self.assertEqual(theirs["tags"], [[], ["train"]])
    self._assert_same(ours, theirs["results"])
    np.testing.assert_allclose(ours[0]["default"][0],
                               np.array([1, 2, 3]) @ (
                                   np.arange(6).reshape(3, 2) / 10) + 1,
                               rtol=1e-6)
    # And what the original re-exports from our module loads back here.
    self._assert_same(_run_hub_tf1(reexported), ours)

  def test_spec_export_from_checkpoint_loads_in_original(self):
    checkpoint = os.path.join(self.tmp, "train", "model.ckpt")
    with tf.Graph().as_default():
      with tf.compat.v1.variable_scope("tower"):
        module = hub.Module(self.spec, trainable=True)
      global_step = tf.compat.v1.train.get_or_create_global_step()
      loss = tf.reduce_sum(module([[1.0, 2.0, 3.0]]))
      train = tf.compat.v1.train.AdamOptimizer(0.1).minimize(
          loss, global_step=global_step)
      saver = tf.compat.v1.train.Saver()
      with tf.compat.v1.Session() as session:
        session.run([tf.compat.v1.global_variables_initializer(),
                     tf.compat.v1.tables_initializer()])
        for _ in range(3):
          session.run(train)
        saver.save(session, checkpoint)
    path = os.path.join(self.tmp, "from_checkpoint")
    self.spec.export(path, checkpoint_path=checkpoint,
                     name_transform_fn=lambda name: "tower/module/" + name)
    ours = _run_hub_tf1(path)
    theirs = self._run_reference(path)
    self._assert_same(ours, theirs["results"])
    reader = tf.train.load_checkpoint(checkpoint)
    trained_b = reader.get_tensor("tower/module/dense/b")
    self.assertFalse(np.allclose(trained_b, 1.0))  # Training moved it.
    with tf.Graph().as_default():
      module = hub.Module(path)
      with tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        np.testing.assert_array_equal(
            session.run(module.variable_map["dense/b"]), trained_b)


if __name__ == "__main__":
  absltest.main()
