"""`eval_function_for_module`: call a module on numpy values, no graph code."""

import contextlib
from typing import Callable, Dict, Iterator

import tensorflow as tf

from hub_tf1.module import module as module_lib
from hub_tf1.spec import tensor_info


def _placeholders(key: str, info):
  """A placeholder value for one signature input, and its feedable parts."""
  if info.is_sparse:
    value = tf.compat.v1.sparse_placeholder(info.dtype, info.get_shape(),
                                            name=key)
    return value, [value]
  if info.is_composite:
    specs = tf.nest.flatten(info.type_spec, expand_composites=True)
    parts = [tf.compat.v1.placeholder(s.dtype, s.shape,
                                      name="%s.component_%d" % (key, i))
             for i, s in enumerate(specs)]
    return tf.nest.pack_sequence_as(info.type_spec, parts,
                                    expand_composites=True), parts
  value = tf.compat.v1.placeholder(info.dtype, info.get_shape(), name=key)
  return value, [value]


def _feed_parts(value) -> list:
  """Numpy-side components of a value, in the placeholders' order."""
  if isinstance(value, tf.compat.v1.ragged.RaggedTensorValue):
    splits = []
    while isinstance(value, tf.compat.v1.ragged.RaggedTensorValue):
      splits.append(value.row_splits)
      value = value.values
    return [value] + splits
  return [value]


@contextlib.contextmanager
def eval_function_for_module(spec, tags=None) -> Iterator[Callable]:
  """Yields `f(inputs=None, signature=None, as_dict=None)` running the module.

  The module is instantiated in a private graph with its weights loaded;
  `f` feeds numpy values (SparseTensorValue / RaggedTensorValue for
  composite inputs) and returns numpy results with the same rules as
  `Module.__call__`.

  Args:
    spec: a ModuleSpec or handle.
    tags: the graph variant; None means the empty set.

  Yields:
    The function above, valid inside the `with` block.

  Raises:
    The errors of `Module(spec, tags=tags)`; the function raises those of
    `Module.__call__` plus ValueError for an unknown signature.
  """
  with tf.Graph().as_default() as graph:
    module = module_lib.Module(spec, tags=tags)
    calls: Dict[str, tuple] = {}
    for signature in module.get_signature_names():
      with tf.compat.v1.variable_scope(signature):
        infos = module.get_input_info_dict(signature)
        values, parts = {}, {}
        for key, info in infos.items():
          values[key], parts[key] = _placeholders(key, info)
        outputs = module(values, signature=signature, as_dict=True)
      calls[signature] = (infos, parts, outputs)
    session = tf.compat.v1.train.SingularMonitoredSession()
  with session:

    def run(inputs=None, _sentinel=None, signature=None, as_dict=None):
      if _sentinel is not None:
        raise ValueError("Pass signature and as_dict as keyword arguments.")
      signature = signature or "default"
      if signature not in calls:
        raise ValueError("Signature %r is missing from meta graph." % signature)
      infos, parts, outputs = calls[signature]
      inputs = tensor_info.normalize_inputs(inputs, infos, signature)
      feed = {}
      for key, value in inputs.items():
        feed.update(zip(parts[key], _feed_parts(value)))
      if as_dict:
        return session.run(outputs, feed_dict=feed)
      if "default" not in outputs:
        raise TypeError("There is no output named 'default'. Use as_dict=True.")
      return session.run(outputs["default"], feed_dict=feed)

    del graph
    yield run
