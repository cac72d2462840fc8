"""How `Module.export` writes a module's variables: the writer, built once.

Rules of this file:
- Ops are built once per Module, with it where possible (as the original
  builds its Saver: a graph that is finalized later, e.g. by a
  MonitoredSession, can still be exported, and the first export does not
  extend a live session with a graph of tens of thousands of ops), outside
  the caller's control dependencies, device and colocation scopes, under the
  module's scope.  Values are fed to PlaceholderWithDefault ops.  The ops
  are imported as one GraphDef (a few hundred ops take a fraction of the
  time that creating them one by one takes).
- Resource variables are read after a DisableCopyOnRead (a sparse update
  puts a variable in copy-on-read mode, where a plain read copies it); a
  ref variable's snapshot is its buffer.
- Which writer: every variable on one device, none made by a distribution
  strategy, none partitioned, none of a string dtype and the `crc32c`
  package present ("streamable"): in a session of this process on CPU
  devices, the reads are fetched once as numpy arrays over the variables'
  own memory (a callable, its executor kept per session) and
  format/bundle_writer.py writes them on a second thread while this one
  checksums them: no copy out of the session at all.  Other sessions get a
  fallback built with the Module: for few variables holding many bytes
  (`_STREAM_MAX_VARIABLES`, `_STREAM_MIN_BYTES`) the values stream out of
  the session in chunks of at most `_CHUNK_BYTES` (a remote session would
  send a whole tensor at once), else one SaveV2 over the same reads.  Over
  several devices: one SaveV2 per device (on it) into a temporary shard,
  then one MergeV2Checkpoints, a sharded Saver's layout without its
  restore ops (which would land on the variables' devices).
  Strategy-made variables: a Saver, built on the first export.
- The files are the ones a Saver leaves: `variables.index` and
  `variables.data-0000i-of-0000N`, one data file per device.
"""

import math
from typing import Callable, Dict, Iterator, List, NamedTuple, Tuple
import weakref

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import graph_pb2

from hub_tf1 import _tf_internal
from hub_tf1.format import bundle_writer

# Bytes per session.run of the streaming writer: small enough that memory
# stays at a few chunks, large enough that a run's fixed cost is noise.
_CHUNK_BYTES = 16 << 20
# Bytes per write of the in-process writer (its chunks are no copies; one-off
# scripts found 1, 4, 16 and 64 MiB alike on the 1 GB embedding).
_IN_PROCESS_CHUNK_BYTES = 16 << 20
# When streaming chunks pays, for sessions the in-process writer cannot
# serve (one-off scripts on the bench's modules, TF 2.15.1): it overlaps the
# checksum and the copy out of the session with the write, which saves
# about a third of an export whose bytes sit in a few large variables (the
# 1 GB embedding: 0.28 s against SaveV2's 0.43 s).  But its ops grow with
# the number of variables (eleven nodes each) and every run concatenates the
# slices: with the 200 variables of a BERT-base encoder (440 MB) the first
# export took 1.0 s against 0.47 s and later ones 0.27 s against 0.20 s.
_STREAM_MAX_VARIABLES = 8
_STREAM_MIN_BYTES = 64 << 20

Writer = Callable[[tf.compat.v1.Session, str], None]

# Dtypes whose numpy array holds exactly the tensor's bytes.
_IN_PROCESS_DTYPES = frozenset([
    tf.float16, tf.bfloat16, tf.float32, tf.float64, tf.complex64,
    tf.complex128, tf.int8, tf.int16, tf.int32, tf.int64, tf.uint8,
    tf.uint16, tf.uint32, tf.uint64, tf.bool])


class _Imported(NamedTuple):
  """A writer's imported ops: its fed prefix, its op and the reads in order."""
  prefix_input: tf.Tensor
  op: tf.Operation
  reads: List[tf.Tensor]


class Entry(NamedTuple):
  """One checkpoint entry: its key, slice spec and variable (or part)."""
  key: str
  slice_spec: str
  variable: tf.Variable


def build_writer(entries: List[Entry], devices: int, strategy_made: bool,
                 variable_map: Dict[str, object]) -> Writer:
  """Builds the ops of the writer for `entries` in the default graph.

  Args:
    entries: every checkpoint entry, sorted by key.
    devices: on how many devices the variables are.
    strategy_made: whether a distribution strategy made them.
    variable_map: key -> variable or list of parts, for a Saver.

  Returns:
    A function of (session, checkpoint prefix) that writes the values.
  """
  if uses_saver(strategy_made):
    saver = tf.compat.v1.train.Saver(
        variable_map, sharded=devices > 1,
        write_version=tf.compat.v1.train.SaverDef.V2)
    return lambda session, prefix: saver.save(  # pylint: disable=g-long-lambda
        session, prefix, write_meta_graph=False, write_state=False)
  streamable = bundle_writer.available() and all(
      not e.slice_spec and bundle_writer.supports(e.variable.dtype)
      and e.variable.shape.is_fully_defined() for e in entries)
  if devices > 1:
    writer, _ = _run_save(_sharded_save_op(entries))
    return writer
  if (streamable and len(entries) <= _STREAM_MAX_VARIABLES and
      sum(_nbytes(e) for e in entries) >= _STREAM_MIN_BYTES):
    streaming = _StreamingWriter(entries)
    writer, reads = streaming, streaming.reads
  else:
    writer, reads = _run_save(_save_op(entries))
  if streamable and all(e.variable.dtype.base_dtype in _IN_PROCESS_DTYPES
                        for e in entries):
    return _InProcessWriter(entries, reads, writer)
  return writer


def _run_save(imported: _Imported) -> Tuple[Writer, List[tf.Tensor]]:
  """A writer that runs `imported.op` on a prefix; the reads it writes."""
  return (lambda session, prefix: session.run(  # pylint: disable=g-long-lambda
      imported.op, {imported.prefix_input: prefix})), imported.reads


def uses_saver(strategy_made: bool) -> bool:
  """Whether `build_writer` makes a Saver (its restore ops come along).

  Several devices get one SaveV2 each (`_sharded_save_op`), not a Saver.

  Args:
    strategy_made: whether a distribution strategy made the variables.

  Returns:
    True for strategy-made variables.
  """
  return strategy_made


def _add_reads(graph_def: graph_pb2.GraphDef, entries: List[Entry],
               input_map: Dict[str, tf.Tensor]) -> List[str]:
  """Adds a no-copy read of each entry's variable; returns their node names."""
  names = []
  for i, entry in enumerate(entries):
    variable = entry.variable
    if getattr(variable, "read_value_no_copy", None) is None:  # Ref variable.
      input_map["value_%d:0" % i] = variable.value()
      read = graph_def.node.add(name="read_%d" % i, op="Identity",
                                input=["value_%d" % i],
                                device=variable.device)
      read.attr["T"].type = variable.dtype.base_dtype.as_datatype_enum
      names.append(read.name)
      continue
    input_map["handle_%d:0" % i] = variable.handle
    no_copy = graph_def.node.add(name="no_copy_%d" % i, op="DisableCopyOnRead",
                                 input=["handle_%d" % i],
                                 device=variable.device)
    read = graph_def.node.add(name="read_%d" % i, op="ReadVariableOp",
                              input=["handle_%d" % i, "^" + no_copy.name],
                              device=variable.device)
    read.attr["dtype"].type = variable.dtype.base_dtype.as_datatype_enum
    names.append(read.name)
  return names


def _reads_and_prefix(entries: List[Entry]
                      ) -> Tuple[graph_pb2.GraphDef, Dict[str, tf.Tensor],
                                 List[str]]:
  """A GraphDef of the reads of `entries` and a fed "prefix" string.

  Returns:
    (the GraphDef, its input map so far, the read nodes' names in order).
  """
  graph_def = graph_pb2.GraphDef()
  input_map = {}
  reads = _add_reads(graph_def, entries, input_map)
  _fed(graph_def, "prefix", "", tf.string)
  return graph_def, input_map, reads


def _save_op(entries: List[Entry]) -> _Imported:
  """One SaveV2 of `entries` to a fed prefix (`_Imported.op`)."""
  graph_def, input_map, reads = _reads_and_prefix(entries)
  _add_save(graph_def, "save", "prefix", list(zip(entries, reads)), "")
  return _import_writer(graph_def, input_map, "save", reads)


def _add_save(graph_def: graph_pb2.GraphDef, name: str, prefix: str,
              members: List[Tuple[Entry, str]], device: str) -> None:
  """Adds SaveV2 `name` and its key and slice constants to `graph_def`.

  Args:
    graph_def: the writer's GraphDef.
    name: the SaveV2 node's name (its constants are named after it).
    prefix: the node giving the file prefix it writes to.
    members: (entry, name of its read node) pairs, sorted by key.
    device: where it runs.
  """
  _const(graph_def, name + "_names", [e.key for e, _ in members], tf.string)
  _const(graph_def, name + "_slices", [e.slice_spec for e, _ in members],
         tf.string)
  save = _node(graph_def, "SaveV2", name,
               [prefix, name + "_names", name + "_slices"] +
               [read for _, read in members], device)
  save.attr["dtypes"].list.type.extend(
      e.variable.dtype.base_dtype.as_datatype_enum for e, _ in members)


def _import_writer(graph_def: graph_pb2.GraphDef,
                   input_map: Dict[str, tf.Tensor], op_name: str,
                   reads: List[str]) -> _Imported:
  """Imports a writer's GraphDef: its prefix input, op `op_name`, reads."""
  with tf.name_scope("export_variables"):
    imported = tf.compat.v1.import_graph_def(
        graph_def, input_map=input_map,
        return_elements=[op_name, "prefix:0"] + [r + ":0" for r in reads],
        name="ops")
  return _Imported(imported[1], imported[0], imported[2:])


def _sharded_save_op(entries: List[Entry]) -> _Imported:
  """Per device one SaveV2 of its entries, merged into a fed prefix.

  Shard i of N (devices in sorted order) is written on its device to
  `<prefix>_temp/part-0000i-of-0000N`; MergeV2Checkpoints, on the CPU of
  the last device's task once every shard is written, moves the data files
  to `<prefix>.data-0000i-of-0000N`, writes `<prefix>.index` and deletes
  the temporary directory.

  Returns:
    The imported ops; `op` is the MergeV2Checkpoints.
  """
  graph_def, input_map, reads = _reads_and_prefix(entries)
  devices = sorted({e.variable.device for e in entries})
  _const(graph_def, "temp_suffix", "_temp/part", tf.string)
  _const(graph_def, "num_shards", len(devices), tf.int32)
  temp_prefix = _node(graph_def, "StringJoin", "temp_prefix",
                      ["prefix", "temp_suffix"], "")
  temp_prefix.attr["N"].i = 2
  shard_files, saves = [], []
  for shard, device in enumerate(devices):
    members = [(e, read) for e, read in zip(entries, reads)
               if e.variable.device == device]
    _const(graph_def, "shard_%d" % shard, shard, tf.int32)
    shard_file = _node(graph_def, "ShardedFilename", "shard_file_%d" % shard,
                       ["temp_prefix", "shard_%d" % shard, "num_shards"],
                       device)
    _add_save(graph_def, "save_%d" % shard, shard_file.name, members, device)
    shard_files.append(shard_file.name)
    saves.append("save_%d" % shard)
  merge_device = tf.DeviceSpec.from_string(devices[-1]).replace(
      device_type="CPU", device_index=0).to_string()
  files = _node(graph_def, "Pack", "shard_files", shard_files, merge_device)
  files.attr["N"].i = len(shard_files)
  files.attr["T"].type = tf.string.as_datatype_enum
  merge = _node(graph_def, "MergeV2Checkpoints", "merge",
                ["shard_files", "prefix"] + ["^" + save for save in saves],
                merge_device)
  merge.attr["delete_old_dirs"].b = True
  return _import_writer(graph_def, input_map, "merge", reads)


class _InProcessWriter:
  """Writes the variables' own buffers, read without a copy; else a fallback.

  In a session of this process on CPU devices (`_in_this_process`) the
  reads are fetched as numpy arrays over the variables' memory
  (_tf_internal.callable_without_copy), so the writer thread's copy into the
  file is the only pass over the bytes besides the checksum: nothing is
  copied out of the session, chunk by chunk or whole.  Other sessions (a
  remote target would send whole tensors; a GPU variable would be copied
  whole to the host) get the fallback writer.
  """

  def __init__(self, entries: List[Entry], reads: List[tf.Tensor],
               fallback: Writer):
    self._entries = entries
    self._reads = reads
    self._fallback = fallback
    # Session -> its callable of the reads: its executor is built once.
    self._fetches = weakref.WeakKeyDictionary()

  def __call__(self, session: tf.compat.v1.Session, prefix: str) -> None:
    fetch = self._fetches.get(session)
    if fetch is None:
      if not _in_this_process(session, self._entries):
        self._fallback(session, prefix)
        return
      fetch = _tf_internal.callable_without_copy(session, self._reads)
      self._fetches[session] = fetch
    arrays = fetch()
    bundle_writer.write_bundle(prefix, [
        bundle_writer.StreamedTensor(
            entry.key, entry.variable.dtype.base_dtype,
            tuple(entry.variable.shape.as_list()),
            bundle_writer.byte_pieces(array, _IN_PROCESS_CHUNK_BYTES))
        for entry, array in zip(self._entries, arrays)])


def _in_this_process(session, entries: List[Entry]) -> bool:
  """Whether `session` runs in this process, with every variable on a CPU."""
  if not isinstance(session, (tf.compat.v1.Session,
                              tf.compat.v1.InteractiveSession)):
    return False  # E.g. a MonitoredSession: its target is not public.
  if session.sess_str:
    return False
  device_types = {tf.DeviceSpec.from_string(e.variable.device).device_type
                  for e in entries}
  if device_types <= {"CPU"}:
    return True
  if not device_types <= {"CPU", None}:
    return False
  try:
    devices = session.list_devices()
  except tf.errors.CancelledError:  # Closed: the fallback says so as run does.
    return False
  return all(tf.DeviceSpec.from_string(d.name).device_type == "CPU"
             for d in devices)


class _StreamingWriter:
  """Streams the values out of the session into format/bundle_writer.

  One fetch serves every chunk, so the session builds one executor (a new
  fetch list costs a pruning of the whole graph, ~0.1 s each on a
  BERT-sized graph) and a run returns one tensor: each variable is read,
  flattened, sliced by a fed element range, viewed as bytes, and the
  slices are concatenated (the one copy, into a tensor numpy then takes
  over).  A run's ranges add up to at most `_CHUNK_BYTES`.
  """

  def __init__(self, entries: List[Entry]):
    self._entries = entries
    graph_def = graph_pb2.GraphDef()
    input_map = {}
    reads = _add_reads(graph_def, entries, input_map)
    int64 = tf.int64.as_datatype_enum
    for name in ("begins", "sizes"):
      _fed(graph_def, name, [0] * len(entries), tf.int64)
    _const(graph_def, "flat", [-1])
    raws = []
    for i, (entry, read) in enumerate(zip(entries, reads)):
      device = entry.variable.device
      dtype = entry.variable.dtype.base_dtype
      _const(graph_def, "at_%d" % i, [i])
      _const(graph_def, "after_%d" % i, [i + 1])
      _const(graph_def, "one_%d" % i, [1])

      def node(op, name, inputs, i=i, device=device):
        return _node(graph_def, op, "%s_%d" % (name, i), inputs, device)

      bounds = [node("StridedSlice", key, [key, "at_%d" % i, "after_%d" % i,
                                           "one_%d" % i])
                for key in ("begins", "sizes")]
      for bound in bounds:
        bound.attr["T"].type = int64
        bound.attr["Index"].type = int64
      flat = node("Reshape", "flat", [read, "flat"])
      flat.attr["T"].type = dtype.as_datatype_enum
      flat.attr["Tshape"].type = int64
      part = node("Slice", "part", [flat.name] + [b.name for b in bounds])
      part.attr["T"].type = dtype.as_datatype_enum
      part.attr["Index"].type = int64
      if dtype == tf.bool:
        as_bytes = node("Cast", "bytes", [part.name])  # Both one byte, 0/1.
        as_bytes.attr["SrcT"].type = dtype.as_datatype_enum
        as_bytes.attr["DstT"].type = tf.uint8.as_datatype_enum
      elif dtype == tf.uint8:
        as_bytes = part
      else:
        as_bytes = node("Bitcast", "bytes", [part.name])
        as_bytes.attr["T"].type = dtype.as_datatype_enum
        as_bytes.attr["type"].type = tf.uint8.as_datatype_enum
      raw = node("Reshape", "raw", [as_bytes.name, "flat"])
      raw.attr["T"].type = tf.uint8.as_datatype_enum
      raw.attr["Tshape"].type = int64
      raws.append(raw.name)
    if len(raws) > 1:
      _const(graph_def, "axis", 0, tf.int32)
      concat = _node(graph_def, "ConcatV2", "chunk", raws + ["axis"], "")
      concat.attr["N"].i = len(raws)
      concat.attr["T"].type = tf.uint8.as_datatype_enum
      concat.attr["Tidx"].type = tf.int32.as_datatype_enum
      output = concat.name
    else:
      output = raws[0]
    with tf.name_scope("export_variables"):
      imported = tf.compat.v1.import_graph_def(
          graph_def, input_map=input_map,
          return_elements=["begins:0", "sizes:0", output + ":0"] +
          [read + ":0" for read in reads], name="ops")
    self._begins, self._sizes, self._chunk = imported[:3]
    self.reads = imported[3:]

  def __call__(self, session: tf.compat.v1.Session, prefix: str) -> None:
    bundle_writer.write_bundle(prefix, self._tensors(session))

  def _runs(self) -> Iterator[List[Tuple[int, int, int]]]:
    """Per run, its (entry position, first element, element count) ranges."""
    run, room = [], _CHUNK_BYTES
    for i, entry in enumerate(self._entries):
      itemsize = entry.variable.dtype.base_dtype.size
      start, numel = 0, _numel(entry)
      while start < numel:
        count = min(numel - start, max(1, room // itemsize))
        run.append((i, start, count))
        start += count
        room -= count * itemsize
        if room < itemsize:
          yield run
          run, room = [], _CHUNK_BYTES
    if run:
      yield run

  def _tensors(self, session) -> Iterator[bundle_writer.StreamedTensor]:
    fetched = {}  # Entry position -> its byte arrays of the current run.
    runs = self._runs()

    def chunks(i):
      remaining = _nbytes(self._entries[i])
      while remaining:
        if not fetched.get(i):
          fetched.clear()
          fetched.update(self._fetch(session, next(runs)))
        array = fetched[i].pop(0)
        remaining -= array.size
        yield array

    for i, entry in enumerate(self._entries):
      yield bundle_writer.StreamedTensor(
          entry.key, entry.variable.dtype.base_dtype,
          tuple(entry.variable.shape.as_list()), chunks(i))

  def _fetch(self, session, run) -> Dict[int, List[np.ndarray]]:
    """Runs the ranges of `run`; returns each entry's byte arrays, in order."""
    begins = np.zeros([len(self._entries)], np.int64)
    sizes = np.zeros([len(self._entries)], np.int64)
    for i, start, count in run:
      begins[i], sizes[i] = start, count
    data = session.run(self._chunk, {self._begins: begins,
                                     self._sizes: sizes})
    out, offset = {}, 0
    for i, _, count in run:
      size = count * self._entries[i].variable.dtype.base_dtype.size
      out.setdefault(i, []).append(data[offset:offset + size])
      offset += size
    return out


def _numel(entry: Entry) -> int:
  return math.prod(entry.variable.shape.as_list())


def _nbytes(entry: Entry) -> int:
  return _numel(entry) * entry.variable.dtype.base_dtype.size


def _const(graph_def: graph_pb2.GraphDef, name: str, value,
           dtype: tf.DType = tf.int64) -> None:
  node = graph_def.node.add(name=name, op="Const")
  node.attr["dtype"].type = dtype.as_datatype_enum
  node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value, dtype))


def _fed(graph_def: graph_pb2.GraphDef, name: str, default,
         dtype: tf.DType) -> None:
  """A PlaceholderWithDefault `name`: fed on every run, never a Placeholder.

  The ops may exist long before an export (they are built with the Module),
  and a graph's plain Placeholders are the caller's inputs.
  """
  _const(graph_def, name + "_default", default, dtype)
  node = _node(graph_def, "PlaceholderWithDefault", name,
               [name + "_default"], "")
  node.attr["dtype"].type = dtype.as_datatype_enum
  node.attr["shape"].shape.CopyFrom(
      tf.TensorShape(tf.make_tensor_proto(default, dtype).tensor_shape)
      .as_proto())


def _node(graph_def: graph_pb2.GraphDef, op: str, name: str, inputs: List[str],
          device: str):
  return graph_def.node.add(name=name, op=op, input=inputs, device=device)
