"""Layer 1: module handles to local directories (download, cache, lock).

Imports only `hub_tf1.fileio`, `hub_tf1.format.module_files` (the module
file names), TensorFlow, absl and the standard library.  New handle forms
plug in through `register_resolver` (docs/HANDLES.md).
"""

from hub_tf1.resolving.cache import cache_key
from hub_tf1.resolving.cache import get_or_download
from hub_tf1.resolving.cache import is_complete
from hub_tf1.resolving.cache import module_dir_for
from hub_tf1.resolving.config import cache_dir
from hub_tf1.resolving.config import DownloadSettings
from hub_tf1.resolving.config import LockSettings
from hub_tf1.resolving.config import model_load_format
from hub_tf1.resolving.errors import ArchiveTooLargeError
from hub_tf1.resolving.errors import CacheNotWritableError
from hub_tf1.resolving.errors import DownloadError
from hub_tf1.resolving.errors import InvalidModuleArchiveError
from hub_tf1.resolving.errors import LockLostError
from hub_tf1.resolving.errors import ModuleHttpError
from hub_tf1.resolving.errors import NotInCacheError
from hub_tf1.resolving.errors import ResolverRegistrationError
from hub_tf1.resolving.errors import UnsafeArchiveError
from hub_tf1.resolving.errors import UnsupportedHandleError
from hub_tf1.resolving.resolver import accepted_forms
from hub_tf1.resolving.resolver import register_resolver
from hub_tf1.resolving.resolver import resolve
from hub_tf1.resolving.resolver import resolve_path
from hub_tf1.resolving.resolver import unregister_resolver

# The original's name for the cache-dir function.
tfhub_cache_dir = cache_dir

__all__ = [
    "ArchiveTooLargeError",
    "CacheNotWritableError",
    "DownloadError",
    "DownloadSettings",
    "InvalidModuleArchiveError",
    "LockLostError",
    "LockSettings",
    "ModuleHttpError",
    "NotInCacheError",
    "ResolverRegistrationError",
    "UnsafeArchiveError",
    "UnsupportedHandleError",
    "accepted_forms",
    "cache_dir",
    "cache_key",
    "get_or_download",
    "is_complete",
    "model_load_format",
    "module_dir_for",
    "register_resolver",
    "resolve",
    "resolve_path",
    "tfhub_cache_dir",
    "unregister_resolver",
]
