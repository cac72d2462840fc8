"""`hub-tf1 inspect`: every fixture, against the original's view and the
checkpoint; broken modules; a URL on 127.0.0.1; no session is created."""

import io
import json
import os
from unittest import mock

from absl.testing import absltest
import tensorflow as tf

from hub_tf1 import cli
from hub_tf1.inspection import inspect
from tests import fidelity_lib
from tests import testing_http_server as ths
from tests import testing_modules as tm

_FIXTURES = os.path.join(tm.FIXTURES_DIR, "ref_modules")


def _module_fixtures():
  return sorted(n for n in os.listdir(_FIXTURES)
                if os.path.isdir(os.path.join(_FIXTURES, n)) and
                not n.startswith("broken"))


def _inspect_json(handle: str) -> dict:
  out = io.StringIO()
  with mock.patch("sys.stdout", out):
    code = cli.main(["inspect", handle, "--json"])
  assert code == 0, (handle, code)
  return json.loads(out.getvalue())


# Run against tensorflow_hub 0.15 with the same source: what its ModuleSpec
# says about tags, signatures and their inputs/outputs.
_ORIGINAL_VIEW = """
for PATH in PATHS:
 spec = hub.load_module_spec(PATH)
 view = []
 for tags in spec.get_tags():
  signatures = []
  for name in sorted(spec.get_signature_names(tags=tags)):
    def infos(d):
      return [[k, v.dtype.name,
               None if v.get_shape().rank is None else
               [None if s is None else int(s) for s in v.get_shape().as_list()],
               bool(v.is_sparse)]
              for k, v in sorted(d.items())]
    signatures.append([name,
                       infos(spec.get_input_info_dict(name, tags=tags)),
                       infos(spec.get_output_info_dict(name, tags=tags))])
  view.append([sorted(tags), signatures])
 emit(PATH, sorted(view))
"""


def _our_view(description: dict):
  view = []
  for variant in description["variants"]:
    signatures = []
    for signature in variant["signatures"]:
      def infos(entries):
        return [[t["name"], t["dtype"], t["shape"], t["kind"] == "sparse"]
                for t in entries]
      signatures.append([signature["name"], infos(signature["inputs"]),
                         infos(signature["outputs"])])
    view.append([variant["tags"], signatures])
  return sorted(view)


class InspectFixturesTest(absltest.TestCase):

  def test_every_fixture_matches_the_original_and_its_checkpoint(self):
    fidelity_lib.skip_without_ref(self)
    names = _module_fixtures()
    self.assertGreater(len(names), 10)
    paths = [os.path.join(_FIXTURES, name) for name in names]
    original = fidelity_lib.run("PATHS = %r\n" % paths + _ORIGINAL_VIEW,
                                reference=True)
    for name, path in zip(names, paths):
      description = _inspect_json(path)
      self.assertEqual(description["schema"], inspect.SCHEMA)
      self.assertEqual(description["format_version"], 3, name)
      self.assertEqual(_our_view(description), original[path], name)
      prefix = os.path.join(path, "variables", "variables")
      if not tf.io.gfile.exists(prefix + ".index"):
        self.assertIsNone(description["checkpoint"], name)
        continue
      in_checkpoint = dict(tf.train.list_variables(prefix))
      for variant in description["variants"]:
        for variable in variant["variables"]:
          self.assertEqual(in_checkpoint.get(variable["name"]),
                           variable["shape"], (name, variable["name"]))
          self.assertGreater(variable["bytes"], 0, (name, variable["name"]))
      self.assertEqual(description["checkpoint"]["tensors"],
                       len(in_checkpoint), name)

  def test_partitions_tables_assets_and_sizes(self):
    nnlm = _inspect_json(os.path.join(_FIXTURES, "text_embedding_nnlm"))
    variant = nnlm["variants"][0]
    self.assertEqual([a["file"] for a in variant["assets"]], ["tokens.txt"])
    self.assertEqual(variant["assets"][0]["size_bytes"], os.path.getsize(
        os.path.join(_FIXTURES, "text_embedding_nnlm", "assets",
                     "tokens.txt")))
    self.assertEqual([t["op"] for t in variant["tables"]], ["HashTableV2"])
    self.assertEqual(sorted(v["tags"] for v in nnlm["variants"]),
                     [[], ["train"]])
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in
                os.walk(os.path.join(_FIXTURES, "text_embedding_nnlm"))
                for f in fs)
    self.assertEqual(nnlm["size_bytes"], total)

    parts = _inspect_json(os.path.join(_FIXTURES, "partitioned_embedding"))
    by_name = {v["name"]: v for v in parts["variants"][0]["variables"]}
    self.assertEqual(by_name["embeddings"]["partitions"], 3)
    self.assertEqual(by_name["embeddings"]["bytes"], 11 * 4 * 4)
    self.assertEqual(by_name["embeddings"]["shape"], [11, 4])

  def test_ragged_and_sparse_kinds(self):
    ragged = _inspect_json(os.path.join(_FIXTURES, "ragged_io"))
    inputs = {t["name"]: t for s in ragged["variants"][0]["signatures"]
              if s["name"] == "default" for t in s["inputs"]}
    self.assertEqual(inputs["ids"]["kind"], "ragged")
    self.assertEqual(inputs["ids"]["dtype"], "int64")
    sparse = _inspect_json(os.path.join(_FIXTURES, "sparse_text_embedding"))
    kinds = {t["kind"] for s in sparse["variants"][0]["signatures"]
             for t in s["inputs"]}
    self.assertIn("sparse", kinds)

  def test_text_output_names_signatures_and_variables(self):
    out = io.StringIO()
    with mock.patch("sys.stdout", out):
      code = cli.main(["inspect", os.path.join(_FIXTURES, "multi_signature")])
    self.assertEqual(code, 0)
    text = out.getvalue()
    for expected in ("signature 'fruit_to_pets'", "dense/kernel",
                     "table hash_table", "format version 3"):
      self.assertIn(expected, text)

  def test_no_session_is_created(self):
    with mock.patch.object(tf.compat.v1.Session, "__init__",
                           side_effect=AssertionError("session created")):
      for name in _module_fixtures():
        _inspect_json(os.path.join(_FIXTURES, name))

  def test_broken_modules_exit_2_naming_the_module(self):
    for name in ("broken_missing_module_pb", "broken_corrupt_saved_model",
                 "broken_unknown_feature", "broken_unspecified_format"):
      path = os.path.join(_FIXTURES, name)
      err = io.StringIO()
      with mock.patch("sys.stderr", err), mock.patch("sys.stdout",
                                                     io.StringIO()):
        self.assertEqual(cli.main(["inspect", path]), 2, name)
      self.assertIn(path, err.getvalue(), name)


class InspectUrlTest(ths.ResolvingTestCase):

  served_files = (os.path.join(_FIXTURES, "text_embedding_nnlm.tar.gz"),)

  def test_url_on_localhost(self):
    url = self.server.url("/hub/text_embedding_nnlm")
    description = _inspect_json(url)
    self.assertEqual(description["handle"], url)
    self.assertTrue(description["path"].startswith(self.cache_dir))
    self.assertEqual(
        [v["name"] for v in description["variants"][0]["variables"]],
        ["embeddings"])


if __name__ == "__main__":
  absltest.main()
