"""hub_tf1 raises tensorflow_hub 0.15's exceptions with its words.

One snippet triggers every reachable error of the original's TF1 API
(docs/ERRORS.md lists them all) and runs against the original (.venv/ref)
and hub_tf1; per case it emits the exception's class chain and message.

Rules of this file:
- hub_tf1's exception must be an instance of the class the original raised,
  and hub_tf1's own exception classes also derive from `hub_tf1.Error`.
- hub_tf1's message must contain the original's phrase.  The phrase is the
  original's message itself (scratch paths replaced, bytes reprs of paths
  unwrapped, a trailing period dropped, since ours goes on with details),
  less the text `_CUT[case]` matches, or only the part `_EXTRACT[case]`
  matches, where the rest is text we cannot or do not reproduce (memory
  addresses, host names, stack traces, the original's typos and internal
  class names).  `_DIFFERENT` and `_GAPS` list the exceptions, with reasons
  in docs/ERRORS.md.
- Colocation errors and checkpoint validation at construction are tested
  elsewhere (tests/fidelity_validation_test.py and the colocation tests);
  tests/module_errors_test.py tests broken modules against hub_tf1 alone.
"""

import re

from absl.testing import absltest

from tests import fidelity_lib

_SNIPPET = r"""
import http.server
from unittest import mock
import shutil
import tarfile
import threading
import numpy as np
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.core.framework import summary_pb2

def linear_fn():
  x = tf.compat.v1.placeholder(tf.float32, [None, 2], name="x")
  w = tf.compat.v1.get_variable(
      "w", [2, 3], initializer=tf.compat.v1.ones_initializer())
  hub.add_signature(inputs=x, outputs=tf.matmul(x, w))

def no_inputs_fn():
  hub.add_signature(outputs=tf.constant([1.0, 2.0]))

def two_inputs_fn():
  a = tf.compat.v1.placeholder(tf.float32, [None], name="a")
  b = tf.compat.v1.placeholder(tf.float32, [None], name="b")
  hub.add_signature(inputs={"a": a, "b": b}, outputs={"sum": a + b})

def image_fn(shape):
  def fn():
    images = tf.compat.v1.placeholder(tf.float32, shape, name="images")
    hub.add_signature(inputs={"images": images},
                      outputs=tf.reduce_mean(images, axis=[1, 2]))
  return fn

def text_fn():
  s = tf.compat.v1.placeholder(tf.string, [None], name="s")
  hub.add_signature(inputs=s, outputs=tf.ones([tf.shape(s)[0], 2]))

LINEAR = hub.create_module_spec(linear_fn)
CURRENT = ["", 0]  # The running case, the directories it made.

def fresh_dir(name):
  CURRENT[1] += 1
  return os.path.join(TMP, CURRENT[0], "%s_%d" % (name, CURRENT[1]))

def exported(fn=linear_fn):
  path = fresh_dir("module")
  with tf.Graph().as_default():
    m = hub.Module(hub.create_module_spec(fn))
    with tf.compat.v1.Session() as s:
      s.run(tf.compat.v1.global_variables_initializer())
      m.export(path, s)
  return path

def edit_saved_model(path, edit):
  pb = os.path.join(path, "saved_model.pb")
  with open(pb, "rb") as f:
    saved_model = saved_model_pb2.SavedModel.FromString(f.read())
  edit(saved_model)
  with open(pb, "wb") as f:
    f.write(saved_model.SerializeToString())
  return path

def write_module_def(path, data):
  with open(os.path.join(path, "tfhub_module.pb"), "wb") as f:
    f.write(data)
  return path

def save_checkpoint(values):
  prefix = os.path.join(fresh_dir("ckpt"), "model")
  os.makedirs(os.path.dirname(prefix))
  with tf.Graph().as_default():
    var_list = {k: tf.compat.v1.Variable(v, name=k.replace("/", "_"))
                for k, v in values.items()}
    saver = tf.compat.v1.train.Saver(var_list)
    with tf.compat.v1.Session() as s:
      s.run(tf.compat.v1.global_variables_initializer())
      saver.save(s, prefix, write_meta_graph=False, write_state=False)
  return prefix

CASES = {}
def case(fn):
  CASES[fn.__name__] = fn
  return fn

def in_graph(fn):
  def wrapped():
    with tf.Graph().as_default():
      fn()
  wrapped.__name__ = fn.__name__
  return wrapped

# ---- module.py
@case
@in_graph
def unknown_spec_type():
  hub.Module(123)

@case
@in_graph
def no_such_graph_variant():
  hub.Module(LINEAR, tags={"serve", "gpu"})

@case
def module_outside_graph_mode():
  hub.Module(LINEAR)

@case
def apply_in_other_graph():
  with tf.Graph().as_default():
    m = hub.Module(LINEAR)
  with tf.Graph().as_default():
    m(np.ones([1, 2], np.float32))

@case
def export_default_graph_differs():
  with tf.Graph().as_default() as g:
    m = hub.Module(LINEAR)
  with tf.compat.v1.Session(graph=g) as s:
    with tf.Graph().as_default():
      m.export(fresh_dir("export"), s)

@case
def export_session_graph_differs():
  with tf.Graph().as_default():
    m = hub.Module(LINEAR)
    s = tf.compat.v1.Session(graph=tf.Graph())
    try:
      m.export(fresh_dir("export"), s)
    finally:
      s.close()

@case
@in_graph
def name_scope_taken():
  with tf.compat.v1.name_scope("module"):
    tf.constant(1.0)
  hub.Module(LINEAR)

@case
@in_graph
def expects_no_inputs():
  hub.Module(hub.create_module_spec(no_inputs_fn))(1.0)

@case
@in_graph
def expects_multiple_inputs():
  hub.Module(hub.create_module_spec(two_inputs_fn))([1.0])

@case
@in_graph
def dict_inputs_mismatch():
  hub.Module(hub.create_module_spec(two_inputs_fn))({"a": [1.0], "c": [2.0]})

@case
@in_graph
def no_default_output():
  hub.Module(hub.create_module_spec(two_inputs_fn))({"a": [1.0], "b": [2.0]})

# ---- native_module.py
@case
def unsupported_module_def_format():
  hub.load_module_spec(write_module_def(exported(), bytes([0x08, 4])))

@case
def unsupported_features():
  hub.load_module_spec(write_module_def(
      exported(), bytes([0x08, 3, 0x12, 11]) + b"time_travel"))

@case
def add_signature_bad_output_type():
  def fn():
    x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
    hub.add_signature(inputs={"x": x}, outputs={"y": x, "z": "s", "n": 3})
  hub.create_module_spec(fn)

@case
def add_signature_bad_input_type():
  def fn():
    x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
    hub.add_signature(inputs={"x": x, "n": 3}, outputs=x)
  hub.create_module_spec(fn)

@case
@in_graph
def signature_of_unsupported_type():
  def fn():
    x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
    tf.constant([1.0], name="iv")
    tf.constant([0], tf.int64, name="ii")
    hub.add_signature(inputs=x, outputs=x * 2.0)
  def add_slices(saved_model):
    with tf.Graph().as_default():
      slices = tf.IndexedSlices(tf.constant([1.0], name="iv"),
                                tf.constant([0], tf.int64, name="ii"))
      info = tf.compat.v1.saved_model.utils.build_tensor_info(slices)
    saved_model.meta_graphs[0].signature_def["default"].outputs[
        "slices"].CopyFrom(info)
  m = hub.Module(edit_saved_model(exported(fn), add_slices))
  m([1.0], as_dict=True)

@case
def attach_message_bad_key():
  def fn():
    linear_fn()
    hub.attach_message("1-bad key", summary_pb2.Summary())
  hub.create_module_spec(fn)

@case
def unknown_signature_on_spec():
  LINEAR.get_input_info_dict("nope")

@case
@in_graph
def unknown_signature_on_call():
  hub.Module(LINEAR)(np.ones([1, 2], np.float32), signature="nope")

@case
def tags_used_repeatedly():
  hub.create_module_spec(linear_fn, [({"a"}, {}), ({"a"}, {})])

@case
def tags_used_repeatedly_on_load():
  def duplicate(saved_model):
    saved_model.meta_graphs.add().CopyFrom(saved_model.meta_graphs[0])
  hub.load_module_spec(edit_saved_model(exported(), duplicate))

@case
def unsupported_collections():
  def fn():
    linear_fn()
    tf.compat.v1.add_to_collection("my_collection", tf.constant(1.0))
  hub.create_module_spec(fn)

@case
def unsupported_collections_on_load():
  def add(saved_model):
    saved_model.meta_graphs[0].collection_def[
        "my_collection"].node_list.value.append("x:0")
  hub.load_module_spec(edit_saved_model(exported(), add))

@case
@in_graph
def graph_ops_missing():
  def rename_op(saved_model):
    for node in saved_model.meta_graphs[0].graph_def.node:
      if node.op == "MatMul":
        node.op = "NoSuchOpForHubTests"
  hub.Module(edit_saved_model(exported(), rename_op))

# ---- saved_model_lib.py
@case
def no_signatures():
  hub.create_module_spec(lambda: tf.constant(1.0))

@case
def asset_outside_assets_dir():
  vocab = os.path.join(fresh_dir("vocab"), "vocab.txt")
  os.makedirs(os.path.dirname(vocab))
  with open(vocab, "w") as f:
    f.write("a\nb\n")
  def fn():
    filename = tf.constant(vocab)
    tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS,
                                   filename)
    hub.add_signature(outputs=tf.io.read_file(filename))
  path = exported(fn)
  def escape(saved_model):
    for any_asset in saved_model.meta_graphs[0].collection_def[
        "saved_model_assets"].any_list.value:
      from tensorflow.core.protobuf import meta_graph_pb2
      asset = meta_graph_pb2.AssetFileDef()
      any_asset.Unpack(asset)
      asset.filename = "../../escaped.txt"
      any_asset.Pack(asset)
  hub.load_module_spec(edit_saved_model(path, escape))

@case
def attachments_not_bytes_list():
  def fn():
    linear_fn()
    hub.attach_message("info", summary_pb2.Summary())
  path = exported(fn)
  def break_it(saved_model):
    coll = saved_model.meta_graphs[0].collection_def["hub_module_attachments"]
    coll.Clear()
    coll.node_list.value.append("x:0")
  spec = hub.load_module_spec(edit_saved_model(path, break_it))
  spec.get_attached_message("info", summary_pb2.Summary)

@case
def asset_node_not_constant():
  def fn():
    linear_fn()
    tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS,
                                   tf.identity(tf.constant("a.txt")))
  exported(fn)

@case
def asset_node_not_string():
  def fn():
    linear_fn()
    tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS,
                                   tf.constant(1.0))
  exported(fn)

@case
def asset_node_not_scalar():
  def fn():
    linear_fn()
    tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS,
                                   tf.constant(["a.txt", "b.txt"]))
  exported(fn)

@case
def asset_filepaths_not_tensors():
  def fn():
    linear_fn()
    tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS,
                                   "a.txt")
  exported(fn)

@case
def asset_filepaths_not_output_0():
  def fn():
    linear_fn()
    tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS,
                                   tf.unstack(tf.constant(["a", "b"]))[1])
  exported(fn)

@case
def no_graph_with_tags():
  LINEAR.get_signature_names(tags={"serve"})

@case
def cannot_parse_saved_model():
  path = exported()
  pb = os.path.join(path, "saved_model.pb")
  with open(pb, "rb") as f:
    data = f.read()
  with open(pb, "wb") as f:
    f.write(data[:len(data) // 3])
  hub.load_module_spec(path)

# ---- tensor_info.py
@case
@in_graph
def input_not_convertible():
  hub.Module(LINEAR)({"default": object()})

@case
@in_graph
def input_of_unsupported_type():
  x = tf.IndexedSlices(tf.ones([1, 2]), tf.constant([0]))
  hub.Module(LINEAR)(x)

@case
@in_graph
def input_of_other_composite_type():
  hub.Module(LINEAR)(tf.sparse.from_dense(tf.ones([1, 2])))

@case
@in_graph
def input_of_incompatible_shape():
  hub.Module(LINEAR)(np.ones([1, 3], np.float32))

# ---- module_spec.py
@case
def export_without_checkpoint_path():
  LINEAR.export(fresh_dir("export"))

@case
def export_checkpoint_wrong_shape():
  LINEAR.export(fresh_dir("export"), checkpoint_path=save_checkpoint(
      {"w": np.ones([3, 3], np.float32)}))

@case
def export_checkpoint_wrong_dtype():
  LINEAR.export(fresh_dir("export"), checkpoint_path=save_checkpoint(
      {"w": np.ones([2, 3], np.float64)}))

@case
def export_checkpoint_wrong_scope():
  LINEAR.export(fresh_dir("export"),
                checkpoint_path=save_checkpoint(
                    {"w": np.ones([2, 3], np.float32)}),
                name_transform_fn=lambda name: "tower/" + name)

@case
def attached_message_required():
  LINEAR.get_attached_message("nope", summary_pb2.Summary, required=True)

# ---- resolver.py
@case
def path_does_not_exist():
  hub.load_module_spec(os.path.join(TMP, "no", "such", "module"))

class Handler(http.server.BaseHTTPRequestHandler):
  def do_GET(self):
    if self.path.startswith("/redirect_200"):
      body = b"gs://bucket/module"
      self.send_response(200)
    elif self.path.startswith("/redirect_to_http"):
      body = b"http://example.com/module"
      self.send_response(303)
    else:
      try:
        with open(os.path.join(TMP, "www", self.path.lstrip("/").split("?")[0]),
                  "rb") as f:
          body = f.read()
        self.send_response(200)
      except IOError:
        body = b"not found"
        self.send_response(404)
    self.send_header("Content-Length", str(len(body)))
    self.end_headers()
    self.wfile.write(body)
  def log_message(self, *args):
    pass

SERVER = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=SERVER.serve_forever, daemon=True).start()
URL = "http://127.0.0.1:%d/" % SERVER.server_address[1]
os.makedirs(os.path.join(TMP, "www"))

def serve_tar(name, add):
  with tarfile.open(os.path.join(TMP, "www", name), "w:gz") as tar:
    add(tar)
  return URL + name

@case
def unknown_scheme():
  hub.load_module_spec("nosuchscheme://some/module")

@case
def not_a_valid_module_archive():
  with open(os.path.join(TMP, "www", "garbage.tar.gz"), "wb") as f:
    f.write(b"this is not a tar archive")
  hub.load_module_spec(URL + "garbage.tar.gz")

@case
def tar_member_of_unexpected_type():
  def add(tar):
    info = tarfile.TarInfo("fifo")
    info.type = tarfile.FIFOTYPE
    tar.addfile(info)
  hub.load_module_spec(serve_tar("fifo.tar.gz", add))

@case
def tar_member_escapes():
  def add(tar):
    data = b"x"
    info = tarfile.TarInfo("../escaped")
    info.size = len(data)
    import io
    tar.addfile(info, io.BytesIO(data))
  hub.load_module_spec(serve_tar("escape.tar.gz", add))

@case
def uncompressed_not_redirected():
  with mock.patch.dict(os.environ, {"TFHUB_MODEL_LOAD_FORMAT": "UNCOMPRESSED"}):
    hub.load_module_spec(URL + "redirect_200")

@case
def uncompressed_redirect_not_gcs():
  with mock.patch.dict(os.environ, {"TFHUB_MODEL_LOAD_FORMAT": "UNCOMPRESSED"}):
    hub.load_module_spec(URL + "redirect_to_http")

# ---- image_util.py
@case
def image_input_missing():
  hub.get_expected_image_size(LINEAR)

@case
def image_size_unknown():
  hub.get_expected_image_size(
      hub.create_module_spec(image_fn([None, None, None, 3])))

@case
def image_channels_unknown():
  hub.get_num_image_channels(
      hub.create_module_spec(image_fn([None, 4, 4, None])))

# ---- feature_column.py
@case
def not_a_text_embedding():
  hub.text_embedding_column("k", LINEAR)

@case
def text_embedding_config_of_spec():
  hub.text_embedding_column("k", hub.create_module_spec(text_fn)).get_config()

@case
def not_an_image_embedding():
  hub.image_embedding_column("k", LINEAR)

@case
def image_embedding_config_of_spec():
  hub.image_embedding_column(
      "k", hub.create_module_spec(image_fn([None, 4, 4, 3]))).get_config()

@case
def sparse_text_embedding_combiner():
  hub.sparse_text_embedding_column("k", hub.create_module_spec(text_fn),
                                   combiner="max", default_value=None)

# ---- estimator.py
@case
@in_graph
def module_registered_twice():
  m = hub.Module(LINEAR)
  hub.register_module_for_export(m, "m")
  hub.register_module_for_export(m, "m")

@case
def exports_to_keep_not_positive():
  hub.LatestModuleExporter("e", lambda: None, exports_to_keep=0)

def describe(e):
  # A KeyError's str() is the repr of its message: report the message.
  message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
  return {"mro": [c.__module__ + "." + c.__name__ for c in type(e).__mro__],
          "message": str(message).replace(TMP, "<TMP>").replace(URL, "<URL>/")}

for name, fn in CASES.items():
  CURRENT[:] = [name, 0]
  try:
    fn()
    emit(name, {"mro": [], "message": "no error"})
  except Exception as e:  # pylint: disable=broad-except
    emit(name, describe(e))
SERVER.shutdown()
"""

# Where the original's message stops being text we reproduce, per case:
# the phrase is the original's message without what this regex matches.
_CUT = {
    # TensorFlow's conversion error names the object by its address.
    "input_not_convertible": r", but got .*",
    # The original names its internal class SavedModelHandler.
    "no_graph_with_tags": r"^SavedModelHandler ",
    # The original prints the whole checkpoint's shape map.
    "export_checkpoint_wrong_scope": r"(?<= checkpoint) \{.*",
    # A typo of the original: no space before "at least".
    "no_signatures": r"(?<=\(\.\.\.\))at least.*",
    # A typo of the original (no space before "that uses"); the class is
    # the implementation's own.
    "text_embedding_config_of_spec": r"(?<=`)that uses.*",
    "image_embedding_config_of_spec": r"(?<=`)that uses.*",
    # TensorFlow's words after the op name name the machine.
    "graph_ops_missing": r" in binary running on .*",
}
# Where the phrase is only a part of the original's message (TensorFlow's
# error with its stack traces around it): the first match of this regex.
_EXTRACT = {
    "export_checkpoint_wrong_dtype":
        r"tensor_name = \S+; expected dtype \w+ does not equal original "
        r"dtype \w+",
}
# Further phrases of the original's own raise statement, where TensorFlow
# failed before the original got to it (hub_tf1 says both).
_ALSO = {
    "graph_ops_missing": ["are also absent from the c++ registry"],
}
# Deliberate differences (docs/ERRORS.md gives the reasons): the cases run,
# and must fail in hub_tf1, but class and words are not compared.
_DIFFERENT = {
    # The original trips over its own colocation check with an
    # AttributeError; hub_tf1 reports the type as for outputs.
    "add_signature_bad_input_type",
}
# Known gaps (docs/ERRORS.md): hub_tf1 does not fail here yet.
_GAPS = set()


def _phrase(case: str, message: str) -> str:
  """The original's `message` as hub_tf1's must contain it."""
  if case in _CUT:
    message = re.sub(_CUT[case], "", message, count=1, flags=re.S)
  if case in _EXTRACT:
    found = re.search(_EXTRACT[case], message)
    message = found.group(0) if found else ""
  # The original writes some paths as bytes reprs.
  message = re.sub(r"b'(<TMP>[^']*)'", r"\1", message)
  return message.strip().rstrip(".")


class ErrorsFidelityTest(fidelity_lib.BothRunsTestCase):

  SNIPPET = _SNIPPET

  def test_every_case_fails_in_both(self):
    theirs, ours = self.results()
    self.assertCountEqual(ours, theirs)
    for name in theirs:
      with self.subTest(name):
        self.assertNotEmpty(theirs[name]["mro"], theirs[name])
        if name in _GAPS:
          self.assertEmpty(ours[name]["mro"], "gap closed: update the test "
                           "and docs/ERRORS.md")
        else:
          self.assertNotEmpty(ours[name]["mro"], ours[name])

  def test_exception_is_an_instance_of_the_originals(self):
    theirs, ours = self.results()
    for name in theirs:
      if name in _DIFFERENT or name in _GAPS:
        continue
      with self.subTest(name):
        self.assertIn(theirs[name]["mro"][0], ours[name]["mro"],
                      (theirs[name], ours[name]))
        if not ours[name]["mro"][0].startswith(("builtins.", "tensorflow.")):
          self.assertIn("hub_tf1.errors.Error", ours[name]["mro"])

  def test_message_has_the_originals_phrase(self):
    theirs, ours = self.results()
    for name in theirs:
      if name in _DIFFERENT or name in _GAPS:
        continue
      with self.subTest(name):
        phrase = _phrase(name, theirs[name]["message"])
        self.assertNotEmpty(phrase, theirs[name])
        self.assertIn(phrase, ours[name]["message"])
        for also in _ALSO.get(name, ()):
          self.assertIn(also, ours[name]["message"])

  def test_differences_still_hold(self):
    # Each listed difference is one of the original's: once it is gone, the
    # case must be compared like the others.
    theirs, _ = self.results()
    for name in _DIFFERENT:
      with self.subTest(name):
        self.assertEqual(theirs[name]["mro"][0], "builtins.AttributeError")


if __name__ == "__main__":
  absltest.main()
