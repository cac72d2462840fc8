"""`resolve(handle)`: from a module handle to a directory TensorFlow can read.

Handles are dispatched through a small registry of resolvers (a URL scheme or
a predicate on the handle, and a function from the handle to a module
directory).  Resolvers registered with `register_resolver` are consulted
first, newest first; then the built-ins, in the order tensorflow_hub 0.15
used:

1. `http://` / `https://` with TFHUB_MODEL_LOAD_FORMAT COMPRESSED or AUTO:
   download `<handle>?tf-hub-format=compressed` (a gzipped tarball of the
   module) into the cache.  `https://hub.tensorflow.google.cn/<x>` is fetched
   from `https://gcs.tensorflow.google.cn/tfhub-modules/<x>.tar.gz`.
   With UNCOMPRESSED: ask `<handle>?tf-hub-format=uncompressed` for a 303
   whose body is the module's gs:// location; read it in place.
2. `gs://....tar`, `.tar.gz`, `.tgz`: stream the archive through tf.io.gfile
   into the cache.
3. Anything else is a path (local, `file://`, `gs://` directory, any file
   system tf.io.gfile knows, including TensorFlow file-system plugins),
   returned unchanged if it exists.  This fallback is not in the registry.

Cache-only mode (TFHUB_CACHE_ONLY, see config.py) never downloads: cases 1-2
are answered from the cache alone (whatever the load format, since an
UNCOMPRESSED lookup needs the server), a miss raises `NotInCacheError`.
Paths (case 3) are read as given.  The accepted forms listed in errors are
derived from the registry (`accepted_forms()`); docs/HANDLES.md has examples.
"""

import dataclasses
import re
import threading
import urllib.error
from typing import Callable, Tuple, Union

import tensorflow as tf

from hub_tf1 import fileio
from hub_tf1.resolving import cache
from hub_tf1.resolving import config
from hub_tf1.resolving import errors
from hub_tf1.resolving import fetch
from hub_tf1.resolving import http_download

_HTTP_PREFIXES = ("http://", "https://")
_TARBALL_SUFFIXES = (".tar", ".tar.gz", ".tgz")
_HUB_CN = "https://hub.tensorflow.google.cn/"
_GCS_CN = "https://gcs.tensorflow.google.cn/tfhub-modules/%s.tar.gz"

# A resolver turns a handle into the path of a module directory.
ResolveFn = Callable[[str], str]
# A URL scheme ("myhub" for "myhub://...") or a test on the whole handle.
SchemeOrPredicate = Union[str, Callable[[str], bool]]

_SCHEME_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
# Descriptions of the path fallback, around those of the registry.
_PATH_FORMS_FIRST = (
    "a local directory path or a file:// URL of a module directory",)
_PATH_FORMS_LAST = (
    "a gs:// path of a module directory",
    "a path on any other file system tf.io.gfile supports")


@dataclasses.dataclass(frozen=True)
class _Resolver:
  key: SchemeOrPredicate  # As registered (the key for unregistering).
  matches: Callable[[str], bool]
  resolve: ResolveFn
  description: str


_registry_lock = threading.Lock()
_resolvers = ()  # type: Tuple[_Resolver, ...]  # Newest first.
ACCEPTED_FORMS = _PATH_FORMS_FIRST + _PATH_FORMS_LAST  # Kept current.


def accepted_forms() -> Tuple[str, ...]:
  """How a handle may look: the registry's descriptions and the paths."""
  return ACCEPTED_FORMS


def register_resolver(scheme_or_predicate: SchemeOrPredicate,
                      resolve_fn: ResolveFn,
                      description: str = "") -> None:
  """Makes `resolve` hand some handles to `resolve_fn`.

  Resolvers are consulted newest first, before the built-in ones, so a later
  registration can also take over handles a built-in resolver would handle
  (e.g. a mirror for some https:// handles).  Handles no resolver claims are
  paths.

  Args:
    scheme_or_predicate: a URL scheme such as "myhub", which claims the
      handles that start with "myhub://" (exact case, as for the built-in
      schemes); or a callable that gets the handle and returns whether
      `resolve_fn` handles it.
    resolve_fn: called with the handle; returns the path of the module
      directory (any tf.io.gfile path).  It may use `get_or_download` to
      cache what it fetches.  Its exceptions pass to the caller of `resolve`.
    description: how the claimed handles look, listed in the error for an
      unsupported handle; default "a <scheme>:// handle" (required with a
      predicate).

  Raises:
    ResolverRegistrationError: a malformed scheme, a scheme registered
      already, a `resolve_fn` or predicate that is not callable, or a
      predicate without a description.
  """
  global _resolvers, ACCEPTED_FORMS
  if not callable(resolve_fn):
    raise errors.ResolverRegistrationError(
        "resolve_fn must be callable, got %r." % (resolve_fn,))
  if isinstance(scheme_or_predicate, str):
    scheme = scheme_or_predicate
    if not _SCHEME_NAME.match(scheme):
      raise errors.ResolverRegistrationError(
          "Bad URL scheme %r: give the name only (letters first, then "
          "letters, digits, '+', '-' or '.'), e.g. 'myhub' for myhub:// "
          "handles." % scheme)
    prefix = scheme + "://"
    matches = lambda handle: handle.startswith(prefix)
    description = description or "a %s handle" % prefix
  elif callable(scheme_or_predicate):
    matches = scheme_or_predicate
    if not description:
      raise errors.ResolverRegistrationError(
          "A resolver registered with a predicate (%r) needs a description "
          "of the handles it accepts." % (scheme_or_predicate,))
  else:
    raise errors.ResolverRegistrationError(
        "scheme_or_predicate must be a URL scheme or a callable, got %r." %
        (scheme_or_predicate,))
  entry = _Resolver(scheme_or_predicate, matches, resolve_fn, description)
  with _registry_lock:
    if any(r.key == scheme_or_predicate for r in _resolvers):
      raise errors.ResolverRegistrationError(
          "A resolver for %r is registered already; unregister it first." %
          (scheme_or_predicate,))
    _resolvers = (entry,) + _resolvers
    ACCEPTED_FORMS = _forms(_resolvers)


def unregister_resolver(scheme_or_predicate: SchemeOrPredicate) -> None:
  """Removes what `register_resolver(scheme_or_predicate, ...)` added.

  Raises:
    ResolverRegistrationError: nothing is registered for it.
  """
  global _resolvers, ACCEPTED_FORMS
  with _registry_lock:
    rest = tuple(r for r in _resolvers if r.key != scheme_or_predicate)
    if len(rest) == len(_resolvers):
      raise errors.ResolverRegistrationError(
          "No resolver is registered for %r." % (scheme_or_predicate,))
    _resolvers = rest
    ACCEPTED_FORMS = _forms(_resolvers)


def _forms(resolvers: Tuple[_Resolver, ...]) -> Tuple[str, ...]:
  """Path forms first and last; the registry's, oldest first, between."""
  middle = []
  for r in reversed(resolvers):
    if r.description not in middle:
      middle.append(r.description)
  return _PATH_FORMS_FIRST + tuple(middle) + _PATH_FORMS_LAST


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
    scheme = fileio.url_scheme(handle) or handle.split(":", 1)[0]
    raise _unsupported(
        handle, "File system scheme %r not implemented (file: %r): no file "
        "system or resolver handles it" % (scheme, handle),
        errors.UnknownSchemeError) from None
  if not exists:
    raise IOError("%s does not exist." % handle)
  return handle


def _resolve_http(handle: str) -> str:
  if (config.model_load_format() == config.UNCOMPRESSED and
      not config.cache_only()):
    return _resolve_http_uncompressed(handle)
  return _resolve_http_compressed(handle)


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

  Args:
    handle: a path (any tf.io.gfile path), a `file://` URL, an http(s) URL
      of a module archive (or of tfhub.dev's `?tf-hub-format=compressed`
      form), or a handle of a registered resolver (`register_resolver`).

  Returns:
    The path of a local (or tf.io.gfile) directory holding the module.

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
    TypeError: `handle` is not a string, or a registered resolver returned
      something other than a path.
    Anything a resolver registered with `register_resolver` raises.
  """
  if not isinstance(handle, str):
    raise TypeError("A module handle must be a string, got %r." % (handle,))
  if not handle:
    raise _unsupported(handle, "it is empty")
  for entry in _resolvers:
    if entry.matches(handle):
      path = entry.resolve(handle)
      if not isinstance(path, str) or not path:
        raise TypeError("The resolver for %r returned %r for %r, not the "
                        "path of a module directory." %
                        (entry.key, path, handle))
      return path
  return resolve_path(handle)


def _is_gfile_tarball(handle: str) -> bool:
  return handle.startswith("gs://") and handle.endswith(_TARBALL_SUFFIXES)


# The built-ins, registered like any other (oldest first; their handles do
# not overlap).
register_resolver(
    lambda handle: handle.startswith(_HTTP_PREFIXES),
    lambda handle: _resolve_http(handle),
    "an http:// or https:// URL of a module served as a gzipped tarball "
    "(?tf-hub-format=compressed, e.g. tfhub.dev handles) or of a .tar.gz file")
register_resolver(
    _is_gfile_tarball, lambda handle: _resolve_gfile_tarball(handle),
    "a gs:// path of a .tar, .tar.gz or .tgz archive")
