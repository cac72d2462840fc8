"""Asset paths a module leaves in the caller's graph match tensorflow_hub 0.15.

The same snippets run against the original (.venv/ref) and hub_tf1.  They
export modules with 0, 1 and 2 vocabulary assets (plus one whose signature
reads its asset file directly), reload each from its export directory and
apply it once and twice.

Rules of this file:
- Expected values come from the original; the only facts written here are
  structural (every asset path an op reads must be listed, a served lookup
  must equal the lookup before the module was deleted).
- `ASSET_FILEPATHS` is compared entry by entry: tensor name, op type and the
  path it evaluates to, relative to the module directory.  Which ops consume
  an entry is not compared: hub_tf1 imports a pruned sub-graph per call, the
  original the whole graph.
- The serving test exports a SavedModel from the caller's graph with
  `ASSET_FILEPATHS` as its assets collection, deletes the module, its
  vocabularies and the cache, and only then loads and runs it, so an asset
  path missing from the collection makes the table initializer fail.
"""

from absl.testing import absltest

from tests import fidelity_lib

# Defines vocabularies, module_fns and `export_module(kind)` for the snippets.
_MODULES = r"""
import shutil

def write_vocab(name, words):
  path = os.path.join(TMP, name)
  with open(path, "w") as f:
    f.write("\n".join(words) + "\n")
  return path

VOCAB_1 = write_vocab("vocab_1.txt", ["a", "b", "c"])
VOCAB_2 = write_vocab("vocab_2.txt", ["x", "y", "z", "w"])
WORDS = ["a", "y", "c", "q"]

def vocab_table(path):
  init = tf.compat.v1.lookup.TextFileInitializer(
      path, tf.string, tf.compat.v1.lookup.TextFileIndex.WHOLE_LINE,
      tf.int64, tf.compat.v1.lookup.TextFileIndex.LINE_NUMBER)
  return tf.compat.v1.lookup.StaticVocabularyTable(init, num_oov_buckets=1)

def words():
  return tf.compat.v1.placeholder(tf.string, [None], name="words")

def zero_assets_fn():
  x = words()
  hub.add_signature(inputs=x, outputs=tf.strings.length(x, "UTF8_CHAR"))

def one_asset_fn():
  x = words()
  hub.add_signature(inputs=x, outputs=vocab_table(VOCAB_1).lookup(x))

def two_assets_fn():
  x = words()
  ids = vocab_table(VOCAB_1).lookup(x) * 10 + vocab_table(VOCAB_2).lookup(x)
  hub.add_signature(inputs=x, outputs=ids)

def reads_asset_fn():
  # The signature's own ops read the asset path, not only the initializer.
  x = words()
  ids = vocab_table(VOCAB_1).lookup(x)
  path = tf.compat.v1.get_collection(
      tf.compat.v1.GraphKeys.ASSET_FILEPATHS)[0]
  size = tf.cast(tf.strings.length(tf.io.read_file(path)), tf.int64)
  hub.add_signature(inputs=x, outputs=ids + size)

MODULE_FNS = {"zero": zero_assets_fn, "one": one_asset_fn,
              "two": two_assets_fn, "reads": reads_asset_fn}

def export_module(kind):
  module_dir = os.path.join(TMP, "module_" + kind)
  with tf.Graph().as_default():
    m = hub.Module(hub.create_module_spec(MODULE_FNS[kind]))
    with tf.compat.v1.Session() as s:
      s.run(tf.compat.v1.tables_initializer())
      m.export(module_dir, s)
  return module_dir

def relative(path, module_dir):
  return os.path.relpath(tf.compat.as_text(path), module_dir)
"""

_COLLECTION_SNIPPET = _MODULES + r"""
for kind in sorted(MODULE_FNS):
  module_dir = export_module(kind)
  assets_dir = os.path.realpath(os.path.join(module_dir, "assets"))
  for times in (1, 2):
    with tf.Graph().as_default() as graph:
      m = hub.Module(module_dir)
      outputs = [m(tf.constant(WORDS)) for _ in range(times)]
      collection = tf.compat.v1.get_collection(
          tf.compat.v1.GraphKeys.ASSET_FILEPATHS)
      # Every string Const holding a path into assets/ that some op reads.
      read = set()
      for op in graph.get_operations():
        for t in op.inputs:
          if t.op.type != "Const" or t.dtype != tf.string:
            continue
          value = tf.get_static_value(t)
          if value is None or getattr(value, "ndim", 1) != 0:
            continue
          value = os.path.realpath(tf.compat.as_text(value.item()))
          if value.startswith(assets_dir + os.sep):
            read.add(t.name)
      with tf.compat.v1.Session() as s:
        s.run(tf.compat.v1.tables_initializer())
        values = s.run(collection)
        results = s.run(outputs)
    key = "%s_x%d" % (kind, times)
    emit(key + "_collection",
         [[t.name, t.op.type, relative(v, module_dir)]
          for t, v in zip(collection, values)])
    emit(key + "_unlisted_reads",
         sorted(read - {t.name for t in collection}))
    emit(key + "_results", [r.tolist() for r in results])
"""

_SERVING_SNIPPET = _MODULES + r"""
for kind in ("one", "two", "reads"):
  module_dir = export_module(kind)
  serving_dir = os.path.join(TMP, "serving_" + kind)
  with tf.Graph().as_default():
    m = hub.Module(module_dir)
    x = tf.compat.v1.placeholder(tf.string, [None], name="serving_words")
    y = m(x)
    y2 = m(x)
    signature = tf.compat.v1.saved_model.predict_signature_def(
        inputs={"words": x}, outputs={"ids": y, "ids2": y2})
    assets = tf.compat.v1.get_collection(
        tf.compat.v1.GraphKeys.ASSET_FILEPATHS)
    with tf.compat.v1.Session() as s:
      s.run([tf.compat.v1.global_variables_initializer(),
             tf.compat.v1.tables_initializer()])
      before = s.run([y, y2], {x: WORDS})
      builder = tf.compat.v1.saved_model.Builder(serving_dir)
      builder.add_meta_graph_and_variables(
          s, ["serve"], signature_def_map={"serving_default": signature},
          assets_collection=assets,
          main_op=tf.compat.v1.tables_initializer())
      builder.save()
  emit(kind + "_before", [b.tolist() for b in before])
  emit(kind + "_exported_assets",
       sorted(os.listdir(os.path.join(serving_dir, "assets"))))
  # Nothing but the SavedModel may be needed from here on.
  shutil.rmtree(module_dir)
  shutil.rmtree(os.environ["TFHUB_CACHE_DIR"], ignore_errors=True)
  for path in (VOCAB_1, VOCAB_2):
    if os.path.exists(path):
      os.remove(path)
  with tf.Graph().as_default():
    with tf.compat.v1.Session() as s:
      try:
        meta = tf.compat.v1.saved_model.loader.load(s, ["serve"], serving_dir)
        sig = meta.signature_def["serving_default"]
        after = s.run([sig.outputs["ids"].name, sig.outputs["ids2"].name],
                      {sig.inputs["words"].name: WORDS})
        emit(kind + "_after", [a.tolist() for a in after])
      except tf.errors.OpError as e:
        emit(kind + "_after", type(e).__name__)
  # The vocabularies are needed again by the next export_module().
  VOCAB_1 = write_vocab("vocab_1.txt", ["a", "b", "c"])
  VOCAB_2 = write_vocab("vocab_2.txt", ["x", "y", "z", "w"])
"""


class AssetCollectionTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    fidelity_lib.skip_without_ref(self)

  def test_asset_filepaths_match_original(self):
    ref, ours = fidelity_lib.run_both(_COLLECTION_SNIPPET)
    self.assertNotEmpty(ref)
    self.assertEqual(sorted(ref), sorted(ours))
    for key in sorted(ref):
      with self.subTest(key=key):
        self.assertEqual(ref[key], ours[key], "mismatch in %r" % key)
      if key.endswith("_unlisted_reads"):
        self.assertEqual([], ours[key],
                         "%s: asset paths read by ops but not in "
                         "ASSET_FILEPATHS" % key)
    # The comparison only means something if the original lists assets.
    self.assertNotEmpty(ref["two_x2_collection"])

  def test_serving_model_survives_module_deletion(self):
    ref, ours = fidelity_lib.run_both(_SERVING_SNIPPET)
    self.assertEqual(ref, ours)
    # Tables initialised from the copied assets, not from the deleted module.
    for kind in ("one", "two"):
      self.assertEqual(ours[kind + "_before"], ours[kind + "_after"],
                       "served lookup of module %r differs" % kind)


if __name__ == "__main__":
  absltest.main()
