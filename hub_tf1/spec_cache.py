"""What later layers derive from a ModuleSpec, cached per spec.

Used by the module layer (graph analyses, apply plans) and by the op scan
(its findings); a top-level utility, like fileio.py, so any layer may use it.

Rules of this file:
* Keys are the spec object (weakly: a spec that is no longer used takes its
  entries with it) and a hashable key of the caller's; values are computed
  once by the caller's factory and never changed afterwards (graph analyses
  and apply plans are read-only once built).
* Each spec keeps at most `MAX_ENTRIES_PER_SPEC` entries, least recently
  used dropped first: a spec with very many signatures and tag sets cannot
  grow without bound, and a dropped entry is only recomputed.
* Thread-safe: a lock guards the maps; a factory runs outside it, so two
  threads may both compute an entry, and the first stored wins.
* ModuleSpec itself knows nothing of this cache: it imports nothing of
  hub_tf1, and what a spec caches for itself (its signature infos) it keeps.
"""

import collections
import threading
from typing import Callable, Hashable, TypeVar
import weakref

MAX_ENTRIES_PER_SPEC = 256

_T = TypeVar("_T")
_lock = threading.Lock()
_entries: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def get(spec, key: Hashable, factory: Callable[[], _T]) -> _T:
  """The cached value of `key` for `spec`, computed by `factory` if absent.

  Args:
    spec: a ModuleSpec (any weak-referenceable object).
    key: what is derived, e.g. ("apply_plan", tags, signature, trainable).
    factory: computes the value; called without the lock held.

  Returns:
    The value stored for (`spec`, `key`).
  """
  with _lock:
    per_spec = _entries.get(spec)
    if per_spec is not None and key in per_spec:
      per_spec.move_to_end(key)
      return per_spec[key]
  value = factory()
  with _lock:
    per_spec = _entries.setdefault(spec, collections.OrderedDict())
    if key in per_spec:
      return per_spec[key]
    per_spec[key] = value
    while len(per_spec) > MAX_ENTRIES_PER_SPEC:
      per_spec.popitem(last=False)
  return value
