"""A child process for the concurrency tests: resolve one handle, report it.

Rules of this file: it is run as a script with the repo root on PYTHONPATH

  python resolving_child_lib.py HANDLE READY GO LOAD [PAUSE_AT PAUSE_FILE]

or imported by tests, never by production code.  Test-only behaviour comes in
through the arguments and is installed here, by setting
`hub_tf1.resolving.cache.stage_hook` before resolving; the library reads no
test variables.

Also a library for the tests: `module_outputs`.

It creates READY, waits for GO to exist, resolves HANDLE and prints
`RESULT <json>` with the module path and a digest of its files (and, when
LOAD is "1", the signatures and outputs of the module).  With PAUSE_AT, the
download stops for good at that stage (see cache.py) after writing the stage
name to PAUSE_FILE, so the test can kill the process there.
"""

import hashlib
import json
import os
import sys
import time
from typing import List


def _pause_at(stage: str, marker: str):
  """A stage hook that stops the process at `stage` (until it is killed)."""

  def hook(reached: str) -> None:
    if reached != stage:
      return
    from hub_tf1 import fileio  # pylint: disable=g-import-not-at-top
    fileio.atomic_write_bytes(marker, stage.encode("utf-8"))
    while True:
      time.sleep(3600)
  return hook


def _tree_digest(path: str) -> str:
  digest = hashlib.sha256()
  rels = sorted(os.path.relpath(os.path.join(root, name), path)
                for root, _, files in os.walk(path) for name in files)
  for rel in rels:
    digest.update(rel.encode() + b"\0")
    with open(os.path.join(path, rel), "rb") as f:
      digest.update(f.read())
  return digest.hexdigest()


def module_outputs(handle: str) -> List[List[float]]:
  """The module's default outputs for two sentences, loaded from `handle`."""
  import hub_tf1  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  with tf.Graph().as_default():
    module = hub_tf1.Module(handle)
    out = module(tf.constant(["hello world", "good morning!"]))
    with tf.compat.v1.Session() as sess:
      sess.run([tf.compat.v1.global_variables_initializer(),
                tf.compat.v1.tables_initializer()])
      return sess.run(out).tolist()


def main(argv: List[str]) -> None:
  handle, ready, go, load = argv[1:5]
  from hub_tf1 import resolving  # pylint: disable=g-import-not-at-top
  from hub_tf1.resolving import cache  # pylint: disable=g-import-not-at-top
  if len(argv) > 5:
    cache.stage_hook = _pause_at(argv[5], argv[6])
  open(ready, "w").close()
  while not os.path.exists(go):
    time.sleep(0.005)
  path = resolving.resolve(handle)
  result = {"path": path, "tree": _tree_digest(path)}
  if load == "1":
    import hub_tf1  # pylint: disable=g-import-not-at-top
    result["signatures"] = sorted(
        hub_tf1.load_module_spec(path).get_signature_names())
    result["output"] = module_outputs(path)
  print("RESULT " + json.dumps(result))


if __name__ == "__main__":
  main(sys.argv)
