"""Feature columns backed by hub modules.

The columns implement both feature-column protocols of TensorFlow:

* v1 (`_DenseColumn`): used by `tf.compat.v1.feature_column.input_layer` and
  the v1 canned estimators; every `_get_dense_tensor` call instantiates a new
  `hub_tf1.Module` in the current variable scope.
* v2 (`DenseColumn`): used by `DenseFeatures` and the v2 canned estimators;
  `create_state` instantiates the module once and keeps it in the state
  manager as the resource named "module" (the sparse text column, like the
  original, builds a new module per call in both protocols).

The module spec is resolved and checked when the column is created, so an
unsuitable module fails early, with a message listing what the module lacks.
Under in-graph replication (one build per replica), only the first
replica's module is recorded for export.
"""

import collections
from typing import Any, List, Optional, Sequence, Tuple, Union

import tensorflow as tf

from hub_tf1 import _tf_internal
from estimator_integration import column_modules
from hub_tf1.module import module as module_lib
from hub_tf1.spec import image
from hub_tf1.spec import loading
from hub_tf1.spec import module_spec as module_spec_lib

# pylint: disable=g-direct-tensorflow-import
# Extending feature columns needs the base classes, which TensorFlow keeps in
# its private modules (the v1 one is not exported at all).
# pylint: enable=g-direct-tensorflow-import


def _record(column_name: str, module: Any) -> None:
  """Records `module` for export, unless it shares another replica's state.

  Under in-graph replication each replica builds the column again; the
  Module of a later replica shares the first one's state (see
  hub_tf1/module/replicas.py) and must not be exported a second time.
  """
  if not module.reuses_state:
    column_modules.record(column_name, module)


# Name of the state-manager resource that holds a column's Module (v2 path).
MODULE_RESOURCE_NAME = "module"

_COMBINERS = ("mean", "sqrtn", "sum")


def _text_embedding_issues(module_spec: Any) -> List[str]:
  """What keeps `module_spec` from being a text embedding (empty if usable)."""
  issues = []
  inputs = module_spec.get_input_info_dict()
  if len(inputs) != 1:
    issues.append("Module default signature must require only one input")
  else:
    (info,) = inputs.values()
    shape = info.get_shape()
    if not (info.dtype == tf.string and shape.rank == 1 and
            shape.as_list() == [None]):
      issues.append("Module default signature must have only one input "
                    "tf.Tensor(shape=(?,), dtype=string)")
  outputs = module_spec.get_output_info_dict()
  if "default" not in outputs:
    issues.append("Module default signature must have a 'default' output.")
  else:
    info = outputs["default"]
    shape = info.get_shape()
    if not (info.dtype == tf.float32 and shape.rank == 2 and
            shape.as_list()[0] is None and shape.as_list()[1]):
      issues.append("Module default signature must have a 'default' output of "
                    "tf.Tensor(shape=(?,K), dtype=float32).")
  return issues


def _check_text_embedding(module_spec: Any) -> None:
  issues = _text_embedding_issues(module_spec)
  if issues:
    raise ValueError("Module is not a text-embedding: %r" % issues)


def _image_embedding_issues(module_spec: Any,
                            check_image_size: bool) -> List[str]:
  """What keeps `module_spec` from being an image embedding."""
  issues = []
  inputs = module_spec.get_input_info_dict()
  if list(inputs) != ["images"] or inputs["images"].dtype != tf.float32:
    issues.append("Module 'default' signature must require a single input, "
                  "which must have type float32 and name 'images'.")
  elif check_image_size:
    try:
      image.get_expected_image_size(module_spec)
    except ValueError as e:
      issues.append("Module does not support hub.get_expected_image_size(); "
                    "original error was:\n" + str(e))
  outputs = module_spec.get_output_info_dict()
  if "default" not in outputs:
    issues.append("Module 'default' signature must have a 'default' output.")
  else:
    info = outputs["default"]
    shape = info.get_shape()
    if not (info.dtype == tf.float32 and shape.rank == 2 and
            shape.as_list()[1]):
      issues.append("Module 'default' signature must have a 'default' output "
                    "of tf.Tensor(shape=(_,K), dtype=float32).")
  return issues


_DENSE_COLUMN_BASES = _tf_internal.dense_column_bases()


class _HubDenseColumn(_DENSE_COLUMN_BASES["v1"], _DENSE_COLUMN_BASES["v2"]):
  """What the three hub columns share: naming, parsing plumbing, shape.

  Subclasses are namedtuples with a `key` field and set `self.module_spec`.
  """

  @property
  def dtype(self) -> tf.DType:
    return tf.float32

  @property
  def _is_v2_column(self) -> bool:
    return True

  @property
  def parents(self) -> List[Any]:
    return [self.key]

  @property
  def name(self) -> str:
    """`<key>_hub_module_embedding`; also the column's variable scope name."""
    key_name = self.key if isinstance(self.key, str) else self.key.name
    return "%s_hub_module_embedding" % key_name

  def _transform_feature(self, inputs: Any) -> Any:
    return inputs.get(self.key)

  def transform_feature(self, transformation_cache: Any,
                        state_manager: Any) -> Any:
    return transformation_cache.get(self.key, state_manager)

  @property
  def _parse_example_spec(self) -> dict:
    return self.parse_example_spec

  @property
  def variable_shape(self) -> tf.TensorShape:
    """Shape of one example's embedding (the batch dimension removed)."""
    return self.module_spec.get_output_info_dict()["default"].get_shape()[1:]

  @property
  def _variable_shape(self) -> tf.TensorShape:
    return self.variable_shape

  def _config_from_fields(self, function_name: str,
                          spec_field: str) -> dict:
    spec = getattr(self, spec_field)
    if not isinstance(spec, str):
      raise NotImplementedError(
          "Can only generate a valid config for `hub.%s` that uses a string "
          "`module_spec`.\n\nGot `type(module_spec)`: %s" %
          (function_name, type(spec)))
    return dict(zip(self._fields, self))


def text_embedding_column(key: Union[str, Any],
                          module_spec: Any,
                          trainable: bool = False) -> "_TextEmbeddingColumn":
  """A dense column that embeds a string feature with a text module.

  The feature holds one string per example; the column's value is
  `module(strings)` with the module's default signature, which must map a
  `tf.string` vector `[batch]` to a float32 `[batch, K]` with known K.

  Args:
    key: name of the string feature, or a feature column providing it.
    module_spec: a `hub_tf1.ModuleSpec` or a handle to load one from.
    trainable: whether the module's variables are trained along (only if the
      consumer, e.g. `input_layer(..., trainable=True)`, trains too).

  Returns:
    A column usable in `input_layer`, `DenseFeatures` and canned estimators.

  Raises:
    ValueError: the module does not have that signature.
  """
  return _TextEmbeddingColumn(
      key=key, module_spec_path=module_spec, trainable=trainable)


class _TextEmbeddingColumn(
    _HubDenseColumn,
    collections.namedtuple("_TextEmbeddingColumn",
                           ("key", "module_spec_path", "trainable"))):
  """Made by `text_embedding_column`."""

  def __init__(self, key, module_spec_path, trainable):
    del key, module_spec_path, trainable  # Stored by the namedtuple.
    self.module_spec = loading.as_module_spec(self.module_spec_path)
    _check_text_embedding(self.module_spec)
    super().__init__()

  @property
  def parse_example_spec(self) -> dict:
    return {self.key: tf.io.FixedLenFeature([1], tf.string)}

  def _embed(self, text: tf.Tensor, module: Any) -> tf.Tensor:
    return module(tf.reshape(text, [-1]))

  def _get_dense_tensor(self, inputs, weight_collections=None, trainable=None):
    del weight_collections  # Module variables go to the usual collections.
    module = module_lib.Module(
        self.module_spec, trainable=bool(self.trainable and trainable))
    _record(self.name, module)
    return self._embed(inputs.get(self), module)

  def create_state(self, state_manager):
    # `_trainable` is how DenseFeatures tells columns whether it trains.
    trainable = bool(self.trainable and
                     getattr(state_manager, "_trainable", True))
    module = module_lib.Module(self.module_spec, trainable=trainable)
    _record(self.name, module)
    state_manager.add_resource(self, MODULE_RESOURCE_NAME, module)

  def get_dense_tensor(self, transformation_cache, state_manager):
    module = state_manager.get_resource(self, MODULE_RESOURCE_NAME)
    return self._embed(transformation_cache.get(self, state_manager), module)

  def get_config(self) -> dict:
    return self._config_from_fields("text_embedding_column",
                                    "module_spec_path")

  @classmethod
  def from_config(cls, config, custom_objects=None, columns_by_name=None):
    del custom_objects, columns_by_name  # The config holds plain values.
    return cls(**dict(config))


def sparse_text_embedding_column(
    key: Union[str, Any],
    module_spec: Any,
    combiner: str,
    default_value: Optional[str],
    trainable: bool = False) -> "_SparseTextEmbeddingColumn":
  """A dense column that embeds a bag of tokens with a text module.

  The feature is a `SparseTensor` of strings (tokens per example).  The module
  embeds every token on its own; the token embeddings of one example are
  combined with `combiner` (order ignored) into `[batch, K]`.

  Args:
    key: name of the sparse string feature, or a feature column providing it.
    module_spec: a `hub_tf1.ModuleSpec` or a handle to load one from.
    combiner: "mean", "sqrtn" or "sum".
    default_value: token used for examples without tokens; None means every
      example is assumed to have at least one.
    trainable: whether the module's variables are trained along.

  Returns:
    A column usable in `input_layer`, `DenseFeatures` and canned estimators.

  Raises:
    ValueError: the module is not a text embedding, or the combiner is
      unknown.
  """
  spec = loading.as_module_spec(module_spec)
  _check_text_embedding(spec)
  if combiner not in _COMBINERS:
    raise ValueError("combiner must be 'mean', 'sqrtn' or 'sum': %r" %
                     (combiner,))
  return _SparseTextEmbeddingColumn(
      key=key,
      combiner=combiner,
      module_spec=spec,
      default_value=default_value,
      trainable=trainable)


class _SparseTextEmbeddingColumn(
    _HubDenseColumn,
    collections.namedtuple(
        "_SparseTextEmbeddingColumn",
        ("key", "combiner", "module_spec", "default_value", "trainable"))):
  """Made by `sparse_text_embedding_column`."""

  @property
  def parse_example_spec(self) -> dict:
    return {self.key: tf.io.VarLenFeature(tf.string)}

  def _embed(self, tokens: tf.SparseTensor, trainable: bool) -> tf.Tensor:
    module = module_lib.Module(self.module_spec, trainable=bool(trainable))
    _record(self.name, module)
    if self.default_value is not None:
      tokens, _ = tf.sparse.fill_empty_rows(tokens, self.default_value)
    token_embeddings = module(tokens.values)  # One row per token.
    # Row i of `token_embeddings` belongs to token i of the sparse batch.
    positions = tf.SparseTensor(
        indices=tokens.indices,
        values=tf.range(tf.shape(tokens.indices)[0], dtype=tf.int32),
        dense_shape=tokens.dense_shape)
    return tf.nn.embedding_lookup_sparse(
        params=token_embeddings,
        sp_ids=positions,
        sp_weights=None,
        combiner=self.combiner)

  def _get_dense_tensor(self, inputs, weight_collections=None, trainable=None):
    del weight_collections
    return self._embed(inputs.get(self), self.trainable and trainable)

  def get_dense_tensor(self, transformation_cache, state_manager):
    return self._embed(transformation_cache.get(self, state_manager),
                       self.trainable)


def image_embedding_column(
    key: Union[str, Any],
    module_spec: Any,
    image_size: Optional[Sequence[int]] = None) -> "_ImageEmbeddingColumn":
  """A dense column that embeds images with an image module.

  The feature holds float32 RGB images in [0, 1], `[batch, H, W, 3]`; the
  column's value is `module({"images": images})`, `[batch, K]`.  The module
  is never trained by this column.

  Args:
    key: name of the image feature, or a feature column providing it.
    module_spec: a `hub_tf1.ModuleSpec` or a handle to load one from.
    image_size: `(height, width)` to parse examples with; None asks the module
      (`hub_tf1.get_expected_image_size`).

  Returns:
    A column usable in `input_layer`, `DenseFeatures` and canned estimators.

  Raises:
    ValueError: the module is not usable as an image embedding.
  """
  if isinstance(image_size, list):
    image_size = tuple(image_size)  # Columns must stay hashable.
  return _ImageEmbeddingColumn(
      key=key, module_spec_path=module_spec, image_size=image_size)


class _ImageEmbeddingColumn(
    _HubDenseColumn,
    collections.namedtuple("_ImageEmbeddingColumn",
                           ("key", "module_spec_path", "image_size"))):
  """Made by `image_embedding_column`."""

  def __init__(self, key, module_spec_path, image_size):
    del key, module_spec_path, image_size  # Stored by the namedtuple.
    self.module_spec = loading.as_module_spec(self.module_spec_path)
    issues = _image_embedding_issues(
        self.module_spec, check_image_size=self.image_size is None)
    if issues:
      raise ValueError("Module is not usable as image embedding: %r" % issues)
    super().__init__()

  def _height_width(self) -> Tuple[int, int]:
    if self.image_size:
      height, width = self.image_size
      return height, width
    height, width = image.get_expected_image_size(self.module_spec)
    return height, width

  @property
  def parse_example_spec(self) -> dict:
    height, width = self._height_width()
    return {self.key: tf.io.FixedLenFeature([height, width, 3], tf.float32)}

  def _get_dense_tensor(self, inputs, weight_collections=None, trainable=None):
    del weight_collections, trainable  # The module is never trained here.
    module = module_lib.Module(self.module_spec)
    _record(self.name, module)
    return module({"images": inputs.get(self)})

  def create_state(self, state_manager):
    module = module_lib.Module(self.module_spec)
    _record(self.name, module)
    state_manager.add_resource(self, MODULE_RESOURCE_NAME, module)

  def get_dense_tensor(self, transformation_cache, state_manager):
    module = state_manager.get_resource(self, MODULE_RESOURCE_NAME)
    return module({"images": transformation_cache.get(self, state_manager)})

  def get_config(self) -> dict:
    return self._config_from_fields("image_embedding_column",
                                    "module_spec_path")

  @classmethod
  def from_config(cls, config, custom_objects=None, columns_by_name=None):
    del custom_objects, columns_by_name
    config = dict(config)
    if isinstance(config.get("image_size"), list):
      config["image_size"] = tuple(config["image_size"])
    return cls(**config)
