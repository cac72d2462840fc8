"""`hub-tf1 cache list|prefetch|remove` against a real server on 127.0.0.1:
prefetch into a cache, copy it to an "air-gapped" directory, load from there
in cache-only mode with the server stopped and no connection made."""

import io
import json
import os
import shutil
import subprocess
import sys
from unittest import mock

from absl.testing import absltest
import tensorflow as tf

import hub_tf1 as hub
from hub_tf1 import cli
from hub_tf1 import resolving
from hub_tf1.resolving import cache
from hub_tf1.resolving import cache_admin
from hub_tf1.resolving import config
from tests import testing_http_server as ths

_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
_REF = os.path.join(_TESTS_DIR, "testdata", "fixtures", "ref_modules")
_NNLM_TGZ = os.path.join(_REF, "text_embedding_nnlm.tar.gz")
_HALF_PLUS_TWO_TGZ = os.path.join(_TESTS_DIR, "testdata", "fixtures",
                                  "external", "half_plus_two_v1.tar.gz")


def _cli(*argv):
  """Runs the CLI in-process; returns (exit code, stdout, stderr)."""
  out, err = io.StringIO(), io.StringIO()
  with mock.patch("sys.stdout", out), mock.patch("sys.stderr", err):
    code = cli.main(list(argv))
  return code, out.getvalue(), err.getvalue()


class CacheCommandTest(ths.ResolvingTestCase):

  served_files = (_NNLM_TGZ, _HALF_PLUS_TWO_TGZ)

  def _handles(self):
    return [self.server.url("/hub/text_embedding_nnlm"),
            self.server.url("/hub/half_plus_two_v1")]

  def test_prefetch_copy_and_load_offline(self):
    handles = self._handles()
    staging = self.create_tempdir().full_path
    code, out, err = _cli("cache", "--cache_dir", staging, "prefetch",
                          *handles)
    self.assertEqual(code, 0, err)
    self.assertEqual(self.server.connections, 2)
    self.assertIn("Downloaded %s" % handles[0], out + err)  # Progress shown.
    for handle in handles:
      self.assertTrue(cache.is_complete(cache.module_dir_for(handle,
                                                             staging)))
    # A second prefetch is a no-op.
    self.assertEqual(_cli("cache", "--cache_dir", staging, "prefetch",
                          *handles)[0], 0)
    self.assertEqual(self.server.connections, 2)

    code, out, _ = _cli("cache", "--cache_dir", staging, "list", "--json")
    self.assertEqual(code, 0)
    listed = json.loads(out)["entries"]
    self.assertEqual(sorted(e["handle"] for e in listed), sorted(handles))
    self.assertTrue(all(e["complete"] and e["size_bytes"] > 0
                        for e in listed))

    # The air-gapped machine: a copy of the directory, no server, cache-only.
    self.server.stop()
    offline = os.path.join(self.create_tempdir().full_path, "cache")
    shutil.copytree(staging, offline)
    os.environ[config.CACHE_DIR_ENV] = offline
    os.environ[config.CACHE_ONLY_ENV] = "1"
    with tf.Graph().as_default():
      embeddings = hub.Module(handles[0])(["cat dog"])
      with tf.compat.v1.Session() as session:
        session.run([tf.compat.v1.global_variables_initializer(),
                     tf.compat.v1.tables_initializer()])
        self.assertEqual(session.run(embeddings).shape, (1, 8))
    self.assertEqual(self.server.connections, 2)
    self.server = ths.TestingHttpServer(self.served).start()  # For tearDown.

  def test_list_text_and_remove(self):
    handle = self._handles()[0]
    path = resolving.resolve(handle)
    code, out, _ = _cli("cache", "list")
    self.assertEqual(code, 0)
    self.assertIn(handle, out)
    self.assertIn("1 module(s) in %s" % self.cache_dir, out)

    code, out, err = _cli("cache", "remove", handle)
    self.assertEqual(code, 0, err)
    self.assertFalse(os.path.exists(path))
    self.assertFalse(os.path.exists(path + ".descriptor.txt"))
    self.assertEqual(os.listdir(self.cache_dir), [])  # Lock released too.

  def test_remove_by_key_and_missing_entry(self):
    handle = self._handles()[0]
    path = resolving.resolve(handle)
    self.assertEqual(_cli("cache", "remove", os.path.basename(path))[0], 0)
    self.assertFalse(os.path.exists(path))
    code, _, err = _cli("cache", "remove", handle)
    self.assertEqual(code, 1)
    self.assertIn("has no entry in the cache directory %s" % self.cache_dir,
                  err)

  def test_prefetch_errors_name_the_handle_and_keep_going(self):
    bad = self.server.url("/hub/no_such_module")
    good = self._handles()[0]
    code, out, err = _cli("cache", "prefetch", bad, good, "/local/path")
    self.assertEqual(code, 1)
    self.assertIn(bad, err)
    self.assertIn("/local/path is a local path", err)
    self.assertIn("prefetched %s" % good, out)
    self.assertEqual([e.key for e in cache_admin.list_entries()],
                     [cache.cache_key(good)])

  def test_console_entry_point(self):
    # `python -m hub_tf1 cache list` in a fresh process.
    env = dict(os.environ, PYTHONPATH=os.path.dirname(_TESTS_DIR))
    result = subprocess.run(
        [sys.executable, "-m", "hub_tf1", "cache", "list"], env=env,
        capture_output=True, text=True, check=False)
    self.assertEqual(result.returncode, 0, result.stderr)
    self.assertIn("0 module(s) in %s" % self.cache_dir, result.stdout)


if __name__ == "__main__":
  absltest.main()
