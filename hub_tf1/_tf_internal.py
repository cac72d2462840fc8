"""Every use of TensorFlow's private (non-`tf.`) API in hub_tf1, in one file.

Rules of this file:
* Nothing else in `hub_tf1/` or `estimator_integration/` (outside its
  `compat/` stand-ins, which exist to fill in removed private modules)
  imports `tensorflow.python` or calls an underscore member of a TensorFlow
  object; tests/import_layering_test.py checks it.  A TensorFlow upgrade
  means checking this file.
* Each function says why the public API does not do the job.
* Functions are thin: no policy and no error wrapping (callers name the
  module and signature in their messages).  Everything works on TF 2.15.1
  and on TF 2.21.
* TensorFlow modules that are heavy or optional (feature columns, tracking)
  are imported inside the function that needs them.
"""

import contextlib
from typing import Callable, Dict, List, Optional
import weakref

import tensorflow as tf
from tensorflow.core.framework import attr_value_pb2
from tensorflow.core.framework import op_def_pb2
from tensorflow.core.protobuf import struct_pb2
from tensorflow.core.framework import variable_pb2
from tensorflow.core.protobuf import config_pb2
from tensorflow.python.client import pywrap_tf_session
from tensorflow.python.eager import context as _context
from tensorflow.python.eager import record
from tensorflow.python.framework import importer
from tensorflow.python.framework import op_def_registry
from tensorflow.python.ops import control_flow_ops
from tensorflow.python.ops import ref_variable
from tensorflow.python.ops import resource_variable_ops
from tensorflow.python.saved_model import nested_structure_coder


# --- Graph import -----------------------------------------------------------


def import_graph_def_unchecked_colocation(graph_def, input_map,
                                          return_elements: List[str],
                                          name: str) -> list:
  """`tf.compat.v1.import_graph_def` into the default graph, colocation free.

  The public function requires every colocation target (`_class`) to be in
  the imported GraphDef; a restore sub-graph colocates with variables that
  are already in the graph.
  """
  return importer._import_graph_def_internal(  # pylint: disable=protected-access
      graph_def, input_map=input_map, return_elements=return_elements,
      validate_colocation_constraints=False, name=name)


def op_def(op_type: str) -> Optional[op_def_pb2.OpDef]:
  """The registered OpDef of `op_type`, or None when it is not registered.

  Public `tf.raw_ops` has Python wrappers, not OpDefs (statefulness, input
  args), and no lookup that tells "unknown op" apart.
  """
  return op_def_registry.get(op_type)


def add_function_def(function_def) -> None:
  """Registers `function_def` with the eager context (process-wide).

  Ops imported into a TF2 function graph call library functions by name;
  the public API registers functions only through tf.function tracing.
  """
  _context.context().add_function_def(function_def)


# --- Operations and control flow ---------------------------------------------


def set_colocation_groups(op: tf.Operation, groups: List[bytes]) -> None:
  """Replaces the `_class` (colocation) attribute of an existing op.

  Ops have no public setter; `tf.compat.v1.colocate_with` applies only to
  ops created inside it, and the import created them already.
  """
  op._set_attr("_class", attr_value_pb2.AttrValue(  # pylint: disable=protected-access
      list=attr_value_pb2.AttrValue.ListValue(s=groups)))


def clear_attr(op: tf.Operation, name: str) -> None:
  """Removes attribute `name` of an existing op (no public setter)."""
  op._clear_attr(name)  # pylint: disable=protected-access


def set_device(op: tf.Operation, device: str) -> None:
  """Sets the device of an existing op (`tf.device` covers new ops only)."""
  op._set_device(device)  # pylint: disable=protected-access


def control_flow_context(graph: tf.Graph):
  """The TF1 control-flow context ops are being created in, or None.

  TF1 while/cond contexts (and TPU replicate contexts) have no public API.
  """
  return graph._get_control_flow_context()  # pylint: disable=protected-access


def restore_control_flow_context(kind: str, proto, import_scope: str):
  """Recreates a TF1 cond/while context from its proto on imported ops.

  `tf.compat.v1.train.import_meta_graph` does this for whole graphs only;
  a module imports sub-graphs with `import_graph_def`.

  Args:
    kind: "while_context" or "cond_context" (the collection's name).
    proto: the WhileContextDef or CondContextDef.
    import_scope: the name scope the ops were imported under.

  Returns:
    The context object (to be added to the graph collection `kind`).
  """
  if kind == "while_context":
    return control_flow_ops.WhileContext.from_proto(
        proto, import_scope=import_scope)
  return control_flow_ops.CondContext.from_proto(
      proto, import_scope=import_scope)


# --- Variables ----------------------------------------------------------------


def variable_from_def(variable_def: variable_pb2.VariableDef,
                      is_resource: bool, import_scope: str) -> tf.Variable:
  """A Python variable object for variable ops already in the graph.

  `tf.compat.v1.Variable.from_proto` exists only for the kind the proto's
  `is_resource` names in some TF versions; this picks the class directly.
  """
  if is_resource:
    return resource_variable_ops.ResourceVariable(
        variable_def=variable_def, import_scope=import_scope)
  return ref_variable.RefVariable(variable_def=variable_def,
                                  import_scope=import_scope)


def set_save_slice_info(variable: tf.Variable,
                        info: tf.Variable.SaveSliceInfo) -> None:
  """Marks `variable` as one slice of a partitioned variable for Savers.

  Only `tf.compat.v1.get_variable` with a partitioner sets it publicly; a
  strategy's component variables are made without one.
  """
  variable._set_save_slice_info(info)  # pylint: disable=protected-access


def variable_accessed(variable) -> None:
  """Reports a read of `variable` to the tapes and variable watchers.

  Ops that read a variable through its raw handle (an imported graph, a
  traced function called later) bypass the Variable API that reports reads;
  there is no public call to report one.
  """
  resource_variable_ops.variable_accessed(variable)


@contextlib.contextmanager
def stop_recording():
  """Pauses every gradient tape of this thread (variables stay watched).

  Public `tf.GradientTape.stop_recording` pauses one tape the caller owns;
  a library call made under the user's tapes has no handle on them.
  """
  with record.stop_recording():
    yield


# --- Sessions -----------------------------------------------------------------


def callable_without_copy(session: tf.compat.v1.Session,
                          fetches: List[tf.Tensor]) -> Callable[[], list]:
  """A function that runs `fetches` in `session`, without copying results.

  `Session.run` and the public `make_callable` copy every fetched tensor
  into a new numpy array; only the callable API (`Session::MakeCallable`)
  returns arrays that share the tensor's buffer (e.g. a variable's memory,
  read in place).  The function holds `session` weakly, so that a cache of
  them keeps no session (and its variables) alive; the session releases
  the callable when it is deleted.
  """
  session._extend_graph()  # pylint: disable=protected-access
  options = config_pb2.CallableOptions()
  options.fetch.extend(t.name for t in fetches)
  buffer = pywrap_tf_session.TF_NewBufferFromString(
      options.SerializeToString())
  try:
    handle = pywrap_tf_session.TF_SessionMakeCallable(
        session._session, buffer)  # pylint: disable=protected-access
  finally:
    pywrap_tf_session.TF_DeleteBuffer(buffer)
  session_ref = weakref.ref(session)

  def run() -> list:
    live = session_ref()
    if live is None or live._closed:  # pylint: disable=protected-access
      raise RuntimeError("Attempted to use a closed Session.")
    return pywrap_tf_session.TF_SessionRunCallable(
        live._session, handle, [], None)  # pylint: disable=protected-access

  return run


# --- SavedModel and tracking --------------------------------------------------


def decode_type_spec(type_spec_proto) -> tf.TypeSpec:
  """The TypeSpec of a TensorInfo's `composite_tensor.type_spec` proto.

  The SavedModel signature decoder that does this is not exported.
  """
  return nested_structure_coder.decode_proto(
      struct_pb2.StructuredValue(type_spec_value=type_spec_proto))


def auto_trackable():
  """A new object whose attributes SavedModel saving tracks as they are set.

  `tf.Module` tracks its attributes too but also walks them for variables
  on every `.variables` call and names itself; the SavedModel root of
  `convert` needs neither.
  """
  from tensorflow.python.trackable import autotrackable  # pylint: disable=g-import-not-at-top
  return autotrackable.AutoTrackable()


# --- Feature columns (estimator_integration) ----------------------------------


def dense_column_bases() -> Dict[str, type]:
  """The v1 and v2 base classes a dense feature column must derive from.

  `tf.feature_column` exports constructors, not the base classes that
  custom columns (like the original's hub columns) subclass.

  Returns:
    {"v1": feature_column._DenseColumn, "v2": feature_column_v2.DenseColumn}.
  """
  # pylint: disable=g-import-not-at-top,protected-access
  from tensorflow.python.feature_column import feature_column as fc_v1
  from tensorflow.python.feature_column import feature_column_v2 as fc_v2
  return {"v1": fc_v1._DenseColumn, "v2": fc_v2.DenseColumn}
  # pylint: enable=g-import-not-at-top,protected-access
