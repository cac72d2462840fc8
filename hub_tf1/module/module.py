"""`hub.Module`: a module instantiated in the current TF1 graph.

Rules of this file:
- The state (variables, tables) is created outside any control dependencies
  of the caller.
- Inside a function body (Defun, tf.function, wrap_function, Dataset.map)
  whose outermost enclosing context is a graph, the state is lifted to that
  graph (as `tf.init_scope` does), under the same absolute scope, so that
  graph's `global_variables_initializer()` initializes it once however often
  the function is applied; apply.py captures it into the function.  When the
  outermost context is eager (wrap_function in TF2), the state stays in the
  function's graph, as in the original.
- Several replicas in one graph (MirroredStrategy, hand-built towers):
  replicas.py decides when a Module shares an earlier Module's state and
  when a strategy makes the variables; each call applies the module to the
  calling replica's variable components.
"""

import contextlib
from typing import Callable, Dict, List, Optional, Tuple

from absl import logging
import tensorflow as tf

from hub_tf1 import errors
from hub_tf1.format import meta_graph as meta_graph_lib
from hub_tf1.format import module_files
from hub_tf1.inspection import scan as scan_lib
from hub_tf1.module import apply as apply_lib
from hub_tf1.module import graph_analysis
from hub_tf1.module import replicas as replicas_lib
from hub_tf1.module import state as state_lib
from hub_tf1.module import variable_writer
from hub_tf1.spec import loading


def _unique_state_scope(name: str) -> str:
  """Opens a fresh variable scope for `name`; returns its absolute name."""
  with tf.compat.v1.variable_scope(None, default_name=name,
                                   auxiliary_name_scope=False) as scope:
    absolute = scope.name
  graph = tf.compat.v1.get_default_graph()
  with graph.name_scope(None):  # unique_name() is relative to the name scope.
    if graph.unique_name(absolute, mark_as_used=False) != absolute:
      raise RuntimeError(
          "variable_scope %s/ was unused but the corresponding name_scope was "
          "already taken. Give the Module a unique name (name=...) or create "
          "it before ops that use this name scope." % absolute)
    graph.unique_name(absolute, mark_as_used=True)
  return absolute


# Messages of the graph guard (Module._check_graph), as the original words them.
_APPLY_GRAPH_ERROR = ("Module must be applied in the graph it was "
                      "instantiated for.")
_EXPORT_GRAPH_ERROR = ("default graph differs from the graph where the module "
                       "was instantiated. Call Module.export with the "
                       "module's graph as the default graph.")
_EXPORT_SESSION_ERROR = ("session graph differs from the graph where the "
                         "module was instantiated. Module.export needs a "
                         "session of the module's graph.")


class StateScopeTakenError(errors.Error, AssertionError, RuntimeError):
  """A Module made in a function body has its scope taken where state goes.

  The original fails there on a bare `assert`, hence AssertionError; it is
  also a RuntimeError like the other taken-scope error of this file.
  """
  # AutoGraph (tf.function) re-raises an error with its own type only when
  # it can see that the type is built from a message alone.
  __init__ = Exception.__init__


@contextlib.contextmanager
def _in_lifted_graph(scope: str, kind: str):
  """Enters the outermost enclosing graph and reserves `scope` there.

  Raises:
    StateScopeTakenError: `scope` is already taken in that graph.
  """
  with tf.init_scope():
    outer = tf.compat.v1.get_default_graph()
    with outer.name_scope(None):
      if outer.unique_name(scope, mark_as_used=False) != scope:
        raise StateScopeTakenError(
            "Cannot create the state of Module '%s' inside %s: the name "
            "scope %s/ is already taken in the enclosing graph %s, where the "
            "state is created. Give the Module a unique name (name=...)."
            % (scope, kind, scope, outer))
      outer.unique_name(scope, mark_as_used=True)
    yield


def _state_context(graph: tf.Graph, scope: str):
  """Where the state of a Module made in `graph` under `scope` is created."""
  if graph.building_function:
    kind = apply_lib.function_body_kind(graph)
    with tf.init_scope():
      outer_is_eager = tf.executing_eagerly()
    if not outer_is_eager:
      logging.info("Creating the state of Module '%s' made inside %s in the "
                   "enclosing graph.", scope, kind)
      return _in_lifted_graph(scope, kind)
    logging.warning("Creating the state of Module '%s' inside %s, with no "
                    "enclosing graph: it is only initialized if the function "
                    "is pruned to its initializers (as wrap_function allows).",
                    scope, kind)
  return tf.control_dependencies(None)


class Module(object):
  """A TF1 Hub module instantiated in the current graph.

  Creating a Module imports the module's state (variables, tables) under a
  fresh variable scope; their initializers load the module's weights.
  Calling it applies a signature to inputs; every call shares that state.

      m = hub.Module("/path/to/module")
      embeddings = m(["a sentence"])            # signature "default"
      outputs = m(inputs_dict, signature="s", as_dict=True)
  """

  def __init__(self, spec, trainable: bool = False, name: str = "module",
               tags=None, op_policy=None):
    """Instantiates `spec` (a ModuleSpec or handle) in the default graph.

    Args:
      spec: a ModuleSpec, or a handle string for `hub.load_module_spec`.
      trainable: put the variables in TRAINABLE_VARIABLES, the module's
        regularization losses in REGULARIZATION_LOSSES and, per call, its
        update ops in UPDATE_OPS.
      name: variable scope name (made unique like tf.compat.v1 scopes).
      tags: the graph variant to use; default the empty tag set.
      op_policy: "strict" refuses a module with flagged ops before anything
        runs (default: $HUB_TF1_OP_POLICY, else no check).

    Raises:
      ValueError: `spec` is neither a ModuleSpec nor a string, or there is
        no graph variant with these tags; also (as its subclasses
        VariableMismatchError, VariableNotInCheckpointError) a checkpoint
        that does not hold the module's variables with their shapes.
      UnsafeModuleError: `op_policy` (or $HUB_TF1_OP_POLICY) is "strict" and
        the module's graphs hold flagged ops (a ValueError).
      RuntimeError: eager execution, or the name scope is already taken
        (in a function body: also in the enclosing graph the state goes to:
        StateScopeTakenError).
      tf.errors.OpError: the module's files are missing, unreadable or
        corrupt (NotFoundError, DataLossError, ... as TensorFlow reports
        them, naming the file).
      Errors of `hub.resolve` for a handle (download, cache and archive
        errors, all hub_tf1.Error).
    """
    if tf.executing_eagerly():
      raise RuntimeError("hub_tf1.Module needs graph mode (tf.compat.v1): "
                         "build it inside `with tf.Graph().as_default():` or "
                         "after tf.compat.v1.disable_eager_execution(). "
                         "(Exporting/importing meta graphs is not supported "
                         "when eager execution is enabled. No graph exists "
                         "when eager execution is enabled.)")
    self._spec = loading.as_module_spec(spec)
    scan_lib.check_policy(self._spec, spec if isinstance(spec, str) else
                          repr(self._spec),
                          op_policy)
    self._tags = set(tags or [])
    if not self._spec.has_tags(self._tags):
      raise ValueError(
          "No such graph variant: tags=%s. The module has graph variants with "
          "tags %s." % (meta_graph_lib.describe_tags(tags) if tags is not None
                        else "None", [sorted(t) for t in self._spec.get_tags()]))
    self._trainable = trainable
    self._graph = tf.compat.v1.get_default_graph()
    # A later replica or tower of a replicated model shares the first one's.
    shared = replicas_lib.shared_state(self._graph, name, self._tags,
                                       trainable)
    self._reuses_state = shared is not None
    if shared is not None:
      self._state = shared
      self._name = shared.scope.split("/")[-1]
      return
    scope = _unique_state_scope(name)
    self._name = scope.split("/")[-1]
    with _state_context(self._graph, scope):
      if replicas_lib.distributing(self._graph):
        self._state = replicas_lib.create_distributed_state(
            self._spec, self._tags, scope, trainable)
      else:
        self._state = state_lib.create_state(self._spec, self._tags, scope,
                                             trainable)
    replicas_lib.register(self._graph, name, self._state, self._tags,
                          trainable)
    if self._state.variable_map and not self._graph.building_function:
      # Now, as the original builds its Saver.  Only strategy-made
      # variables need a Saver, whose restore ops are not wanted here: that
      # writer is built on the first export (a finalized graph cannot
      # export then).
      self._variable_writer(unless_saver=True)

  def __call__(self, inputs=None, _sentinel=None, signature=None,
               as_dict=None):
    """Applies a signature; returns its "default" output or all outputs.

    Args:
      inputs: a value for a single-input signature, or a dict keyed by input
        name.  Python values are converted to the expected dtype.
      _sentinel: forces `signature`/`as_dict` to be passed by keyword.
      signature: signature name, "default" when empty.
      as_dict: return the dict of all outputs instead of "default".

    Returns:
      The "default" output (a Tensor, SparseTensor or RaggedTensor), or with
      `as_dict` a dict of all outputs by name.

    Raises:
      RuntimeError: called in another graph than the one it was made in.
      TypeError: inputs missing, extra, or not convertible to the
        signature's dtypes; no "default" output without `as_dict`.
      ValueError: `_sentinel` given, an unknown signature, or a signature
        with input or output types this version does not support.
    """
    if _sentinel is not None:
      raise ValueError("Pass signature and as_dict as keyword arguments.")
    self._check_graph(_APPLY_GRAPH_ERROR)
    return apply_lib.apply_signature(
        replicas_lib.replica_view(self._state), self._spec, self._tags,
        self._trainable, self._name, inputs, signature, as_dict)

  def _check_graph(self, graph_error: str, session=None,
                   session_error: str = "") -> None:
    """The one guard of calls that must run in the module's graph.

    Raises:
      RuntimeError: `graph_error` when the default graph is not the module's;
        `session_error` when `session` is given and runs another graph.
    """
    if tf.compat.v1.get_default_graph() is not self._graph:
      raise RuntimeError(graph_error)
    if session is not None and session.graph is not self._graph:
      raise RuntimeError(session_error)

  # -- introspection ---------------------------------------------------------

  @property
  def reuses_state(self) -> bool:
    """Whether this Module shares the state of an earlier one (a replica).

    True for the Module a later replica or tower of a replicated model made
    (replicas.py): it applies the first replica's variables and tables.
    """
    return self._reuses_state

  def shares_state_with(self, other: "Module") -> bool:
    """Whether `other` uses the same state (variables, tables) as this one.

    Args:
      other: another Module.

    Returns:
      True for replicas of one module state.
    """
    return getattr(other, "_state", None) is self._state

  def get_signature_names(self) -> List[str]:
    """The signature names of this Module's graph variant.

    Returns:
      A list of strings (see ModuleSpec.get_signature_names).
    """
    return self._spec.get_signature_names(tags=self._tags)

  def get_input_info_dict(self, signature=None):
    """The inputs of `signature` of this Module's graph variant.

    Args:
      signature: a signature name; None or "" means "default".

    Returns:
      A dict of input name -> ParsedTensorInfo (dtype, shape, composite).

    Raises:
      ValueError: the variant has no such signature.
    """
    return self._spec.get_input_info_dict(signature=signature, tags=self._tags)

  def get_output_info_dict(self, signature=None):
    """The outputs of `signature` of this Module's graph variant.

    Args:
      signature: a signature name; None or "" means "default".

    Returns:
      A dict of output name -> ParsedTensorInfo.

    Raises:
      ValueError: the variant has no such signature.
    """
    return self._spec.get_output_info_dict(signature=signature,
                                           tags=self._tags)

  def get_attached_message(self, key, message_type, required=False):
    """A message attached to this Module's graph variant (`attach_message`).

    Args:
      key: the string the message was attached under.
      message_type: the protocol message class to parse it into.
      required: raise instead of returning None when it is absent.

    Returns:
      A `message_type` instance, or None when absent and not `required`.

    Raises:
      KeyError: absent and `required`.
    """
    return self._spec.get_attached_message(key, message_type, tags=self._tags,
                                           required=required)

  @property
  def variable_map(self) -> Dict[str, object]:
    """Module-relative name -> Variable (a list of parts if partitioned)."""
    return dict(self._state.variable_map)

  @property
  def variables(self) -> List[tf.Variable]:
    """All variables, sorted by key, partitions in offset order."""
    return list(self._state.variables)

  @property
  def trainable(self) -> bool:
    """Whether the Module was created with trainable=True."""
    return self._trainable

  # -- export ----------------------------------------------------------------

  def export(self, path: str, session: tf.compat.v1.Session) -> None:
    """Writes the module with this instance's current weights to `path`.

    The graph variants are the spec's; the variable values come from
    `session`.  The directory appears at `path` only when complete.

    Args:
      path: the module directory to create (any tf.io.gfile path).
      session: a session of this Module's graph holding the values.

    Raises:
      RuntimeError: `session` or the default graph is not the module's.
      tf.errors.AlreadyExistsError: `path` exists.
    """
    self._check_graph(_EXPORT_GRAPH_ERROR, session, _EXPORT_SESSION_ERROR)
    save = None
    if self._state.variable_map:
      write = self._variable_writer()
      save = lambda prefix: write(session, prefix)
    module_files.write_module(path, self._spec.meta_graphs(), save)

  def _variable_writer(
      self, unless_saver: bool = False) -> Optional[variable_writer.Writer]:
    """The writer of this Module's variables (variable_writer.py), built once.

    Args:
      unless_saver: build nothing (and return None) when it would be a Saver.

    Returns:
      A function of (session, checkpoint prefix) that writes the values.
    """
    if hasattr(self, "_cached_writer"):
      return self._cached_writer
    variables_by_key = sorted(
        (key, value if isinstance(value, list) else [value])
        for key, value in self._state.variable_map.items())
    # The parts the state made each key's variables from, in order.
    parts = graph_analysis.analysis_for(self._spec, self._tags).variable_parts
    entries = [variable_writer.Entry(key, part.slice_spec(), variable)
               for key, variables in variables_by_key
               for part, variable in zip(parts[key], variables)]
    devices = len({e.variable.device for e in entries})
    strategy_made = bool(self._state.replica_components)
    if unless_saver and variable_writer.uses_saver(strategy_made):
      return None
    graph = tf.compat.v1.get_default_graph()
    with graph.control_dependencies(None), graph.device(None), \
        graph.colocate_with(None, ignore_existing=True), \
        tf.name_scope(self._state.scope + "/"):
      self._cached_writer = variable_writer.build_writer(
          entries, devices, strategy_made, self._state.variable_map)
    return self._cached_writer
