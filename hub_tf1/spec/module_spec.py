"""`ModuleSpec`: the graph variants of a module and where its weights are."""

from typing import Callable, Dict, List, Optional

import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.core.protobuf import saved_model_pb2

from hub_tf1.format import checkpoint_copy
from hub_tf1.format import meta_graph as meta_graph_lib
from hub_tf1.format import module_files
from hub_tf1.format import variables as variables_lib
from hub_tf1.spec import tensor_info


class ModuleSpec(object):
  """A module's description: graph variants by tag set, signatures, weights.

  Made by `hub.create_module_spec` (weights come from the initializers) or
  `hub.load_module_spec` (weights come from the module's checkpoint).
  Instantiate it with `hub.Module(spec)`.
  """

  def __init__(self, saved_model: saved_model_pb2.SavedModel,
               checkpoint_path: Optional[str] = None):
    """Wraps a module's SavedModel proto (use `load_module_spec` to read one).

    Args:
      saved_model: the parsed `saved_model.pb`, one MetaGraphDef per graph
        variant.
      checkpoint_path: prefix of the checkpoint with the module's weights,
        or None (a spec from `create_module_spec`).

    Raises:
      ValueError: two variants with the same tags, or a malformed collection.
    """
    meta_graph_lib.check_unique_tags(saved_model.meta_graphs)
    for meta_graph in saved_model.meta_graphs:
      meta_graph_lib.check_collections(meta_graph)
    self._meta_graphs = {meta_graph_lib.tags_of(mg): mg
                         for mg in saved_model.meta_graphs}
    self._order = [meta_graph_lib.tags_of(mg) for mg in saved_model.meta_graphs]
    self._checkpoint_path = checkpoint_path
    self._memo: Dict[object, object] = {}

  # -- graph variants --------------------------------------------------------

  def get_tags(self) -> List[frozenset]:
    """The tag sets of the graph variants, as tensorflow_hub 0.15 lists them.

    That is the variants in stored order, passed through `sorted()` of
    frozensets, whose `<` is the proper-subset relation: a subset comes
    before its supersets, incomparable sets keep their stored order.

    Returns:
      A list of frozensets of tag strings.
    """
    return sorted(self._order)

  def has_tags(self, tags) -> bool:
    """Whether a graph variant has exactly `tags`.

    Args:
      tags: an iterable of tag strings; None means the empty set.

    Returns:
      True or False.
    """
    return frozenset(tags or ()) in self._meta_graphs

  def get_meta_graph(self, tags=None) -> meta_graph_pb2.MetaGraphDef:
    """The MetaGraphDef of the variant with exactly `tags` (read-only).

    Args:
      tags: an iterable of tag strings; None means the empty set.

    Returns:
      The stored MetaGraphDef proto (do not modify it).

    Raises:
      KeyError: no variant has these tags.
    """
    key = frozenset(tags or ())
    if key not in self._meta_graphs:
      raise KeyError("Module has no graph with tags: %s (it has %s)" % (
          set(key) or "{}", [sorted(t) for t in self.get_tags()]))
    return self._meta_graphs[key]

  def meta_graphs(self) -> List[meta_graph_pb2.MetaGraphDef]:
    """All variants, in the order they were created."""
    return [self._meta_graphs[t] for t in self._order]

  @property
  def checkpoint_path(self) -> Optional[str]:
    """Prefix of the checkpoint holding the weights, or None."""
    return self._checkpoint_path

  def _cached(self, key, factory: Callable[[], object]):
    """Caches what this spec derives from its own graphs (signature infos).

    Bounded by the spec itself: one entry per signature and direction.
    Derived objects of later layers are cached there (hub_tf1/spec_cache.py).
    """
    if key not in self._memo:
      self._memo[key] = factory()
    return self._memo[key]

  # -- signatures ------------------------------------------------------------

  def get_signature_names(self, tags=None) -> List[str]:
    """The signature names of the graph variant with `tags`.

    Args:
      tags: the variant's tags; None means the empty set.

    Returns:
      A list of strings, in stored order.

    Raises:
      KeyError: no variant has these tags.
    """
    return list(self.get_meta_graph(tags).signature_def.keys())

  def get_signature_def(self, signature=None, tags=None):
    """The SignatureDef proto of `signature` in the variant with `tags`.

    Args:
      signature: a signature name; None or "" means "default".
      tags: the variant's tags; None means the empty set.

    Returns:
      The stored `meta_graph_pb2.SignatureDef` (read-only).

    Raises:
      KeyError: no variant has these tags.
      ValueError: the variant has no such signature (the message lists its
        signatures).
    """
    signature = signature or "default"
    meta_graph = self.get_meta_graph(tags)
    if signature not in meta_graph.signature_def:
      raise ValueError("Signature %r is missing from meta graph. Signatures "
                       "of the graph with tags %s: %s" % (
                           signature, meta_graph_lib.describe_tags(
                               meta_graph_lib.tags_of(meta_graph)),
                           sorted(meta_graph.signature_def)))
    return meta_graph.signature_def[signature]

  def get_input_info_dict(self, signature=None, tags=None):
    """The inputs of a signature.

    Args:
      signature: a signature name; None or "" means "default".
      tags: the variant's tags; None means the empty set.

    Returns:
      A new dict of input name -> ParsedTensorInfo.

    Raises:
      KeyError: no variant has these tags.
      ValueError: the variant has no such signature.
    """
    key = ("inputs", signature or "default", frozenset(tags or ()))
    return dict(self._cached(key, lambda: tensor_info.parse_map(
        self.get_signature_def(signature, tags).inputs)))

  def get_output_info_dict(self, signature=None, tags=None):
    """The outputs of a signature.

    Args:
      signature: a signature name; None or "" means "default".
      tags: the variant's tags; None means the empty set.

    Returns:
      A new dict of output name -> ParsedTensorInfo.

    Raises:
      KeyError: no variant has these tags.
      ValueError: the variant has no such signature.
    """
    key = ("outputs", signature or "default", frozenset(tags or ()))
    return dict(self._cached(key, lambda: tensor_info.parse_map(
        self.get_signature_def(signature, tags).outputs)))

  # -- attached messages -----------------------------------------------------

  def get_attached_message(self, key, message_type, tags=None, required=False):
    """Parses the message attached under `key` into a new `message_type()`.

    Args:
      key: the string the message was attached under (`attach_message`).
      message_type: the protocol message class to parse into.
      tags: the variant's tags; None means the empty set.
      required: raise instead of returning None when it is absent.

    Returns:
      A `message_type` instance, or None when absent and not `required`.

    Raises:
      KeyError: absent and `required`, or no variant has these tags.
    """
    attachments = meta_graph_lib.read_attachments(self.get_meta_graph(tags))
    if key not in attachments:
      if required:
        raise KeyError("No attached message for key '%s' in graph version %s "
                       "of Hub Module" % (key, sorted(tags or [])))
      return None
    message = message_type()
    message.ParseFromString(attachments[key])
    return message

  # -- export ----------------------------------------------------------------

  def export(self, path, _sentinel=None, checkpoint_path=None,
             name_transform_fn=None):
    """Writes this spec as a module at `path` with weights from a checkpoint.

    Args:
      path: directory to create (must not exist).
      _sentinel: forces the other arguments to be given by keyword.
      checkpoint_path: prefix of a checkpoint that holds every variable of
        the module (e.g. a training checkpoint), or a directory whose latest
        checkpoint is used.
      name_transform_fn: maps a module variable name to its checkpoint key
        (identity by default), e.g. `lambda n: "tower/" + n`.
    """
    if _sentinel is not None:
      raise ValueError("Call export() with keyword arguments only.")
    if not checkpoint_path:
      raise ValueError("Missing mandatory `checkpoint_path` parameter")
    if frozenset() not in self._meta_graphs:
      raise ValueError("ModuleSpec.export needs the graph variant with the "
                       "empty tag set to know the variables; this spec has "
                       "%s." % [sorted(t) for t in self.get_tags()])
    if tf.io.gfile.isdir(checkpoint_path):  # A training dir, as TF allows.
      latest = tf.train.latest_checkpoint(checkpoint_path)
      if not latest:
        raise ValueError("No checkpoint found in directory %s."
                         % checkpoint_path)
      checkpoint_path = latest
    transform = name_transform_fn or (lambda name: name)
    meta_graph = self._meta_graphs[frozenset()]
    entries = {
        key: (transform(key), dtype, shape)
        for key, (dtype, shape) in variables_lib.checkpoint_entries(
            meta_graph).items()}
    partitions = variables_lib.partitioning(meta_graph)
    save = None
    if entries:
      save = lambda prefix: checkpoint_copy.copy_variables(  # pylint: disable=g-long-lambda
          checkpoint_path, prefix, entries, partitions)
    module_files.write_module(path, self.meta_graphs(), save)

  def __repr__(self):
    return "<hub.ModuleSpec tags=%s>" % [sorted(t) for t in self.get_tags()]
