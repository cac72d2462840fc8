"""Rules for the MetaGraphDefs stored in a module's `saved_model.pb`.

Which collections a module may carry, how attached messages are stored, and
the tag-set bookkeeping shared by the reading and the writing side.
"""

import collections
import re
from typing import Dict, Iterable, List, Mapping, Optional, Set

from tensorflow.core.protobuf import meta_graph_pb2

from hub_tf1.format import protos

# Collection keys a module may store.  tensorflow_hub 0.15 refuses any other
# key on load, so writing one would make our modules unreadable there.
SUPPORTED_COLLECTIONS = frozenset([
    "variables",
    "trainable_variables",
    "model_variables",
    "table_initializer",
    "update_ops",
    "regularization_losses",
    "asset_filepaths",
    "cond_context",
    "while_context",
    "hub_module_attachments",
])

ASSETS_COLLECTION = "saved_model_assets"  # Only on disk; consumed on load.
ASSET_FILEPATHS = "asset_filepaths"
ATTACHMENTS_COLLECTION = "hub_module_attachments"

_ATTACHMENT_KEY_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*$")


def tags_of(meta_graph: meta_graph_pb2.MetaGraphDef) -> frozenset:
  return frozenset(meta_graph.meta_info_def.tags)


def describe_tags(tags: Optional[Iterable[str]]) -> str:
  """Tags as the sorted list that error messages show."""
  return "None" if tags is None else str(sorted(tags))


def check_unique_tags(meta_graphs: Iterable[meta_graph_pb2.MetaGraphDef]):
  """Raises ValueError when two graph variants have the same tag set."""
  seen: Set[frozenset] = set()
  for meta_graph in meta_graphs:
    tags = tags_of(meta_graph)
    if tags in seen:
      raise ValueError("Tags %r used repeatedly: every graph variant of a "
                       "module needs its own tag set." % (tags,))
    seen.add(tags)


def check_collections(meta_graph: meta_graph_pb2.MetaGraphDef) -> None:
  """Raises ValueError naming collections the TF1 Hub format cannot hold."""
  bad = sorted(set(meta_graph.collection_def) - SUPPORTED_COLLECTIONS)
  if bad:
    raise ValueError(
        "Unsupported collections in graph: %s\nUse "
        "hub.create_module_spec(..., drop_collections=[...]) as appropriate. "
        "(Graph with tags %s; a TF1 Hub module can only store the "
        "collections %s: drop the others if the module does not need them.)"
        % (bad, describe_tags(tags_of(meta_graph)),
           sorted(SUPPORTED_COLLECTIONS)))


def node_list(meta_graph: meta_graph_pb2.MetaGraphDef, key: str) -> List[str]:
  """Names stored in a `node_list` collection ([] when absent)."""
  if key not in meta_graph.collection_def:
    return []
  return list(meta_graph.collection_def[key].node_list.value)


def bytes_list(meta_graph: meta_graph_pb2.MetaGraphDef, key: str) -> List[bytes]:
  """Values stored in a `bytes_list` collection ([] when absent)."""
  if key not in meta_graph.collection_def:
    return []
  return list(meta_graph.collection_def[key].bytes_list.value)


def check_attachment_key(key: str) -> None:
  if not isinstance(key, str) or not _ATTACHMENT_KEY_RE.match(key):
    raise ValueError("hub.attach_message() called with malformed key '%s': "
                     "it must match %s." % (key, _ATTACHMENT_KEY_RE.pattern))


def read_attachments(
    meta_graph: meta_graph_pb2.MetaGraphDef) -> Dict[str, bytes]:
  """The attached messages of one graph variant, key -> serialized bytes."""
  if ATTACHMENTS_COLLECTION not in meta_graph.collection_def:
    return {}
  coll = meta_graph.collection_def[ATTACHMENTS_COLLECTION]
  if coll.WhichOneof("kind") != "bytes_list":
    raise ValueError("Internal CollectionDef for attached messages has kind "
                     "%s, expected bytes_list (collection %r of the graph "
                     "with tags %s)." % (
                         coll.WhichOneof("kind"), ATTACHMENTS_COLLECTION,
                         describe_tags(tags_of(meta_graph))))
  result = collections.OrderedDict()
  for serialized in coll.bytes_list.value:
    attachment = protos.ModuleAttachment.FromString(serialized)
    result[attachment.key] = attachment.value
  return result


def write_attachments(meta_graph: meta_graph_pb2.MetaGraphDef,
                      attachments: Mapping[str, bytes]) -> None:
  """Stores `attachments` in the graph variant (nothing when empty)."""
  if not attachments:
    return
  values = meta_graph.collection_def[ATTACHMENTS_COLLECTION].bytes_list.value
  for key, value in attachments.items():
    values.append(protos.ModuleAttachment(key=key, value=value)
                  .SerializeToString())
