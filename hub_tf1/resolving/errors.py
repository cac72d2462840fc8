"""Exceptions raised while resolving a handle.

Every class derives from `hub_tf1.errors.Error` and from the class
tensorflow_hub 0.15 raised in the same situation
(`IOError`/`OSError` for a bad archive or a missing path, `ValueError` for an
unsafe tar member, `urllib.error.HTTPError` for HTTP errors), so callers that
catch the original's exceptions keep working; the messages add the handle and
the reason.
"""

import urllib.error

import tensorflow as tf

from hub_tf1 import errors as hub_errors


class InvalidModuleArchiveError(hub_errors.Error, IOError):
  """The downloaded bytes are not a complete, well-formed module archive."""

  def __init__(self, handle: str, reason: str):
    super().__init__("%s does not appear to be a valid module: %s" %
                     (handle, reason))
    self.handle = handle
    self.reason = reason


class UnsafeArchiveError(hub_errors.Error, ValueError):
  """A tar member would escape the module directory or is not a plain file."""

  def __init__(self, handle: str, member: str, reason: str):
    super().__init__("Refusing to extract the module archive of %s: member %r "
                     "%s." % (handle, member, reason))
    self.handle = handle
    self.member = member
    self.reason = reason


class ArchiveTooLargeError(UnsafeArchiveError):
  """The archive expands to more bytes than the configured limit."""


class ModuleHttpError(hub_errors.Error, urllib.error.HTTPError):
  """An HTTP error status for a module download (an `HTTPError` subclass)."""

  def __init__(self, handle: str, url: str, code: int, reason: str,
               headers, attempts: int):
    tries = "" if attempts <= 1 else " (after %d attempts)" % attempts
    msg = "%s while downloading TF-Hub module %s from %s%s" % (
        reason, handle, url, tries)
    super().__init__(url, code, msg, headers, None)
    self.handle = handle
    self.attempts = attempts

  def __str__(self) -> str:
    return "HTTP Error %d: %s" % (self.code, self.msg)


class DownloadError(hub_errors.Error, IOError):
  """The module could not be fetched (network failure, timeouts)."""

  def __init__(self, handle: str, url: str, reason: str, attempts: int):
    tries = "attempt" if attempts == 1 else "%d attempts" % attempts
    super().__init__("Failed to download TF-Hub module %s from %s after %s: %s"
                     % (handle, url, tries, reason))
    self.handle = handle
    self.url = url
    self.reason = reason
    self.attempts = attempts


class UnsupportedHandleError(hub_errors.Error, ValueError):
  """The handle is neither an existing path nor a URL scheme we know."""


class ResolverRegistrationError(hub_errors.Error, ValueError):
  """A bad `register_resolver` / `unregister_resolver` call."""


class UnknownSchemeError(UnsupportedHandleError, tf.errors.UnimplementedError):
  """No file system handles the handle's URL scheme.

  Also a `tf.errors.UnimplementedError`, which tensorflow_hub 0.15 let
  through from `tf.io.gfile` here.
  """

  def __init__(self, message: str):
    tf.errors.UnimplementedError.__init__(self, None, None, message)


class LockLostError(hub_errors.Error, RuntimeError):
  """Another process took over our download lock (we looked dead to it)."""


class NotInCacheError(hub_errors.Error, IOError):
  """Cache-only mode (TFHUB_CACHE_ONLY) and the module is not in the cache."""

  def __init__(self, handle: str, cache_root: str, module_dir: str):
    super().__init__(
        "TF-Hub module %s is not in the cache directory %s (no complete %s) "
        "and TFHUB_CACHE_ONLY forbids downloading it. Load it once on a "
        "connected machine with the same TFHUB_CACHE_DIR layout and copy the "
        "cache directory." % (handle, cache_root, module_dir))
    self.handle = handle
    self.cache_root = cache_root
    self.module_dir = module_dir


class CacheEntryNotFoundError(hub_errors.Error, LookupError):
  """`hub-tf1 cache remove` of a handle that has no cache entry."""

  def __init__(self, handle: str, cache_root: str, module_dir: str):
    super().__init__("TF-Hub module %s has no entry in the cache directory %s "
                     "(no %s)." % (handle, cache_root, module_dir))
    self.handle = handle
    self.cache_root = cache_root
    self.module_dir = module_dir


class CacheNotWritableError(hub_errors.Error, tf.errors.PermissionDeniedError):
  """A module missing from a cache directory we may not write to.

  A `tf.errors.PermissionDeniedError`, which tensorflow_hub 0.15 raised here.
  """

  def __init__(self, handle: str, cache_root: str, reason: str):
    super().__init__(
        None, None,
        "TF-Hub module %s is not in the cache directory %s, which is not "
        "writable (%s). Ask whoever prepared the cache to add it, or point "
        "TFHUB_CACHE_DIR at a writable directory." % (handle, cache_root,
                                                      reason))
    self.handle = handle
    self.cache_root = cache_root
    self.reason = reason
