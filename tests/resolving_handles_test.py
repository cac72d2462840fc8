"""Resolving handles: paths, file:// URLs, HTTP(S) tarballs, the cache layout.

A real HTTP server on 127.0.0.1 serves the reference module tarballs.
"""

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest
from hub_tf1 import resolving
from hub_tf1.resolving import cache
from hub_tf1.resolving import config
from hub_tf1.resolving import fetch
from hub_tf1.resolving import http_download
from hub_tf1.resolving import progress
from hub_tf1.resolving import resolver
from tests import testing_http_server as ths

_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
_REPO_ROOT = os.path.dirname(_TESTS_DIR)
_FIXTURES = os.path.join(_TESTS_DIR, "testdata", "fixtures")
_REF = os.path.join(_FIXTURES, "ref_modules")
_NNLM_TGZ = os.path.join(_REF, "text_embedding_nnlm.tar.gz")
_HALF_PLUS_TWO_TGZ = os.path.join(_FIXTURES, "external",
                                  "half_plus_two_v1.tar.gz")


class ResolveTestBase(ths.ResolvingTestCase):

  env = {config.DOWNLOAD_BACKOFF_ENV: "0.01",
         config.DOWNLOAD_TIMEOUT_ENV: "20"}
  served_files = (_NNLM_TGZ, _HALF_PLUS_TWO_TGZ)


class HttpResolveTest(ResolveTestBase):

  def test_compressed_query_handle_downloads_and_caches(self):
    handle = self.server.url("/hub/text_embedding_nnlm")
    path = resolving.resolve(handle)
    key = hashlib.sha1(handle.encode("utf-8")).hexdigest()
    self.assertEqual(path, os.path.join(self.cache_dir, key))
    self.assertEqual(ths.dir_files(path), ths.tarball_files(_NNLM_TGZ))
    self.assertEqual(sorted(os.listdir(self.cache_dir)),
                     [key, key + ".descriptor.txt"])
    self.assertEqual(self.server.paths(),
                     ["/hub/text_embedding_nnlm?tf-hub-format=compressed"])
    with open(os.path.join(self.cache_dir, key + ".descriptor.txt")) as f:
      self.assertIn("Module: %s\n" % handle, f.read())
    # Second resolve: a cache hit, no request.
    self.assertEqual(resolving.resolve(handle), path)
    self.assertEqual(self.server.request_count(), 1)

  def test_direct_tar_gz_url_gets_the_format_query_too(self):
    handle = self.server.url("/half_plus_two_v1.tar.gz")
    path = resolving.resolve(handle)
    self.assertEqual(ths.dir_files(path), ths.tarball_files(_HALF_PLUS_TWO_TGZ))
    self.assertEqual(self.server.paths(),
                     ["/half_plus_two_v1.tar.gz?tf-hub-format=compressed"])

  def test_existing_query_is_kept(self):
    handle = self.server.url("/text_embedding_nnlm.tar.gz?version=2")
    resolving.resolve(handle)
    self.assertEqual(
        self.server.paths(),
        ["/text_embedding_nnlm.tar.gz?version=2&tf-hub-format=compressed"])

  def test_cache_key_is_sha1_of_the_handle_as_given(self):
    # Values observed with tensorflow_hub 0.15 (TF1_HUB_FORMAT.md §8.3).
    self.assertEqual(
        resolving.cache_key("http://127.0.0.1:8765/textmod.tar.gz"),
        "45bf63fbc2679ca3785d0a82a5fe147734157be0")
    self.assertNotEqual(resolving.cache_key("http://a/b"),
                        resolving.cache_key("http://a/b/"))

  def test_existing_cache_entry_is_reused_without_request(self):
    handle = self.server.url("/hub/never_served")
    module_dir = os.path.join(self.cache_dir, resolving.cache_key(handle))
    shutil.copytree(os.path.join(_REF, "text_embedding_nnlm"), module_dir)
    self.assertEqual(resolving.resolve(handle), module_dir)
    self.assertEqual(self.server.request_count(), 0)

  def test_incomplete_leftover_entry_is_replaced(self):
    handle = self.server.url("/hub/text_embedding_nnlm")
    module_dir = os.path.join(self.cache_dir, resolving.cache_key(handle))
    # What tensorflow_hub left after a tarball cut at a member boundary.
    os.makedirs(os.path.join(module_dir, "assets"))
    path = resolving.resolve(handle)
    self.assertEqual(ths.dir_files(path), ths.tarball_files(_NNLM_TGZ))
    self.assertEqual(self.server.request_count(), 1)
    self.assertCountEqual(os.listdir(self.cache_dir),
                          [os.path.basename(module_dir),
                           os.path.basename(module_dir) + ".descriptor.txt"])

  def test_incomplete_entry_is_kept_when_the_download_fails(self):
    handle = self.server.url("/hub/missing")
    module_dir = os.path.join(self.cache_dir, resolving.cache_key(handle))
    os.makedirs(os.path.join(module_dir, "assets"))
    before = sorted(os.listdir(self.cache_dir))
    with self.assertRaises(resolving.ModuleHttpError):
      resolving.resolve(handle)
    self.assertEqual(sorted(os.listdir(self.cache_dir)), before)
    self.assertEqual(os.listdir(module_dir), ["assets"])

  def test_cache_dir_is_created_on_demand(self):
    nested = os.path.join(self.cache_dir, "a", "b")
    os.environ[config.CACHE_DIR_ENV] = nested
    path = resolving.resolve(self.server.url("/hub/text_embedding_nnlm"))
    self.assertEqual(os.path.dirname(path), nested)

  def test_file_url_cache_dir(self):
    os.environ[config.CACHE_DIR_ENV] = "file://" + self.cache_dir
    handle = self.server.url("/hub/text_embedding_nnlm")
    path = resolving.resolve(handle)
    key = resolving.cache_key(handle)
    self.assertEqual(path, "file://" + os.path.join(self.cache_dir, key))
    self.assertEqual(sorted(os.listdir(self.cache_dir)),
                     [key, key + ".descriptor.txt"])
    self.assertEqual(resolving.resolve(handle), path)
    self.assertEqual(self.server.request_count(), 1)

  def test_cache_dir_defaults_to_temp_dir(self):
    os.environ.pop(config.CACHE_DIR_ENV)
    self.assertEqual(resolving.cache_dir(),
                     os.path.join(tempfile.gettempdir(), "tfhub_modules"))

  def test_env_wins_over_flag(self):
    flag = config.flags.FLAGS[config.CACHE_DIR_FLAG]
    old = flag.value
    try:
      flag.value = "/from/flag"
      os.environ.pop(config.CACHE_DIR_ENV)
      self.assertEqual(resolving.cache_dir(), "/from/flag")
      os.environ[config.CACHE_DIR_ENV] = "/from/env"
      self.assertEqual(resolving.cache_dir(), "/from/env")
    finally:
      flag.value = old

  def test_uncompressed_mode_requires_303(self):
    os.environ[config.LOAD_FORMAT_ENV] = "UNCOMPRESSED"
    handle = self.server.url("/text_embedding_nnlm.tar.gz")
    with self.assertRaisesRegex(ValueError, "Expected 303.*200"):
      resolving.resolve(handle)
    self.assertEqual(
        self.server.paths(),
        ["/text_embedding_nnlm.tar.gz?tf-hub-format=uncompressed"])

  def test_uncompressed_mode_requires_a_gs_location(self):
    os.environ[config.LOAD_FORMAT_ENV] = "UNCOMPRESSED"
    self.server.set_behavior("/hub/m", ths.Behavior(status=303,
                                                    body=b"/not/gcs"))
    with self.assertRaisesRegex(ValueError, "GCS location.*/not/gcs"):
      resolving.resolve(self.server.url("/hub/m"))
    self.assertEqual(os.listdir(self.cache_dir), [])

  def test_uncompressed_mode_reads_the_location_in_place(self):
    # The 303 body names a gs:// directory that goes to the path resolver.
    # Tests stay off the internet, so the path check is replaced by a recorder.
    os.environ[config.LOAD_FORMAT_ENV] = "UNCOMPRESSED"
    self.server.set_behavior(
        "/hub/m", ths.Behavior(status=303, body=b"gs://bucket/m/1\n"))
    seen = []
    real = resolver.resolve_path
    resolver.resolve_path = lambda p: seen.append(p) or "checked:" + p
    try:
      result = resolving.resolve(self.server.url("/hub/m"))
    finally:
      resolver.resolve_path = real
    self.assertEqual(seen, ["gs://bucket/m/1"])
    self.assertEqual(result, "checked:gs://bucket/m/1")
    self.assertEqual(self.server.paths(), ["/hub/m?tf-hub-format=uncompressed"])
    self.assertEqual(os.listdir(self.cache_dir), [])

  def test_bad_load_format(self):
    os.environ[config.LOAD_FORMAT_ENV] = "ZIPPED"
    with self.assertRaisesRegex(ValueError, "ZIPPED.*COMPRESSED"):
      resolving.resolve(self.server.url("/hub/text_embedding_nnlm"))

  def test_china_mirror_handle_is_fetched_from_gcs_mirror(self):
    urls = []

    def fake_fetch(handle, url, dst_dir, settings, check):
      del handle, dst_dir, settings, check
      urls.append(url)
      raise RuntimeError("stop here")

    real = fetch.fetch_http
    fetch.fetch_http = fake_fetch
    try:
      with self.assertRaisesRegex(RuntimeError, "stop here"):
        resolving.resolve("https://hub.tensorflow.google.cn/google/nnlm/1")
    finally:
      fetch.fetch_http = real
    self.assertEqual(urls, [
        "https://gcs.tensorflow.google.cn/tfhub-modules/google/nnlm/1.tar.gz"])
    self.assertEqual(os.listdir(self.cache_dir), [])

  def test_append_format_query(self):
    self.assertEqual(
        http_download.append_format_query("https://h/m/1?a=b", "compressed"),
        "https://h/m/1?a=b&tf-hub-format=compressed")


class PathResolveTest(ResolveTestBase):

  def test_local_directory_is_returned_unchanged(self):
    path = os.path.join(_REF, "text_embedding_nnlm")
    self.assertEqual(resolving.resolve(path), path)
    self.assertEqual(resolving.resolve(path + "/"), path + "/")

  def test_relative_directory(self):
    cwd = os.getcwd()
    os.chdir(_REF)
    try:
      self.assertEqual(resolving.resolve("text_embedding_nnlm"),
                       "text_embedding_nnlm")
    finally:
      os.chdir(cwd)

  def test_file_url_is_returned_unchanged(self):
    url = "file://" + os.path.join(_REF, "text_embedding_nnlm")
    self.assertEqual(resolving.resolve(url), url)

  def test_missing_path(self):
    missing = os.path.join(self.cache_dir, "nope")
    with self.assertRaisesRegex(IOError, "^%s does not exist.$" % missing):
      resolving.resolve(missing)
    with self.assertRaisesRegex(IOError, "does not exist"):
      resolving.resolve("file://" + missing)

  def test_unknown_schemes_list_the_accepted_forms(self):
    for handle in ("ftp://example.com/m", "foo://bar", "HTTP://upper/case"):
      with self.subTest(handle=handle):
        with self.assertRaises(resolving.UnsupportedHandleError) as cm:
          resolving.resolve(handle)
        msg = str(cm.exception)
        self.assertIn(handle, msg)
        for form in ("file://", "http://", "https://", "gs://", ".tar.gz"):
          self.assertIn(form, msg)
    self.assertEqual(os.listdir(self.cache_dir), [])

  def test_non_string_and_empty_handles(self):
    with self.assertRaises(TypeError):
      resolving.resolve(None)
    with self.assertRaises(resolving.UnsupportedHandleError):
      resolving.resolve("")

  def test_local_tarball_path_is_not_extracted(self):
    # Like the original: only gs:// archives are streamed into the cache.
    self.assertEqual(resolving.resolve(_NNLM_TGZ), _NNLM_TGZ)
    self.assertEqual(os.listdir(self.cache_dir), [])


class GfileTarballTest(ResolveTestBase):
  """The gs://...tar.gz route, exercised on a local path (same gfile code)."""

  def test_streams_archive_through_gfile_into_cache(self):
    handle = "file://" + _HALF_PLUS_TWO_TGZ

    def download(dst_dir, check):
      fetch.fetch_gfile(handle, dst_dir, config.DownloadSettings(), check)
    path = cache.get_or_download(handle, download)
    self.assertEqual(ths.dir_files(path), ths.tarball_files(_HALF_PLUS_TWO_TGZ))

  def test_missing_archive(self):
    handle = os.path.join(self.cache_dir, "missing.tar.gz")

    def download(dst_dir, check):
      fetch.fetch_gfile(handle, dst_dir, config.DownloadSettings(), check)
    with self.assertRaisesRegex(IOError, "missing.tar.gz does not exist"):
      cache.get_or_download(handle, download)
    self.assertEqual(os.listdir(self.cache_dir), [])


class ProgressAndLoggingTest(ResolveTestBase):

  def _run_child(self, handle, extra_env):
    env = dict(os.environ, PYTHONPATH=_REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2",
               **extra_env)
    code = ("import sys; from absl import logging; "
            "logging.set_verbosity(logging.INFO); "
            "from hub_tf1 import resolving; "
            "print(resolving.resolve(sys.argv[1]))")
    result = subprocess.run([sys.executable, "-c", code, handle], env=env,
                            capture_output=True, timeout=120, check=True)
    # Bytes, decoded without newline translation: "\r" must stay "\r".
    return result.stdout.decode("utf-8"), result.stderr.decode("utf-8")

  def test_interactive_progress_line(self):
    handle = self.server.url("/hub/text_embedding_nnlm")
    stdout, stderr = self._run_child(handle,
                                     {config.DOWNLOAD_PROGRESS_ENV: "1"})
    self.assertIn("\rDownloaded %s, Total size: 4.18kB" % handle, stdout)
    self.assertIn("Downloading TF-Hub Module '%s'." % handle, stderr)
    self.assertIn("Downloaded TF-Hub Module '%s'." % handle, stderr)

  def test_progress_goes_to_the_log_when_not_interactive(self):
    handle = self.server.url("/hub/text_embedding_nnlm")
    stdout, stderr = self._run_child(handle,
                                     {config.DOWNLOAD_PROGRESS_ENV: "false"})
    self.assertNotIn("Downloaded", stdout)
    self.assertIn("Downloaded %s, Total size: 4.18kB" % handle, stderr)

  def test_readable_sizes(self):
    self.assertEqual(progress.readable_size(1023), "1023B")
    self.assertEqual(progress.readable_size(4277), "4.18kB")
    self.assertEqual(progress.readable_size(3 << 20), "3.00MB")
    self.assertEqual(progress.readable_size(5 << 30), "5.00GB")

  def test_progress_line_shows_total_and_speed(self):
    now = [0.0]
    out = io.StringIO()
    p = progress.Progress("H", total_bytes=4096, interactive=True, stream=out,
                          clock=lambda: now[0])
    now[0] = 2.0
    p.update(2048)
    self.assertIn("\rDownloading H: 2.00kB of 4.00kB (50%), 1.00kB/s",
                  out.getvalue())
    p.done()
    self.assertRegex(out.getvalue(), "\rDownloaded H, Total size: 2.00kB *\n$")


class HttpsTest(ResolveTestBase):
  """TFHUB_DISABLE_CERT_VALIDATION=true with a self-signed certificate."""

  def setUp(self):
    super().setUp()
    if not shutil.which("openssl"):
      self.skipTest("openssl is not installed")
    tmp = self.create_tempdir().full_path
    self.cert = os.path.join(tmp, "cert.pem")
    self.key = os.path.join(tmp, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
         "1", "-subj", "/CN=127.0.0.1", "-keyout", self.key, "-out",
         self.cert], check=True, capture_output=True, timeout=60)
    import ssl  # pylint: disable=g-import-not-at-top
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(self.cert, self.key)
    self.server.stop()
    self.server = ths.TestingHttpServer(self.served)
    self.server.httpd.socket = context.wrap_socket(self.server.httpd.socket,
                                                   server_side=True)
    self.server.start()

  def test_untrusted_certificate_fails_without_retries(self):
    handle = "https://127.0.0.1:%d/hub/text_embedding_nnlm" % self.server.port
    with self.assertRaisesRegex(resolving.DownloadError,
                                "CERTIFICATE_VERIFY_FAILED"):
      resolving.resolve(handle)
    self.assertEqual(os.listdir(self.cache_dir), [])

  def test_disabled_validation_downloads(self):
    os.environ[config.DISABLE_CERT_VALIDATION_ENV] = "true"
    handle = "https://127.0.0.1:%d/hub/text_embedding_nnlm" % self.server.port
    path = resolving.resolve(handle)
    self.assertEqual(ths.dir_files(path), ths.tarball_files(_NNLM_TGZ))


if __name__ == "__main__":
  absltest.main()
