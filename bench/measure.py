"""One benchmark measurement in a fresh process (started by bench/run.py).

  python bench/measure.py --impl hub_tf1|original|floor --row ROW --work DIR
  python bench/measure.py --impl ... --info

Prints one line `BENCH_RESULT <json>` (metrics of the row), or
`BENCH_NA <reason>` when the implementation cannot be imported.  Only the
operation named by the row is timed; setup (imports, building inputs, session
creation) is not.  Memory figures come from /proc/self/status: the peak
(VmHWM) is reset through /proc/self/clear_refs right before the timed part.
"""

import argparse
import gc
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time

_BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _BENCH_DIR)

import rows  # pylint: disable=g-import-not-at-top,wrong-import-position

# ----------------------------------------------------------------------------
# Memory.


def _status_mb(field):
  with open("/proc/self/status") as f:  # procfs, not a module file.
    for line in f:
      if line.startswith(field + ":"):
        return int(line.split()[1]) / 1024.0
  return float("nan")


class Memory:
  """RSS before a timed section and its peak during it (MB)."""

  def __enter__(self):
    try:
      with open("/proc/self/clear_refs", "w") as f:  # Resets VmHWM.
        f.write("5")
      self.peak_reset = True
    except OSError:
      self.peak_reset = False
    self.rss_before = _status_mb("VmRSS")
    return self

  def __exit__(self, *unused):
    self.rss_after = _status_mb("VmRSS")
    self.peak = _status_mb("VmHWM")

  def metrics(self):
    return {
        "rss_delta_mb": self.rss_after - self.rss_before,
        "peak_delta_mb": self.peak - self.rss_before,
        "peak_mb": self.peak,
        "peak_reset": self.peak_reset,
    }


class Cpu:
  """CPU seconds of the whole process (every thread) in a timed section.

  User time is the process's own work (ours, TensorFlow's); system time is
  the kernel's on its behalf (for a write: copying into the page cache).
  """

  def __enter__(self):
    self._before = resource.getrusage(resource.RUSAGE_SELF)
    return self

  def __exit__(self, *unused):
    after = resource.getrusage(resource.RUSAGE_SELF)
    self.user_s = after.ru_utime - self._before.ru_utime
    self.sys_s = after.ru_stime - self._before.ru_stime


# ----------------------------------------------------------------------------
# Helpers.


def _import_hub(impl):
  if impl == "original":
    import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top
    return hub
  if impl == "hub_tf1":
    try:
      import hub_tf1 as hub  # pylint: disable=g-import-not-at-top
      hub.Module  # pylint: disable=pointless-statement
      hub.load_module_spec  # pylint: disable=pointless-statement
    except Exception as e:  # pylint: disable=broad-except
      print("BENCH_NA n/a (core not importable: %s: %s)" %
            (type(e).__name__, str(e).splitlines()[0] if str(e) else ""),
            flush=True)
      sys.exit(0)
    return hub
  return None


def _saved_model(module_dir):
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from tensorflow.core.protobuf import saved_model_pb2
  with tf.io.gfile.GFile(os.path.join(module_dir, "saved_model.pb"), "rb") as f:
    return saved_model_pb2.SavedModel.FromString(f.read())


def _default_meta_graph(saved_model):
  for mg in saved_model.meta_graphs:
    if not mg.meta_info_def.tags:
      return mg
  return saved_model.meta_graphs[0]


def _variables_prefix(module_dir):
  return os.path.join(module_dir, "variables", "variables")


def _tmp_out(args, name):
  return os.path.join(args.tmp, name)


# ----------------------------------------------------------------------------
# Measurements.  Each returns a dict of metrics.


def measure_load(args, hub, sizes, module_dir):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  graph = tf.Graph()
  with graph.as_default():
    with Memory() as mem:
      if hub is not None:
        t0 = time.perf_counter()
        hub.Module(module_dir)
        elapsed = time.perf_counter() - t0
      else:
        t0 = time.perf_counter()
        mg = _default_meta_graph(_saved_model(module_dir))
        tf.compat.v1.import_graph_def(mg.graph_def, name="module")
        elapsed = time.perf_counter() - t0
  return dict(mem.metrics(), time_s=elapsed, ops=len(graph.get_operations()))


def measure_load_strict(args, hub, sizes, module_dir):
  """hub.Module(path): strict policy (hub_tf1), default policy (floor)."""
  del args, sizes  # Unused.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if hub is None:  # The floor: hub_tf1 without the scan.
    import hub_tf1 as hub  # pylint: disable=g-import-not-at-top
    kwargs = {}
  elif hub.__name__ == "hub_tf1":
    kwargs = {"op_policy": "strict"}
  else:
    kwargs = {}  # tensorflow_hub has no op policy.
  with tf.Graph().as_default():
    t0 = time.perf_counter()
    hub.Module(module_dir, **kwargs)
    elapsed = time.perf_counter() - t0
  return {"time_s": elapsed}


def measure_inspect(args, hub, sizes, module_dir):
  """`hub-tf1 scan` and `hub-tf1 inspect --json`, each in this process."""
  del args, sizes  # Unused.
  if hub is None or hub.__name__ != "hub_tf1":
    print("BENCH_NA n/a (no such command)", flush=True)
    sys.exit(0)
  import contextlib  # pylint: disable=g-import-not-at-top
  from hub_tf1 import cli  # pylint: disable=g-import-not-at-top
  times = {}
  with open(os.devnull, "w") as devnull:
    for key, argv in (("scan_s", ["scan", module_dir]),
                      ("inspect_s", ["inspect", module_dir, "--json"])):
      with contextlib.redirect_stdout(devnull):
        t0 = time.perf_counter()
        code = cli.main(argv)
        times[key] = time.perf_counter() - t0
      if code != 0:
        raise RuntimeError("%s exited %d" % (" ".join(argv), code))
  return times


def _floor_restore_ops(module_dir, partitions):
  """Variables like the module's plus one RestoreV2 that assigns them all."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  prefix = _variables_prefix(module_dir)
  reader = tf.train.load_checkpoint(prefix)
  shapes = reader.get_variable_to_shape_map()
  dtypes = reader.get_variable_to_dtype_map()
  names, specs, types, targets = [], [], [], []
  for name in sorted(shapes):
    shape = shapes[name]
    if partitions > 1 and len(shape) == 2 and shape[0] >= partitions:
      rows_per = shape[0] // partitions
      for p in range(partitions):
        start = p * rows_per
        length = rows_per if p < partitions - 1 else shape[0] - start
        var = tf.compat.v1.get_variable(
            "%s/part_%d" % (name, p), [length] + shape[1:], dtypes[name],
            initializer=tf.compat.v1.zeros_initializer())
        names.append(name)
        # Spelled like the saver's slice specs ("0,256", not "-"): a slice
        # that matches a stored one exactly is read in place, any other
        # spelling goes through a temporary copy (+75% RSS here).
        specs.append("%d %d %d,%d:0,%d" % (shape[0], shape[1], start, length,
                                           shape[1]))
        types.append(dtypes[name])
        targets.append(var)
    else:
      var = tf.compat.v1.get_variable(
          name, shape, dtypes[name],
          initializer=tf.compat.v1.zeros_initializer())
      names.append(name)
      specs.append("")
      types.append(dtypes[name])
      targets.append(var)
  restored = tf.raw_ops.RestoreV2(prefix=prefix, tensor_names=names,
                                  shape_and_slices=specs, dtypes=types)
  return tf.group(*[v.assign(t, read_value=False)
                    for v, t in zip(targets, restored)])


def measure_init(args, hub, sizes, module_dir, partitions):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  graph = tf.Graph()
  with graph.as_default():
    if hub is not None:
      hub.Module(module_dir)
      init = tf.group(tf.compat.v1.global_variables_initializer(),
                      tf.compat.v1.tables_initializer())
    else:
      init = _floor_restore_ops(module_dir, partitions)
    with tf.compat.v1.Session(graph=graph) as sess:
      with Memory() as mem:
        t0 = time.perf_counter()
        sess.run(init)
        elapsed = time.perf_counter() - t0
      # A second run costs only the reads and assignments: the first one also
      # pays for the session's one-time set-up of that sub-graph.
      t0 = time.perf_counter()
      sess.run(init)
      rerun = time.perf_counter() - t0
  return dict(mem.metrics(), time_s=elapsed, rerun_s=rerun)


def measure_calls(args, hub, sizes, module_dir, module_name):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import models  # pylint: disable=g-import-not-at-top
  graph = tf.Graph()
  times = []
  with graph.as_default():
    width = (sizes.mlp_deep_width if module_name == models.MLP_DEEP
             else sizes.mlp_small_width)
    if hub is not None:
      m = hub.Module(module_dir)
      x = tf.compat.v1.placeholder(tf.float32, [None, width])
      apply = lambda: m(x)
    else:
      mg = _default_meta_graph(_saved_model(module_dir))
      sig = mg.signature_def["default"]
      in_name = sig.inputs["default"].name
      out_name = sig.outputs["default"].name
      pruned = tf.compat.v1.graph_util.extract_sub_graph(
          mg.graph_def, [out_name.split(":")[0]])
      x = tf.compat.v1.placeholder(tf.float32, [None, width])
      apply = lambda: tf.compat.v1.import_graph_def(
          pruned, input_map={in_name: x}, return_elements=[out_name],
          name="apply")
    ops_before = len(graph.get_operations())
    # Start every implementation from a collected heap: otherwise whether one
    # of Python's full collections (tens of ms over TensorFlow's ~250k
    # objects) falls into calls 11-50 depends on what set-up allocated.
    gc.collect()
    with Memory() as mem:
      for _ in range(sizes.calls):
        t0 = time.perf_counter()
        apply()
        times.append(time.perf_counter() - t0)
    ops_added = len(graph.get_operations()) - ops_before
  later = times[10:] or times[1:]
  return {
      "peak_delta_mb": mem.metrics()["peak_delta_mb"],
      "time_s": sum(times),
      "ops_per_call": ops_added / sizes.calls,
      "growth": (sum(later) / len(later)) / times[0],
      "first_call_s": times[0],
      "last_call_s": times[-1],
  }


def measure_export_ckpt(args, hub, sizes, module_dir, module_name):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  ckpt = os.path.join(args.work, "train", module_name, "model.ckpt")
  out = _tmp_out(args, "exported")
  if hub is not None:
    spec = hub.load_module_spec(module_dir)
    with Memory() as mem:
      t0 = time.perf_counter()
      spec.export(out, checkpoint_path=ckpt,
                  name_transform_fn=lambda name: "module/" + name)
      elapsed = time.perf_counter() - t0
  else:
    files = tf.io.gfile.glob(ckpt + ".*")
    with Memory() as mem:
      t0 = time.perf_counter()
      tf.io.gfile.makedirs(out)
      for f in files:
        tf.io.gfile.copy(f, os.path.join(out, os.path.basename(f)))
      elapsed = time.perf_counter() - t0
  return dict(mem.metrics(), time_s=elapsed)


def settle_page_cache() -> bool:
  """Syncs dirty pages and drops clean ones; False if not permitted."""
  os.sync()
  try:
    with open("/proc/sys/vm/drop_caches", "w") as f:  # procfs.
      f.write("1")
    return True
  except OSError:
    return False


def measure_export_module(args, hub, sizes, module_dir):
  """Times Module.export (floor: one write of the variable bytes).

  Every process starts its timed write from the same page-cache state: dirty
  pages are synced and clean ones dropped (/proc/sys/vm/drop_caches, when
  permitted; `caches_dropped` says whether it was) right before the timed
  part.  `time_s` is the export as the original does it (no fsync);
  `time_with_fsync_s` adds fsync of every written file (durability).
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  out = _tmp_out(args, "exported")

  def fsync_tree(root):
    for directory, _, names in os.walk(root):
      for name in names:
        fd = os.open(os.path.join(directory, name), os.O_RDONLY)
        try:
          os.fsync(fd)
        finally:
          os.close(fd)

  graph = tf.Graph()
  with graph.as_default():
    if hub is not None:
      m = hub.Module(module_dir)
      with tf.compat.v1.Session(graph=graph) as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        dropped = settle_page_cache()
        with Memory() as mem, Cpu() as cpu:
          t0 = time.perf_counter()
          m.export(out, sess)
          elapsed = time.perf_counter() - t0
    else:
      value = tf.train.load_checkpoint(
          _variables_prefix(module_dir)).get_tensor("embeddings")
      data = np.ascontiguousarray(value).tobytes()
      del value
      tf.io.gfile.makedirs(out)
      dropped = settle_page_cache()
      with Memory() as mem, Cpu() as cpu:
        t0 = time.perf_counter()
        with tf.io.gfile.GFile(os.path.join(out, "bytes"), "wb") as f:
          f.write(data)
        elapsed = time.perf_counter() - t0
  t0 = time.perf_counter()
  fsync_tree(out)
  fsync_s = time.perf_counter() - t0
  return dict(mem.metrics(), time_s=elapsed, user_s=cpu.user_s,
              sys_s=cpu.sys_s, fsync_s=fsync_s,
              time_with_fsync_s=elapsed + fsync_s, caches_dropped=dropped)


def steady_session(hub, sizes, module_dir, module_name):
  """A session ready to run the steady-state rows' step, and that step.

  Args:
    hub: hub_tf1 or tensorflow_hub; None for the floor (the same model built
      directly, its variables restored by a Saver).
    sizes: the run's `rows.Sizes`.
    module_dir: the module of `module_name`.
    module_name: a module of bench/models.py with a "default" signature.

  Returns:
    (session, run): `run()` is one timed unit, a `session.run` of the
    output on the row's batch. The caller closes the session.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import models  # pylint: disable=g-import-not-at-top
  batch = models.sample_batch(module_name, sizes)
  graph = tf.Graph()
  with graph.as_default():
    if hub is not None:
      m = hub.Module(module_dir)
      info = m.get_input_info_dict()["default"]
      x = tf.compat.v1.placeholder(info.dtype, info.get_shape())
      y = m(x)
      restore = None
    else:
      vocab = os.path.join(module_dir, "assets", "vocab.txt")
      t = models.build(module_name, sizes, vocab_file=vocab)
      x, y = t["x"], t["y"]
      saver = tf.compat.v1.train.Saver(tf.compat.v1.global_variables())
      restore = lambda sess: saver.restore(sess, _variables_prefix(module_dir))
    init = tf.group(tf.compat.v1.global_variables_initializer(),
                    tf.compat.v1.tables_initializer())
    sess = tf.compat.v1.Session(graph=graph)
    sess.run(init)
    if restore:
      restore(sess)  # A Saver restores in its graph's context only.
  return sess, lambda: sess.run(y, {x: batch})


def measure_steady(args, hub, sizes, module_dir, module_name):
  sess, run = steady_session(hub, sizes, module_dir, module_name)
  with sess:
    for _ in range(10):
      run()
    times = []
    for _ in range(sizes.steady_runs):
      t0 = time.perf_counter()
      run()
      times.append(time.perf_counter() - t0)
  times.sort()
  # The 10th percentile is the least noisy estimate of the cost of a run on
  # a shared machine (interference only ever adds time); the median is kept.
  return {"run_ms_p10": 1000 * times[len(times) // 10],
          "run_ms": 1000 * times[len(times) // 2],
          "run_ms_min": 1000 * times[0]}


def _real_placeholders(name):
  """Fresh input placeholders of realistic module `name` (dtype, shape)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import models  # pylint: disable=g-import-not-at-top
  with tf.name_scope("inputs"):
    if name == models.BERT:
      return {k: tf.compat.v1.placeholder(tf.int32, [None, None])
              for k in ("input_ids", "input_mask", "segment_ids")}
    return {"char_ids": tf.compat.v1.placeholder(tf.int32, [None, None, 50]),
            "sequence_len": tf.compat.v1.placeholder(tf.int32, [None])}


def _floor_module_graph(module_dir, tags):
  """The MetaGraphDef with `tags` of the module's saved_model.pb."""
  saved = _saved_model(module_dir)
  mg = next(m for m in saved.meta_graphs if set(m.meta_info_def.tags) == tags)
  return mg


def _floor_apply_fn(mg, signature):
  """apply(inputs) importing only `signature`'s sub-graph (an input_map)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  sig = mg.signature_def[signature]
  out_keys = sorted(sig.outputs)
  out_names = [sig.outputs[k].name for k in out_keys]
  pruned = tf.compat.v1.graph_util.extract_sub_graph(
      mg.graph_def, [n.split(":")[0] for n in out_names])

  def apply(inputs):
    outs = tf.compat.v1.import_graph_def(
        pruned, input_map={sig.inputs[k].name: v for k, v in inputs.items()},
        return_elements=out_names, name="apply")
    return dict(zip(out_keys, outs))
  return apply


def _floor_restore_into(graph, module_dir, scope):
  """One RestoreV2 + AssignVariableOp into `scope`/<key> of `graph`."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  prefix = _variables_prefix(module_dir)
  reader = tf.train.load_checkpoint(prefix)
  dtypes = reader.get_variable_to_dtype_map()
  names = sorted(dtypes)
  restored = tf.raw_ops.RestoreV2(prefix=prefix, tensor_names=names,
                                  shape_and_slices=[""] * len(names),
                                  dtypes=[dtypes[n] for n in names])
  return tf.group(*[
      tf.raw_ops.AssignVariableOp(
          resource=graph.get_tensor_by_name("%s/%s:0" % (scope, n)), value=t)
      for n, t in zip(names, restored)])


def measure_real_use(args, hub, sizes, module_dir, module_name):
  """Construction, 1st and 10 more m(x), init, a run, export; peak RSS."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import models  # pylint: disable=g-import-not-at-top
  signature = models.REALISTIC_SIGNATURE[module_name]
  out_key = models.REALISTIC_OUTPUT[module_name]
  feed_values = models.realistic_feed(module_name, sizes)
  result = {}
  graph = tf.Graph()
  with graph.as_default():
    inputs = [_real_placeholders(module_name)
              for _ in range(sizes.real_calls + 1)]
    gc.collect()
    t0 = time.perf_counter()
    if hub is not None:
      m = hub.Module(module_dir)
      apply = lambda x: m(x, signature=signature, as_dict=True)
    else:
      mg = _floor_module_graph(module_dir, set())
      tf.compat.v1.import_graph_def(mg.graph_def, name="module")
    result["construct_s"] = time.perf_counter() - t0
    if hub is None:
      apply = _floor_apply_fn(mg, signature)  # Set-up: the pruning.
    gc.collect()
    t0 = time.perf_counter()
    outputs = apply(inputs[0])
    result["first_call_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for x in inputs[1:]:
      apply(x)
    result["calls_s"] = time.perf_counter() - t0
    result["ops"] = len(graph.get_operations())
    if hub is not None:
      init = tf.group(tf.compat.v1.global_variables_initializer(),
                      tf.compat.v1.tables_initializer())
    else:
      init = _floor_restore_into(graph, module_dir, "module")
      dtypes = tf.train.load_checkpoint(
          _variables_prefix(module_dir)).get_variable_to_dtype_map()
      out = _tmp_out(args, "exported")
      # Direct TensorFlow builds its save op with the graph, before the
      # session (adding ops to a live session's graph is what Module.export
      # must do); the building is export work all the same, so its time
      # counts in export_s.
      t0 = time.perf_counter()
      save = _floor_save_op(graph, dtypes, "module",
                            os.path.join(out, "variables", "variables"))
      build_save_s = time.perf_counter() - t0
    with tf.compat.v1.Session(graph=graph) as sess:
      t0 = time.perf_counter()
      sess.run(init)
      result["init_s"] = time.perf_counter() - t0
      feed = {inputs[0][k]: v for k, v in feed_values.items()}
      t0 = time.perf_counter()
      sess.run(outputs[out_key], feed)
      result["run_s"] = time.perf_counter() - t0
      # Twice: the first export also pays for what it builds and adds to
      # the live session (hub_tf1 and the original; the floor's op was built
      # with the graph, its build time added), the second is the write alone.
      for key in ("export_s", "export2_s"):
        if hub is None and key == "export2_s":
          shutil.rmtree(out)
          os.sync()
        with Cpu() as cpu:
          t0 = time.perf_counter()
          if hub is not None:
            m.export(_tmp_out(args, key), sess)
          else:
            tf.io.gfile.makedirs(os.path.join(out, "variables"))
            sess.run(save)
            data = mg.SerializeToString()
            with tf.io.gfile.GFile(os.path.join(out, "saved_model.pb"),
                                   "wb") as f:
              f.write(data)
          result[key] = time.perf_counter() - t0
        if hub is None and key == "export_s":
          result[key] += build_save_s
        # CPU of the write (the floor's op building is not in it).
        result[key[:-2] + "_user_s"] = cpu.user_s
        result[key[:-2] + "_sys_s"] = cpu.sys_s
        if hub is not None and key == "export_s":
          os.sync()  # The first export's pages are not the second's to flush.
  result["peak_mb"] = _status_mb("VmHWM")
  return result


def _floor_save_op(graph, dtypes, scope, prefix):
  """One SaveV2 of the values of `scope`/<key> of `graph` to `prefix`.

  `dtypes` maps each checkpoint key to its dtype.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  names = sorted(dtypes)
  values = [tf.raw_ops.ReadVariableOp(
      resource=graph.get_tensor_by_name("%s/%s:0" % (scope, n)),
      dtype=dtypes[n]) for n in names]
  return tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names,
                           shape_and_slices=[""] * len(names), tensors=values)


def train_session(hub, sizes, module_dir, module_name, result=None):
  """An initialized session of the training rows' graph, and its SGD step.

  Args:
    hub: hub_tf1 or tensorflow_hub (`trainable=True, tags={"train"}`); None
      for the floor (the train graph built directly, restored by a Saver).
    sizes: the run's `rows.Sizes`.
    module_dir: the module of `module_name`.
    module_name: models.BERT or models.ELMO.
    result: if given, gets "construct_s" and "init_s".

  Returns:
    (session, step): `step()` runs one SGD step on the row's batch. The
    caller closes the session.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import models  # pylint: disable=g-import-not-at-top
  result = {} if result is None else result
  signature = models.REALISTIC_SIGNATURE[module_name]
  out_key = models.REALISTIC_OUTPUT[module_name]
  feed_values = models.realistic_feed(module_name, sizes, train=True)
  graph = tf.Graph()
  # A TF1 training program: v1 while loops get v1 gradients (see models).
  with graph.as_default(), models.v1_control_flow():
    gc.collect()
    if hub is not None:
      inputs = _real_placeholders(module_name)
      t0 = time.perf_counter()
      m = hub.Module(module_dir, trainable=True, tags={"train"})
      result["construct_s"] = time.perf_counter() - t0
      outputs = m(inputs, signature=signature, as_dict=True)
      restore = None
    else:
      t0 = time.perf_counter()
      with tf.compat.v1.variable_scope("module"):
        t = models.build_realistic(module_name, sizes, train=True)
      result["construct_s"] = time.perf_counter() - t0
      inputs, outputs = t["inputs"], t["outputs"]
      saver = tf.compat.v1.train.Saver(
          {v.op.name[len("module/"):]: v
           for v in tf.compat.v1.global_variables()})
      restore = lambda sess: saver.restore(sess, _variables_prefix(module_dir))
    loss = tf.reduce_mean(tf.square(outputs[out_key]))
    step = tf.compat.v1.train.GradientDescentOptimizer(1e-4).minimize(loss)
    init = tf.group(tf.compat.v1.global_variables_initializer(),
                    tf.compat.v1.tables_initializer())
    feed = {inputs[k]: v for k, v in feed_values.items()}
    sess = tf.compat.v1.Session(graph=graph)
    t0 = time.perf_counter()
    if restore is None:
      sess.run(init)
    else:
      restore(sess)  # A Saver restores in its graph's context only.
    result["init_s"] = time.perf_counter() - t0
  return sess, lambda: sess.run(step, feed)


def measure_real_train(args, hub, sizes, module_dir, module_name):
  """hub.Module(trainable=True, tags={"train"}) + an SGD step on it."""
  del args  # Unused.
  result = {}
  sess, step = train_session(hub, sizes, module_dir, module_name, result)
  with sess:
    t0 = time.perf_counter()
    step()
    result["first_step_s"] = time.perf_counter() - t0
    times = []
    for _ in range(sizes.real_train_steps):
      t0 = time.perf_counter()
      step()
      times.append(time.perf_counter() - t0)
  times.sort()
  result["step_s"] = times[len(times) // 2]
  result["peak_mb"] = _status_mb("VmHWM")
  return result


def _converted_dir(args, row):
  return os.path.join(args.work, rows.CONVERTED, row.module)


def _tf2_load(hub, module_dir, converted_dir):
  """hub.load (hub_tf1 or the original) or, for the floor, the converted."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if hub is None:
    return tf.saved_model.load(converted_dir)
  return hub.load(module_dir)


def measure_tf2_load(args, hub, sizes, module_dir, row):
  """hub.load(path) in TF2 (eager); then the time of a first call."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import models  # pylint: disable=g-import-not-at-top
  x = tf.constant(models.sample_batch(row.module, sizes))
  gc.collect()
  with Memory() as mem:
    t0 = time.perf_counter()
    loaded = _tf2_load(hub, module_dir, _converted_dir(args, row))
    elapsed = time.perf_counter() - t0
  t0 = time.perf_counter()
  loaded.signatures["default"](default=x)["default"].numpy()
  first_call = time.perf_counter() - t0
  return dict(mem.metrics(), time_s=elapsed, first_call_s=first_call)


def measure_tf2_call(args, hub, sizes, module_dir, row):
  """Per-call latency of signatures["default"] after 10 warm-up calls."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import models  # pylint: disable=g-import-not-at-top
  x = tf.constant(models.sample_batch(row.module, sizes))
  function = _tf2_load(hub, module_dir,
                       _converted_dir(args, row)).signatures["default"]
  for _ in range(10):
    function(default=x)["default"].numpy()
  gc.collect()
  times = []
  for _ in range(sizes.steady_runs):
    t0 = time.perf_counter()
    function(default=x)["default"].numpy()
    times.append(time.perf_counter() - t0)
  times.sort()
  return {"call_ms": 1000 * times[len(times) // 2],
          "call_ms_p10": 1000 * times[len(times) // 10],
          "call_ms_min": 1000 * times[0]}


def _finetune_steps(sizes):
  return max(20, sizes.steady_runs // 10)


def _plain_tf2_step(sizes, learning_rate):
  """The small MLP's SGD step in plain TF2, for attribution (no hub_tf1).

  The module's shapes as hand-made tf.Variables (layer i: relu(h @ w + b)),
  a tf.function with GradientTape and keras.optimizers.SGD: what any TF2 +
  Keras fine-tuning step of this MLP costs in the running TF / Keras.

  Args:
    sizes: the bench sizes (mlp_small_layers, mlp_small_width).
    learning_rate: the SGD learning rate.

  Returns:
    A function of the input batch (a tf.Tensor) running one step.
  """
  import keras  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(1)
  width = sizes.mlp_small_width
  weights = []
  for _ in range(sizes.mlp_small_layers):
    weights.append(tf.Variable(
        (rng.randn(width, width) / np.sqrt(width)).astype(np.float32)))
    weights.append(tf.Variable(np.zeros([width], np.float32)))
  optimizer = keras.optimizers.SGD(learning_rate)

  @tf.function
  def step(x):
    with tf.GradientTape() as tape:
      h = x
      for i in range(0, len(weights), 2):
        h = tf.nn.relu(tf.matmul(h, weights[i]) + weights[i + 1])
      loss = tf.reduce_sum(h)
    optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
    return loss
  return step


def _interleaved_steps(functions, steps, block=10):
  """Per-step times of each of `functions`, run in alternating blocks.

  Each function gets 10 warm-up calls, then `steps` timed calls in blocks of
  `block`, so that the machine's load changes hit all of them alike.

  Returns:
    One sorted list of seconds per function.
  """
  for function in functions:
    for _ in range(10):
      function()
  gc.collect()
  times = [[] for _ in functions]
  for start in range(0, steps, block):
    for function, timed in zip(functions, times):
      for _ in range(min(block, steps - start)):
        t0 = time.perf_counter()
        function()
        timed.append(time.perf_counter() - t0)
  return [sorted(t) for t in times]


def measure_tf2_finetune(args, hub, sizes, module_dir, row):
  """One SGD step on sum(layer(x)): KerasLayer in Keras 3 / TF1 graph.

  Both columns also time the plain TF2 step of the same MLP
  (`_plain_tf2_step`) interleaved in the same process: hub_tf1's step over
  it is what the KerasLayer adds; the floor's over it is TF1 graph mode vs
  a TF2 function step (in the floor's TF 2.15 / Keras 2).
  """
  del args  # Unused.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import models  # pylint: disable=g-import-not-at-top
  batch = models.sample_batch(row.module, sizes)
  learning_rate = 1e-6
  x = tf.constant(batch)
  if hub is None:  # The floor: hub_tf1.Module in TF1 graph mode (legacy).
    import hub_tf1  # pylint: disable=g-import-not-at-top
    graph = tf.Graph()
    with graph.as_default():
      m = hub_tf1.Module(module_dir, trainable=True)
      xp = tf.compat.v1.placeholder(tf.float32, [None, batch.shape[1]])
      loss = tf.reduce_sum(m(xp))
      step = tf.compat.v1.train.GradientDescentOptimizer(
          learning_rate).minimize(loss)
      init = tf.compat.v1.global_variables_initializer()
    # Run outside graph.as_default(): the plain TF2 step runs eagerly.
    sess = tf.compat.v1.Session(graph=graph)
    sess.run(init)
    train = lambda: sess.run(step, {xp: batch})
  else:
    import keras  # pylint: disable=g-import-not-at-top
    try:
      layer = hub.KerasLayer(module_dir, trainable=True)
      model = keras.Sequential([keras.Input(shape=batch.shape[1:]), layer])
    except Exception as e:  # pylint: disable=broad-except
      # tensorflow_hub 0.16.1: a tf_keras layer, refused by Keras 3; and
      # outside a Keras 3 model, trainable=True refused for TF1 modules.
      reasons = ["Sequential: %s: %s" % (type(e).__name__,
                                         str(e).splitlines()[0][:70])]
      try:
        hub.KerasLayer(module_dir, trainable=True)(tf.constant(batch),
                                                   training=True)
      except Exception as e2:  # pylint: disable=broad-except
        lines = [l for l in str(e2).splitlines() if "trainable" in l]
        reasons.append("layer call: %s: %s" % (
            type(e2).__name__, (lines or str(e2).splitlines())[0][:100]))
      print("BENCH_NA n/a (%s)" % "; ".join(reasons), flush=True)
      sys.exit(0)
    optimizer = keras.optimizers.SGD(learning_rate)

    @tf.function
    def train_step(x):
      with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(x, training=True))
      weights = model.trainable_weights
      optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
      return loss
    train = lambda: train_step(x).numpy()
  plain = None
  if row.module == models.MLP_SMALL:
    plain_step = _plain_tf2_step(sizes, learning_rate)
    plain = lambda: plain_step(x).numpy()
  t0 = time.perf_counter()
  train()
  first = time.perf_counter() - t0
  functions = [train] + ([plain] if plain else [])
  times = _interleaved_steps(functions, _finetune_steps(sizes))
  result = {"step_ms": 1000 * times[0][len(times[0]) // 2],
            "step_ms_p10": 1000 * times[0][len(times[0]) // 10],
            "first_step_s": first}
  if hub is None:
    sess.close()
  if plain:
    plain_ms = 1000 * times[1][len(times[1]) // 2]
    result.update(plain_step_ms=plain_ms,
                  step_vs_plain=result["step_ms"] / plain_ms)
  return result


# ----------------------------------------------------------------------------


def info(impl):
  """Versions of everything an implementation runs on."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  result = {"python": platform.python_version(), "tensorflow": tf.__version__,
            "numpy": np.__version__, "executable": sys.executable}
  if impl == "original":
    import tensorflow_hub  # pylint: disable=g-import-not-at-top
    result["tensorflow_hub"] = tensorflow_hub.__version__
  elif impl == "hub_tf1":
    try:
      import hub_tf1  # pylint: disable=g-import-not-at-top
      result["hub_tf1"] = getattr(hub_tf1, "__version__", "?")
    except Exception as e:  # pylint: disable=broad-except
      result["hub_tf1"] = "not importable (%s)" % type(e).__name__
    root = os.path.dirname(_BENCH_DIR)
    try:
      commit = subprocess.run(["git", "-C", root, "rev-parse", "--short",
                               "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
      dirty = subprocess.run(["git", "-C", root, "status", "--porcelain",
                              "--", "hub_tf1"], capture_output=True,
                             text=True, check=True).stdout.strip()
      result["hub_tf1_commit"] = commit + (" (+uncommitted hub_tf1 changes)"
                                           if dirty else "")
    except (OSError, subprocess.CalledProcessError):
      result["hub_tf1_commit"] = "?"
  return result


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--impl", choices=rows.IMPLS, required=True)
  parser.add_argument("--row", choices=sorted(rows.ROWS_BY_NAME))
  parser.add_argument("--work")
  parser.add_argument("--tmp", help="scratch directory for outputs")
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--info", action="store_true")
  args = parser.parse_args()
  if args.info:
    if args.impl == "hub_tf1":
      _import_hub("hub_tf1")
    print("BENCH_RESULT " + json.dumps(info(args.impl)), flush=True)
    return
  hub = _import_hub(args.impl)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import models  # pylint: disable=g-import-not-at-top
  tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
  sizes = models.QUICK if args.quick else models.FULL
  row = rows.ROWS_BY_NAME[args.row]
  module_dir = os.path.join(args.work, "modules", row.module)
  partitions = sizes.emb_partitions if row.module == models.EMB_PART else 1
  if row.kind == "load":
    result = measure_load(args, hub, sizes, module_dir)
  elif row.kind == "load_strict":
    result = measure_load_strict(args, hub, sizes, module_dir)
  elif row.kind == "inspect":
    result = measure_inspect(args, hub, sizes, module_dir)
  elif row.kind == "init":
    result = measure_init(args, hub, sizes, module_dir, partitions)
  elif row.kind == "calls":
    result = measure_calls(args, hub, sizes, module_dir, row.module)
  elif row.kind == "export_ckpt":
    result = measure_export_ckpt(args, hub, sizes, module_dir, row.module)
  elif row.kind == "export_module":
    result = measure_export_module(args, hub, sizes, module_dir)
  elif row.kind == "steady":
    result = measure_steady(args, hub, sizes, module_dir, row.module)
  elif row.kind == "real_use":
    result = measure_real_use(args, hub, sizes, module_dir, row.module)
  elif row.kind == "real_train":
    result = measure_real_train(args, hub, sizes, module_dir, row.module)
  elif row.kind == "tf2_load":
    result = measure_tf2_load(args, hub, sizes, module_dir, row)
  elif row.kind == "tf2_call":
    result = measure_tf2_call(args, hub, sizes, module_dir, row)
  elif row.kind == "tf2_finetune":
    result = measure_tf2_finetune(args, hub, sizes, module_dir, row)
  else:
    raise ValueError(row.kind)
  print("BENCH_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
  main()
