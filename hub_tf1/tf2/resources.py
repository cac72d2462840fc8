"""Non-variable state of a loaded module (tables) as TF2 resources.

Rules of this file:
* A state node that is not a variable is created by running its op
  eagerly (`tf.raw_ops`), with a `shared_name` unique to the instance, so
  two loaded modules never share a table.
* Its initializer is the module's own table-initializer sub-graph, run
  through the variant that owns the node; the asset files it reads are
  tracked `tf.saved_model.Asset`s of the resource, so a SavedModel that
  keeps only the resource still copies them.
"""

import itertools
from typing import Dict

import tensorflow as tf

from hub_tf1.tf2 import graph_rewrite

_uid = itertools.count()


def _attr_value(attr):
  which = attr.WhichOneof("value")
  if which == "type":
    return tf.dtypes.as_dtype(attr.type)
  if which == "shape":
    return tf.TensorShape(attr.shape)
  if which in ("s", "i", "f", "b"):
    return getattr(attr, which)
  raise graph_rewrite.UnsupportedGraphError(
      "attribute of kind %r is not supported for state ops" % which)


def _create_resource(node, unique: str) -> tf.Tensor:
  """Runs a state node's op eagerly; returns its resource handle."""
  attrs = {k: _attr_value(v) for k, v in node.attr.items()
           if not k.startswith("_")}
  if "shared_name" in attrs:
    attrs["shared_name"] = unique
  op = getattr(tf.raw_ops, node.op, None)
  if op is None:
    raise graph_rewrite.UnsupportedGraphError(
        "state op %r (%s) has no TF2 equivalent." % (node.name, node.op))
  return op(**attrs)


class StateResource(tf.saved_model.experimental.TrackableResource):
  """A state node that is not a variable (a table), as a TF2 resource.

  Created and initialised (from the module's initializer ops, reading the
  module's asset files through tracked `tf.saved_model.Asset`s) when first
  used, and again by `tf.saved_model.load` of a model that captured it.
  """

  def __init__(self, variant, name: str, assets: Dict):
    self._node = variant.analysis.nodes[name]
    self._name = name
    self._init = variant.initializer_graph(name)
    self._variant = variant
    self._assets = assets
    super().__init__()

  def _trackable_children(self, save_type="checkpoint", **kwargs):
    # The assets its initializer reads belong to it, so that a SavedModel
    # that tracks only the resource (Keras' model.export) copies the files.
    children = super()._trackable_children(save_type, **kwargs)
    if save_type == "savedmodel":
      children.update({"asset_%d" % i: asset for i, (_, asset) in
                       enumerate(sorted(self._assets.items()))})
    return children

  def _create_resource(self):
    return _create_resource(self._node, "hub_tf1_%d_%s" % (next(_uid),
                                                           self._name))

  def _initialize(self):
    if self._init is None:
      return tf.constant(0)
    graph_def, roots, asset_names = self._init
    feeds = {t: tf.identity(self._assets[t].asset_path) for t in asset_names}
    ops = self._variant.run_graph(
        graph_def, feeds, list(roots), "<initializer of %s>" % self._name,
        handles={self._name: self.resource_handle})
    with tf.control_dependencies(ops):
      return tf.constant(0)
