"""Small path helpers on top of `tf.io.gfile`.

Deleting and atomic writing live in `hub_tf1.fileio` (one helper each).
"""

import os
from typing import Optional

import tensorflow as tf

_FILE_SCHEME = "file://"


def local_path(path: str) -> Optional[str]:
  """The OS path for a local `path` (plain or file://), else None.

  Only the lock uses OS calls (exclusive create needs them); everything else
  goes through `tf.io.gfile`.
  """
  if path.startswith(_FILE_SCHEME):
    return path[len(_FILE_SCHEME):]
  if "://" in path:
    return None
  return path


def tree_size(path: str) -> int:
  """Total bytes of the files under `path` (0 when it is missing)."""
  total = 0
  try:
    for root, _, files in tf.io.gfile.walk(path):
      for name in files:
        try:
          total += tf.io.gfile.stat(os.path.join(root, name)).length
        except tf.errors.NotFoundError:
          pass
  except tf.errors.NotFoundError:
    pass
  return total


def read_text(path: str) -> Optional[str]:
  """The file's text, or None if it does not exist."""
  try:
    with tf.io.gfile.GFile(path, "rb") as f:
      return f.read().decode("utf-8", "replace")
  except tf.errors.NotFoundError:
    return None


def non_empty_file(path: str) -> bool:
  try:
    return tf.io.gfile.stat(path).length > 0
  except tf.errors.NotFoundError:
    return False
