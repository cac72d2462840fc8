"""Which hub modules the feature columns of a graph built, for exporting.

Canned Estimators build their hub modules inside the feature columns, where
no `model_fn` can call `register_module_for_export`.  Each hub feature column
records here, in the graph it builds in, the module it made and its own
name; `LatestModuleExporter` exports those after the registered ones, named
after the column.

Rules of this file: graph collections only (under a tuple key, so that no
exported MetaGraphDef carries them); nothing here imports the Estimator.
"""

from typing import Any, List, Optional, Tuple

import tensorflow as tf

COLUMN_MODULES_COLLECTION = ("__hub_tf1_feature_column_modules",)


def record(column_name: str, module: Any) -> None:
  """Notes that the column `column_name` built `module` in the default graph.

  Args:
    column_name: the feature column's `name`.
    module: the `hub_tf1.Module` it made.
  """
  tf.compat.v1.add_to_collection(COLUMN_MODULES_COLLECTION,
                                 (column_name, module))


def recorded(graph: Optional[tf.Graph] = None) -> List[Tuple[str, Any]]:
  """The `(export name, module)` pairs of `graph`'s hub feature columns.

  A column that made several modules in one graph (e.g. used by two parts of
  a model) gets "<name>", "<name>_1", ... in the order they were made.

  Args:
    graph: default: the current default graph.

  Returns:
    One pair per module, without repeats.
  """
  graph = graph or tf.compat.v1.get_default_graph()
  seen, counts, pairs = set(), {}, []
  for name, module in graph.get_collection(COLUMN_MODULES_COLLECTION):
    if id(module) in seen:
      continue
    seen.add(id(module))
    count = counts.get(name, 0)
    counts[name] = count + 1
    pairs.append((name if not count else "%s_%d" % (name, count), module))
  return pairs
