"""What a module holds, read from its files: `hub-tf1 inspect`.

Rules of this file:
* Pure file and proto reading: no TF session, no graph import, no op runs,
  and no checkpoint data is read (variable sizes come from the index).
* The result is plain JSON-able data (`describe_module`); its layout is the
  `--json` schema, versioned by `SCHEMA`: fields are only ever added under
  the same version.  `format_text` renders the same data for people.

JSON schema `hub_tf1.inspect/1` (every list in the module's own order):

    {"schema": "hub_tf1.inspect/1", "handle": str, "path": str,
     "format_version": int, "size_bytes": int (all files),
     "checkpoint": {"index_bytes": int, "data_bytes": int, "tensors": int}
                   or null (no variables),
     "variants": [{
        "tags": [str] (sorted),
        "signatures": [{"name": str,
                        "inputs"/"outputs": [{"name": str, "dtype": str,
                                              "shape": [int|null] or null,
                                              "kind": "dense"|"sparse"|
                                                      "ragged"|"composite"}]}],
        "variables": [{"name": str, "dtype": str, "shape": [int],
                       "trainable": bool, "partitions": int,
                       "resource": bool, "bytes": int or null}],
        "tables": [{"node": str, "op": str, "key_dtype": str,
                    "value_dtype": str}],
        "assets": [{"file": str, "size_bytes": int or null}],
        "attached_messages": [{"key": str, "size_bytes": int}],
        "ops": {op type: count} (top-level graph),
        "function_ops": {op type: count} (function library),
        "functions": int}]}
"""

import collections
import os
from typing import Any, Dict, List, Optional

import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.core.protobuf import struct_pb2

from hub_tf1.format import meta_graph as meta_graph_lib
from hub_tf1.format import module_files
from hub_tf1.format import tensor_bundle
from hub_tf1.format import variables as variables_lib
from hub_tf1.resolving import paths
from hub_tf1.resolving import progress

SCHEMA = "hub_tf1.inspect/1"

_TABLE_OPS = frozenset([
    "HashTable", "HashTableV2", "MutableHashTable", "MutableHashTableV2",
    "MutableHashTableOfTensors", "MutableHashTableOfTensorsV2",
    "MutableDenseHashTable", "MutableDenseHashTableV2",
    "AnonymousHashTable", "AnonymousMutableHashTable",
])


def _dtype_name(enum: int) -> str:
  try:
    return tf.dtypes.as_dtype(enum).name
  except TypeError:
    return "dtype_%d" % enum


def _shape(proto) -> Optional[List[Optional[int]]]:
  if proto.unknown_rank:
    return None
  return [None if d.size < 0 else int(d.size) for d in proto.dim]


def _tensor_entry(name: str, info: meta_graph_pb2.TensorInfo) -> Dict[str, Any]:
  which = info.WhichOneof("encoding")
  if which == "coo_sparse":
    kind = "sparse"
  elif which == "composite_tensor":
    spec = info.composite_tensor.type_spec
    ragged = spec.type_spec_class == struct_pb2.TypeSpecProto.RAGGED_TENSOR_SPEC
    kind = "ragged" if ragged else "composite"
  else:
    kind = "dense"
  dtype, shape = info.dtype, info.tensor_shape
  if which == "composite_tensor":
    # The spec's state is a tuple whose first shape and dtype are the
    # composite's own (e.g. RaggedTensorSpec(shape, dtype, ragged_rank, ...)).
    state = info.composite_tensor.type_spec.type_state.tuple_value.values
    shape = next((v.tensor_shape_value for v in state
                  if v.HasField("tensor_shape_value")), shape)
    dtype = next((v.tensor_dtype_value for v in state
                  if v.HasField("tensor_dtype_value")), dtype)
  return {"name": name, "dtype": _dtype_name(dtype), "shape": _shape(shape),
          "kind": kind}


def _variable_bytes(entries, slice_sizes, key: str) -> Optional[int]:
  entry = entries.get(key)
  if entry is None:
    return None
  if entry.slices:
    return slice_sizes.get(key)
  return int(entry.size)


def _variables(meta_graph, entries, slice_sizes) -> List[Dict[str, Any]]:
  result = []
  for key, parts in variables_lib.variable_parts(meta_graph).items():
    first = parts[0]
    result.append({
        "name": key, "dtype": _dtype_name(first.dtype),
        "shape": list(first.full_shape), "trainable": first.trainable,
        "partitions": len(parts), "resource": first.is_resource,
        "bytes": _variable_bytes(entries, slice_sizes, key)})
  return result


def _assets(meta_graph, module_dir: str) -> List[Dict[str, Any]]:
  collection = meta_graph.collection_def.get(meta_graph_lib.ASSETS_COLLECTION)
  if collection is None:
    return []
  result = []
  for packed in collection.any_list.value:
    asset = meta_graph_pb2.AssetFileDef()
    packed.Unpack(asset)
    path = os.path.join(module_dir, "assets", asset.filename)
    size = tf.io.gfile.stat(path).length if tf.io.gfile.exists(path) else None
    result.append({"file": asset.filename, "size_bytes": size})
  return result


def _variant(meta_graph, module_dir: str, entries, slice_sizes):
  graph = meta_graph.graph_def
  signatures = []
  for name, signature in sorted(meta_graph.signature_def.items()):
    signatures.append({
        "name": name,
        "inputs": [_tensor_entry(k, v) for k, v in
                   sorted(signature.inputs.items())],
        "outputs": [_tensor_entry(k, v) for k, v in
                    sorted(signature.outputs.items())]})
  function_ops = collections.Counter(
      node.op for function in graph.library.function
      for node in function.node_def)
  return {
      "tags": sorted(meta_graph_lib.tags_of(meta_graph)),
      "signatures": signatures,
      "variables": _variables(meta_graph, entries, slice_sizes),
      "tables": [{"node": n.name, "op": n.op,
                  "key_dtype": _dtype_name(n.attr["key_dtype"].type),
                  "value_dtype": _dtype_name(n.attr["value_dtype"].type)}
                 for n in graph.node if n.op in _TABLE_OPS],
      "assets": _assets(meta_graph, module_dir),
      "attached_messages": [
          {"key": k, "size_bytes": len(v)}
          for k, v in meta_graph_lib.read_attachments(meta_graph).items()],
      "ops": dict(sorted(collections.Counter(
          n.op for n in graph.node).items())),
      "function_ops": dict(sorted(function_ops.items())),
      "functions": len(graph.library.function),
  }


def _checkpoint(module_dir: str):
  """(summary or None, index entries, byte sizes of partitioned tensors)."""
  prefix = module_files.variables_prefix(module_dir)
  if not tf.io.gfile.exists(tensor_bundle.index_path(prefix)):
    return None, {}, {}
  header, entries = tensor_bundle.read_index(prefix, include_slice_keys=True)
  named, slice_sizes = {}, collections.Counter()
  for key, entry in entries.items():
    if isinstance(key, bytes):
      slice_sizes[tensor_bundle.split_slice_key(key)[0]] += int(entry.size)
    else:
      named[key] = entry
  shards = [tensor_bundle.data_path(prefix, shard, header.num_shards)
            for shard in range(header.num_shards)]
  summary = {"index_bytes": tf.io.gfile.stat(
      tensor_bundle.index_path(prefix)).length,
             "data_bytes": sum(tf.io.gfile.stat(shard).length
                               for shard in shards
                               if tf.io.gfile.exists(shard)),
             "tensors": len(named)}
  return summary, named, slice_sizes


def describe_module(module_dir: str, handle: Optional[str] = None) -> dict:
  """Describes the module stored in `module_dir` (schema: file docstring).

  Args:
    module_dir: a local module directory (resolve handles first).
    handle: what the user named it by (default: `module_dir`).

  Returns:
    The description, as JSON-able data.

  Raises:
    tf.errors.NotFoundError: `tfhub_module.pb` or `saved_model.pb` missing.
    IOError: a file that cannot be parsed.
    ValueError: an unsupported format version or a malformed graph.
  """
  module_def = module_files.read_module_def(module_dir)
  path = os.path.join(module_dir, module_files.SAVED_MODEL_FILENAME)
  saved_model = saved_model_pb2.SavedModel()
  try:
    saved_model.ParseFromString(tf.io.gfile.GFile(path, "rb").read())
  except Exception as e:  # DecodeError; its module differs across protobufs.
    raise IOError("Cannot parse file %s: %s" % (path, e)) from e
  meta_graph_lib.check_unique_tags(saved_model.meta_graphs)
  checkpoint, entries, slice_sizes = _checkpoint(module_dir)
  return {
      "schema": SCHEMA,
      "handle": handle or module_dir,
      "path": module_dir,
      "format_version": int(module_def.format),
      "size_bytes": paths.tree_size(module_dir),
      "checkpoint": checkpoint,
      "variants": [_variant(m, module_dir, entries, slice_sizes)
                   for m in saved_model.meta_graphs],
  }


def _shape_text(shape) -> str:
  if shape is None:
    return "<unknown rank>"
  return "[%s]" % ", ".join("?" if d is None else str(d) for d in shape)


def _table(rows: List[List[str]], indent: str = "    ") -> List[str]:
  if not rows:
    return []
  widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
  return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
          for r in rows]


def format_text(description: dict) -> str:
  """Renders `describe_module`'s result as readable tables."""
  d = description
  lines = ["module %s" % d["handle"]]
  if d["path"] != d["handle"]:
    lines.append("  at %s" % d["path"])
  lines.append("  format version %d, %s on disk" % (
      d["format_version"], progress.readable_size(d["size_bytes"])))
  if d["checkpoint"]:
    c = d["checkpoint"]
    lines.append("  checkpoint: %d tensors, %s data, %s index" % (
        c["tensors"], progress.readable_size(c["data_bytes"]),
        progress.readable_size(c["index_bytes"])))
  for variant in d["variants"]:
    lines.append("")
    lines.append("graph variant tags=%s" % (variant["tags"] or "{}"))
    for signature in variant["signatures"]:
      lines.append("  signature %r" % signature["name"])
      rows = [[label, t["name"], t["dtype"], _shape_text(t["shape"]),
               t["kind"]]
              for direction, label in (("inputs", "in"), ("outputs", "out"))
              for t in signature[direction]]
      lines += _table([["", "name", "dtype", "shape", "kind"]] + rows)
    if variant["variables"]:
      lines.append("  variables (%d)" % len(variant["variables"]))
      lines += _table([["name", "dtype", "shape", "trainable", "parts",
                        "size"]] +
                      [[v["name"], v["dtype"], _shape_text(v["shape"]),
                        "yes" if v["trainable"] else "no",
                        str(v["partitions"]),
                        progress.readable_size(v["bytes"])]
                       for v in variant["variables"]])
    for table in variant["tables"]:
      lines.append("  table %s (%s: %s -> %s)" % (
          table["node"], table["op"], table["key_dtype"],
          table["value_dtype"]))
    for asset in variant["assets"]:
      lines.append("  asset %s (%s)" % (
          asset["file"], progress.readable_size(asset["size_bytes"])))
    for message in variant["attached_messages"]:
      lines.append("  attached message %r (%d bytes)" % (
          message["key"], message["size_bytes"]))
    ops = sorted(variant["ops"].items(), key=lambda kv: (-kv[1], kv[0]))
    lines.append("  ops: %d nodes, %d types: %s" % (
        sum(variant["ops"].values()), len(ops),
        ", ".join("%s %d" % kv for kv in ops)))
    if variant["functions"]:
      lines.append("  function library: %d functions, %d nodes" % (
          variant["functions"], sum(variant["function_ops"].values())))
  return "\n".join(lines)
