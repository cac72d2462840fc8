"""Asset files (vocabularies ...) of a module.

In a module graph an asset is a scalar string `Const` whose tensor is listed
in the `asset_filepaths` collection.  On disk the Const holds a placeholder
and the `saved_model_assets` collection maps it to a file in `assets/`; on
load the Const gets the absolute path of that file back.
"""

import os
from typing import Dict, List, Tuple

import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from hub_tf1.format import meta_graph as meta_graph_lib

ASSET_PLACEHOLDER = b"SAVEDMODEL-ASSET"
_ASSET_FILE_DEF_TYPE = "type.googleapis.com/tensorflow.AssetFileDef"


def _asset_nodes(meta_graph: meta_graph_pb2.MetaGraphDef, names: List[str]):
  """The asset Const NodeDefs named by tensor names `names` (checked)."""
  by_name = {node.name: node for node in meta_graph.graph_def.node}
  result = []
  for tensor_name in names:
    if not tensor_name.endswith(":0"):
      raise ValueError("Unexpected tensor in ASSET_FILEPATHS collection: "
                       "%r is not output 0 of its op." % tensor_name)
    node = by_name.get(tensor_name[:-2])
    if node is None:
      raise ValueError("Asset tensor %r is not in the graph." % tensor_name)
    if node.op != "Const":
      raise TypeError("Asset node must be of type constant. (Node %r has "
                      "op %s.)" % (node.name, node.op))
    value = node.attr["value"].tensor
    if value.dtype != tf.string.as_datatype_enum:
      raise TypeError("Asset node must be of dtype string. (Node %r has "
                      "dtype %s.)" % (node.name, tf.as_dtype(value.dtype).name))
    if len(value.string_val) != 1 or value.tensor_shape.dim:
      raise TypeError("Asset node must be a scalar. (Node %r is not.)"
                      % node.name)
    result.append(node)
  return result


def prepare_for_export(
    meta_graph: meta_graph_pb2.MetaGraphDef) -> Dict[str, str]:
  """Rewrites `meta_graph` in place for writing; returns {filename: source}.

  Asset Consts get the placeholder value and a `saved_model_assets` entry
  naming a file relative to `assets/`.  Different sources with the same
  basename get numeric suffixes (`v.txt`, `v.txt0`, ...), as the original.
  """
  if meta_graph_lib.ASSET_FILEPATHS in meta_graph.collection_def:
    coll = meta_graph.collection_def[meta_graph_lib.ASSET_FILEPATHS]
    if coll.WhichOneof("kind") not in (None, "node_list"):
      raise ValueError("MetaGraph collection ASSET_FILEPATHS is not a list of "
                       "tensors (collection %r holds a %s)." % (
                           meta_graph_lib.ASSET_FILEPATHS,
                           coll.WhichOneof("kind")))
  names = meta_graph_lib.node_list(meta_graph, meta_graph_lib.ASSET_FILEPATHS)
  if not names:
    return {}
  files: Dict[str, str] = {}
  source_to_file: Dict[str, str] = {}
  entries: List[Tuple[str, str]] = []
  for node in _asset_nodes(meta_graph, sorted(set(names))):
    source = node.attr["value"].tensor.string_val[0].decode("utf-8")
    filename = source_to_file.get(source)
    if filename is None:
      base = os.path.basename(source)
      filename, suffix = base, 0
      while filename in files:
        filename = "%s%d" % (base, suffix)
        suffix += 1
      files[filename] = source
      source_to_file[source] = filename
    node.attr["value"].tensor.string_val[0] = ASSET_PLACEHOLDER
    entries.append((node.name + ":0", filename))
  any_list = meta_graph.collection_def[meta_graph_lib.ASSETS_COLLECTION].any_list
  for tensor_name, filename in sorted(entries):
    asset_def = meta_graph_pb2.AssetFileDef(filename=filename)
    asset_def.tensor_info.name = tensor_name
    packed = any_list.value.add()
    packed.type_url = _ASSET_FILE_DEF_TYPE
    packed.value = asset_def.SerializeToString()
  return files


def resolve_on_load(meta_graph: meta_graph_pb2.MetaGraphDef,
                    module_dir: str) -> None:
  """Points the asset Consts of `meta_graph` at `<module_dir>/assets/...`.

  Consumes the `saved_model_assets` collection, so that the graph runs
  without anything being fed.
  """
  if meta_graph_lib.ASSETS_COLLECTION not in meta_graph.collection_def:
    return
  assets_dir = os.path.join(module_dir, "assets")
  if "://" not in assets_dir:
    assets_dir = os.path.abspath(assets_dir)
  paths = {}
  coll = meta_graph.collection_def[meta_graph_lib.ASSETS_COLLECTION]
  for packed in coll.any_list.value:
    asset_def = meta_graph_pb2.AssetFileDef.FromString(packed.value)
    parts = asset_def.filename.split("/")
    if (not asset_def.filename or asset_def.filename.startswith("/") or
        ".." in parts):
      raise ValueError("Asset filename (%s) points outside assets_dir %s."
                       % (asset_def.filename, assets_dir))
    path = assets_dir.rstrip("/") + "/" + asset_def.filename
    paths[asset_def.tensor_info.name] = path
  del meta_graph.collection_def[meta_graph_lib.ASSETS_COLLECTION]
  for node in _asset_nodes(meta_graph, sorted(paths)):
    node.attr["value"].tensor.string_val[0] = (
        paths[node.name + ":0"].encode("utf-8"))
