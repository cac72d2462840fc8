"""Writes the benchmark modules and training checkpoints (run once per size).

Run by bench/run.py with the ORIGINAL tensorflow_hub 0.15 (.venv/ref) so that
both implementations load the same files; `--impl hub_tf1` is the fallback
when no reference environment exists.

`--modules a,b` rewrites only those modules and merges generated.json
(run.py passes the modules whose size fields changed).  The realistic modules
(models.TRAIN_VARIANT_MODULES: bert, elmo) get two graph variants, tags {}
and {"train"} (dropout).

Layout under --work:
  modules/<name>/                 TF1 Hub modules (see models.ALL_MODULES)
  train/<name>/model.ckpt*        training-style checkpoints of the embedding
                                  modules: keys module/<var>, global_step and a
                                  small head/w outside the module
  vocab.txt                       vocabulary of the text module (also copied
                                  into its assets/)
  generated.json                  sizes, generator and versions (the stamp)
  converted/<name>/               with --convert NAME (run by bench/run.py in
                                  .venv/modern): module <name> as the TF2
                                  SavedModel hub_tf1.tf2.convert writes
"""

import argparse
import dataclasses
import json
import os
import sys
import time

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # pylint: disable=g-import-not-at-top,wrong-import-position


def _import_hub(impl):
  if impl == "original":
    import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top
  else:
    import hub_tf1 as hub  # pylint: disable=g-import-not-at-top
  return hub


def _write_module(hub, name, sizes, work):
  path = os.path.join(work, "modules", name)
  if tf.io.gfile.exists(path):
    tf.io.gfile.rmtree(path)
  vocab_file = os.path.join(work, "vocab.txt")

  def module_fn():
    t = models.build(name, sizes, vocab_file=vocab_file)
    hub.add_signature(inputs=t["x"], outputs=t["y"])

  def realistic_module_fn(train):
    t = models.build_realistic(name, sizes, train)
    hub.add_signature(models.REALISTIC_SIGNATURE[name], inputs=t["inputs"],
                      outputs=t["outputs"])

  if name in models.TRAIN_VARIANT_MODULES:
    spec = hub.create_module_spec(
        realistic_module_fn,
        tags_and_args=[(set(), {"train": False}),
                       ({"train"}, {"train": True})])
  else:
    spec = hub.create_module_spec(module_fn)
  with tf.Graph().as_default():
    m = hub.Module(spec, name="module")
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      m.export(path, sess)
  return path


def _write_training_checkpoint(hub, name, work):
  """A checkpoint as training code leaves it: module vars under module/."""
  prefix = os.path.join(work, "train", name, "model.ckpt")
  tf.io.gfile.makedirs(os.path.dirname(prefix))
  with tf.Graph().as_default():
    m = hub.Module(os.path.join(work, "modules", name), trainable=True,
                   name="module")
    tf.compat.v1.train.get_or_create_global_step()
    tf.compat.v1.get_variable("head/w", [m.get_output_info_dict()[
        "default"].get_shape()[-1], 10])
    saver = tf.compat.v1.train.Saver()
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      saver.save(sess, prefix, write_meta_graph=False, write_state=False)
  return prefix


def _convert(work, name):
  """Writes modules/<name> as a TF2 SavedModel to converted/<name>."""
  from hub_tf1.tf2 import convert  # pylint: disable=g-import-not-at-top
  target = os.path.join(work, "converted", name)
  if tf.io.gfile.exists(target):
    tf.io.gfile.rmtree(target)
  t0 = time.time()
  convert.convert(os.path.join(work, "modules", name), target)
  print("generate: %s converted in %.1f s" % (name, time.time() - t0),
        flush=True)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--work", required=True)
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--impl", choices=["original", "hub_tf1"],
                      default="original")
  parser.add_argument("--modules", default="",
                      help="comma-separated modules to (re)write, keeping "
                      "the others and merging generated.json (default: all)")
  parser.add_argument("--convert", default="",
                      help="only convert modules/NAME to converted/NAME "
                      "(hub_tf1.tf2.convert) and exit")
  args = parser.parse_args()
  if args.convert:
    _convert(args.work, args.convert)
    return
  sizes = models.QUICK if args.quick else models.FULL
  hub = _import_hub(args.impl)
  tf.io.gfile.makedirs(args.work)
  stamp = os.path.join(args.work, "generated.json")
  names = ([n for n in args.modules.split(",") if n] if args.modules
           else list(models.ALL_MODULES))
  unknown = sorted(set(names) - set(models.ALL_MODULES))
  if unknown:
    parser.error("unknown module(s) %s" % ", ".join(unknown))
  previous = {}
  if tf.io.gfile.exists(stamp):
    if args.modules:
      with tf.io.gfile.GFile(stamp) as f:
        previous = json.load(f)
    tf.io.gfile.remove(stamp)
  if models.TEXT in names:
    with tf.io.gfile.GFile(os.path.join(args.work, "vocab.txt"), "w") as f:
      f.write("\n".join(models.vocabulary_lines(sizes.text_vocab)) + "\n")
  timings = dict(previous.get("seconds", {}))
  for name in names:
    t0 = time.time()
    _write_module(hub, name, sizes, args.work)
    timings[name] = round(time.time() - t0, 2)
    print("generate: module %s written in %.1f s" % (name, timings[name]),
          flush=True)
  for name in (models.EMB, models.EMB_PART):
    if name not in names:
      continue
    t0 = time.time()
    _write_training_checkpoint(hub, name, args.work)
    print("generate: training checkpoint of %s written in %.1f s" %
          (name, time.time() - t0), flush=True)
  info = {
      "sizes": dataclasses.asdict(sizes),
      "generator": args.impl,
      "generator_version": getattr(hub, "__version__", "?"),
      "tensorflow": tf.__version__,
      "numpy": np.__version__,
      "seconds": timings,
  }
  with tf.io.gfile.GFile(stamp, "w") as f:
    json.dump(info, f, indent=1)


if __name__ == "__main__":
  main()
