"""`resolve(handle)`: from a module handle to a directory TensorFlow can read.

Dispatch, in the order tensorflow_hub 0.15 used:

1. `http://` / `https://` with TFHUB_MODEL_LOAD_FORMAT COMPRESSED or AUTO:
   download `<handle>?tf-hub-format=compressed` (a gzipped tarball of the
   module) into the cache.  `https://hub.tensorflow.google.cn/<x>` is fetched
   from `https://gcs.tensorflow.google.cn/tfhub-modules/<x>.tar.gz`.
2. `gs://....tar`, `.tar.gz`, `.tgz`: stream the archive through tf.io.gfile
   into the cache.
3. `http(s)://` with UNCOMPRESSED: ask `<handle>?tf-hub-format=uncompressed`
   for a 303 whose body is the module's gs:// location; read it in place.
4. Anything else is a path (local, `file://`, `gs://` directory, any file
   system tf.io.gfile knows), returned unchanged if it exists.

Cache-only mode (TFHUB_CACHE_ONLY, see config.py) never downloads: cases 1-3
are answered from the cache alone (whatever the load format, since an
UNCOMPRESSED lookup needs the server), a miss raises `NotInCacheError`.
Paths (case 4) are read as given.
"""

import re
import urllib.error

import tensorflow as tf

from hub_tf1.resolving import cache
from hub_tf1.resolving import config
from hub_tf1.resolving import errors
from hub_tf1.resolving import fetch
from hub_tf1.resolving import http_download

_HTTP_PREFIXES = ("http://", "https://")
_TARBALL_SUFFIXES = (".tar", ".tar.gz", ".tgz")
_HUB_CN = "https://hub.tensorflow.google.cn/"
_GCS_CN = "https://gcs.tensorflow.google.cn/tfhub-modules/%s.tar.gz"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")

ACCEPTED_FORMS = (
    "a local directory path or a file:// URL of a module directory",
    "an http:// or https:// URL of a module served as a gzipped tarball "
    "(?tf-hub-format=compressed, e.g. tfhub.dev handles) or of a .tar.gz file",
    "a gs:// path of a module directory or of a .tar, .tar.gz or .tgz archive",
    "a path on any other file system tf.io.gfile supports")


def _unsupported(handle: str, detail: str,
                 cls=errors.UnsupportedHandleError
                ) -> errors.UnsupportedHandleError:
  return cls(
      "Unsupported module handle %r: %s. Accepted are: %s." %
      (handle, detail, "; ".join(ACCEPTED_FORMS)))


def resolve_path(handle: str) -> str:
  """Returns `handle` if tf.io.gfile finds it.

  Raises:
    IOError: `<handle> does not exist.`
    UnknownSchemeError: a URL scheme no file system handles (an
      `UnsupportedHandleError` and a `tf.errors.UnimplementedError`).
  """
  try:
    exists = tf.io.gfile.exists(handle)
  except tf.errors.UnimplementedError:
    match = _SCHEME.match(handle)
    scheme = match.group(1) if match else handle.split(":", 1)[0]
    raise _unsupported(
        handle, "File system scheme %r not implemented (file: %r): no file "
        "system or resolver handles it" % (scheme, handle),
        errors.UnknownSchemeError) from None
  if not exists:
    raise IOError("%s does not exist." % handle)
  return handle


def _resolve_http_compressed(handle: str) -> str:
  if handle.startswith(_HUB_CN):
    url = _GCS_CN % handle[len(_HUB_CN):]
  else:
    url = http_download.append_format_query(handle, "compressed")
  settings = config.DownloadSettings.from_env()

  def download(dst_dir, check):
    fetch.fetch_http(handle, url, dst_dir, settings, check)
  return cache.get_or_download(handle, download)


def _resolve_gfile_tarball(handle: str) -> str:
  settings = config.DownloadSettings.from_env()

  def download(dst_dir, check):
    fetch.fetch_gfile(handle, dst_dir, settings, check)
  return cache.get_or_download(handle, download)


def _resolve_http_uncompressed(handle: str) -> str:
  """Asks the server for the module's gs:// location (a 303 answer)."""
  url = http_download.append_format_query(handle, "uncompressed")
  timeout = config.DownloadSettings.from_env().timeout_sec
  try:
    response = http_download.urlopen(url, timeout)
  except urllib.error.HTTPError as e:
    if e.code != 303:
      raise ValueError("Expected 303 See other HTTP response but received "
                       "code %d for %s" % (e.code, url)) from e
    location = e.read().decode("utf-8", "replace").strip()
  else:
    response.close()
    raise ValueError("Expected 303 See other HTTP response but received code "
                     "%d for %s" % (response.status, url))
  if not location.startswith("gs://"):
    raise ValueError("Expected server to return a GCS location but received "
                     "%s (for %s)" % (location[:200], handle))
  return resolve_path(location)


def resolve(handle: str) -> str:
  """Returns the directory of the module `handle` (downloading if needed).

  Raises:
    IOError: a path that does not exist; an archive that is not a valid
      module (`InvalidModuleArchiveError`); a failed download
      (`DownloadError`).
    urllib.error.HTTPError: an HTTP error status (`ModuleHttpError`).
    ValueError: an unsafe archive member (`UnsafeArchiveError`), a handle of
      no supported form (`UnsupportedHandleError`).
    NotInCacheError: cache-only mode and the module is not cached (an
      IOError).
    tf.errors.PermissionDeniedError: not cached and the cache directory is
      read-only (`CacheNotWritableError`).
  """
  if not isinstance(handle, str):
    raise TypeError("A module handle must be a string, got %r." % (handle,))
  if not handle:
    raise _unsupported(handle, "it is empty")
  if handle.startswith(_HTTP_PREFIXES):
    if (config.model_load_format() == config.UNCOMPRESSED and
        not config.cache_only()):
      return _resolve_http_uncompressed(handle)
    return _resolve_http_compressed(handle)
  if handle.startswith("gs://") and handle.endswith(_TARBALL_SUFFIXES):
    return _resolve_gfile_tarball(handle)
  return resolve_path(handle)
