"""The benchmark's rows: what is measured, which metrics, which targets.

Standard library only: imported by the driver (any Python 3) and by the
measuring worker (inside a TensorFlow virtualenv).
"""

import dataclasses
from typing import List, Optional, Tuple

# Module directory names under <work>/modules/ (models.py builds them).
MLP_SMALL = "mlp_small"
MLP_DEEP = "mlp_deep"
TEXT = "text_embedding"
EMB = "embedding"
EMB_PART = "embedding_part"

IMPLS = ("hub_tf1", "original", "floor")

# Environments of a row's columns (bench/run.py maps them to interpreters):
# "legacy" rows run hub_tf1 and the floor in .venv/legacy and the original
# (tensorflow_hub 0.15) in .venv/ref; "modern" (TF2) rows run hub_tf1 and the
# floor in .venv/modern and the original (tensorflow_hub 0.16.1) in
# .venv/ref_modern.
ENVS = ("legacy", "modern")
# Where run.py writes the TF2 SavedModels that hub_tf1.tf2.convert makes of
# the TF2 rows' modules (the floor of their load and call rows), under work.
CONVERTED = "converted"


@dataclasses.dataclass(frozen=True)
class Sizes:
  """Sizes of every benchmark module (full run or --quick)."""
  mlp_small_layers: int
  mlp_small_width: int
  mlp_deep_layers: int
  mlp_deep_width: int
  text_vocab: int
  text_dim: int
  emb_rows: int
  emb_dim: int
  emb_partitions: int
  calls: int  # m(x) applications in the call rows.
  steady_runs: int  # timed session.run calls in the steady-state rows.
  batch: int


FULL = Sizes(
    mlp_small_layers=4, mlp_small_width=256,  # 4 x (256x256 + 256) fp32 = 1 MB
    mlp_deep_layers=200, mlp_deep_width=64,  # 3.3 MB, ~4,200 graph nodes
    text_vocab=200_000, text_dim=128,  # 100 MB + vocabulary asset
    emb_rows=1_000_000, emb_dim=256, emb_partitions=4,  # 1 GB
    calls=50, steady_runs=1000, batch=256)

QUICK = Sizes(
    mlp_small_layers=4, mlp_small_width=64,
    mlp_deep_layers=20, mlp_deep_width=64,
    text_vocab=5_000, text_dim=32,
    emb_rows=20_000, emb_dim=256, emb_partitions=4,  # 20 MB
    calls=15, steady_runs=50, batch=256)


@dataclasses.dataclass(frozen=True)
class Metric:
  key: str  # Key in the worker's result dict.
  label: str
  # Upper bounds of the ratios hub_tf1/original and hub_tf1/floor (targets
  # of issue 6); None = reported only.
  max_vs_original: Optional[float] = None
  max_vs_floor: Optional[float] = None


@dataclasses.dataclass(frozen=True)
class Row:
  name: str
  module: str
  kind: str  # load | load_strict | inspect | init | calls | export_* | steady
  title: str  # May use {layers}, {calls}, {emb}, {batch}, {parts}, {vocab}.
  floor: str  # What the floor column does.
  metrics: Tuple[Metric, ...]
  heavy_io: bool = False  # File-write rows: noisier, get more repetitions.
  # The floor column runs hub_tf1 itself (e.g. its default op policy).
  floor_uses_hub_tf1: bool = False
  env: str = "legacy"  # One of ENVS.
  floor_env: Optional[str] = None  # The floor's environment, if not env's.
  # The floor loads <work>/CONVERTED/<module> (hub_tf1.tf2.convert's output).
  needs_converted: bool = False


ROWS: List[Row] = [
    Row("load_mlp_deep", MLP_DEEP, "load",
        "hub.Module(path), {layers}-layer MLP",
        "parse + import_graph_def of the whole graph",
        (Metric("time_s", "time [s]", 0.25, 1.7),
         Metric("ops", "ops in graph"),
         Metric("peak_delta_mb", "peak RSS growth [MB]"))),
    Row("init_mlp_deep", MLP_DEEP, "init",
        "initializers of the {layers}-layer MLP",
        "one RestoreV2 of the same tensors",
        (Metric("time_s", "time [s]", 0.1),
         Metric("rerun_s", "2nd run [s]"),
         Metric("rss_delta_mb", "RSS delta [MB]"))),
    Row("calls_mlp_deep", MLP_DEEP, "calls",
        "{calls} x m(x), {layers}-layer MLP",
        "import of only the signature's pruned sub-graph",
        (Metric("time_s", "time [s]", 0.25),
         Metric("ops_per_call", "ops per call", None, 1.0),
         Metric("peak_delta_mb", "peak RSS growth [MB]"))),
    Row("growth_mlp_small", MLP_SMALL, "calls",
        "11th-{calls}th m(x) vs 1st, small MLP",
        "pruned sub-graph imports",
        (Metric("growth", "later/1st call", None, 1.0),
         Metric("time_s", "{calls} calls [s]"))),
    Row("export_ckpt_emb", EMB, "export_ckpt",
        "ModuleSpec.export(checkpoint_path), {emb} embedding",
        "copying the checkpoint files",
        (Metric("time_s", "time [s]", 0.5),
         Metric("peak_mb", "peak RSS [MB]", 0.25),
         Metric("peak_delta_mb", "peak RSS growth [MB]")),
        heavy_io=True),
    Row("export_ckpt_emb_part", EMB_PART, "export_ckpt",
        "ModuleSpec.export(checkpoint_path), {emb} in {parts} partitions",
        "copying the checkpoint files",
        (Metric("time_s", "time [s]"),
         Metric("peak_mb", "peak RSS [MB]"),
         Metric("peak_delta_mb", "peak RSS growth [MB]")),
        heavy_io=True),
    Row("export_module_emb", EMB, "export_module",
        "Module.export, {emb} embedding",
        "plain write of the bytes",
        (Metric("time_s", "time [s]", 0.7),
         Metric("peak_delta_mb", "peak RSS growth [MB]")),
        heavy_io=True),
    Row("init_emb", EMB, "init",
        "init of the {emb} embedding",
        "RestoreV2 into the variable",
        (Metric("time_s", "time [s]", None, 1.1),
         Metric("rerun_s", "2nd run [s]"),
         Metric("rss_delta_mb", "RSS delta [MB]", None, 1.1),
         Metric("peak_delta_mb", "peak RSS growth [MB]", None, 1.1))),
    Row("init_emb_part", EMB_PART, "init",
        "init of the {emb} embedding in {parts} partitions",
        "RestoreV2 of the slices into the partitions",
        (Metric("time_s", "time [s]", None, 1.1),
         Metric("rerun_s", "2nd run [s]"),
         Metric("rss_delta_mb", "RSS delta [MB]", None, 1.1),
         Metric("peak_delta_mb", "peak RSS growth [MB]"))),
    Row("load_mlp_deep_strict", MLP_DEEP, "load_strict",
        "hub.Module(path, op_policy=\"strict\"), {layers}-layer MLP",
        "hub_tf1's hub.Module(path) with the default policy (no scan); "
        "original: hub.Module(path), it has no policy",
        (Metric("time_s", "time [s]", None, 1.1),),
        floor_uses_hub_tf1=True),
    Row("scan_mlp_deep", MLP_DEEP, "inspect",
        "hub-tf1 scan and inspect of the {layers}-layer MLP",
        "n/a (tensorflow_hub and TensorFlow have no such command)",
        (Metric("scan_s", "scan [s] (target < 1 s)"),
         Metric("inspect_s", "inspect --json [s] (target < 1 s)"))),
    Row("load_text", TEXT, "load",
        "hub.Module(path), text embedding {vocab} words",
        "parse + import_graph_def of the whole graph",
        (Metric("time_s", "time [s]"),
         Metric("ops", "ops in graph"),
         Metric("peak_delta_mb", "peak RSS growth [MB]"))),
    Row("steady_mlp_small", MLP_SMALL, "steady",
        "steady-state session.run, batch {batch}, small MLP",
        "hand-built graph",
        (Metric("run_ms_p10", "per run, 10th pct [ms]", None, 1.02),
         Metric("run_ms", "per run, median [ms]"))),
    Row("steady_text", TEXT, "steady",
        "steady-state session.run, batch {batch}, text embedding",
        "hand-built graph",
        (Metric("run_ms_p10", "per run, 10th pct [ms]", None, 1.02),
         Metric("run_ms", "per run, median [ms]"))),
]

# TF2 rows (issue 12): hub_tf1.load / KerasLayer on TF 2.21 (.venv/modern)
# against tensorflow_hub 0.16.1's (.venv/ref_modern).
ROWS += [
    Row("tf2_load_mlp_deep", MLP_DEEP, "tf2_load",
        "hub.load(path), {layers}-layer MLP (TF 2.21)",
        "tf.saved_model.load of the module converted by hub_tf1.tf2.convert",
        (Metric("time_s", "time [s]", 0.5, 1.2),
         Metric("first_call_s", "then 1st call [s]"),
         Metric("peak_delta_mb", "peak RSS growth [MB]")),
        env="modern", needs_converted=True),
    Row("tf2_load_emb", EMB, "tf2_load",
        "hub.load(path), {emb} embedding (TF 2.21)",
        "tf.saved_model.load of the module converted by hub_tf1.tf2.convert",
        (Metric("time_s", "time [s]", 0.5, 1.2),
         Metric("first_call_s", "then 1st call [s]"),
         Metric("peak_delta_mb", "peak RSS growth [MB]")),
        env="modern", needs_converted=True),
    Row("tf2_call_mlp_deep", MLP_DEEP, "tf2_call",
        "signatures[\"default\"](x), batch {batch}, {layers}-layer MLP "
        "(TF 2.21)",
        "the same signature of the converted module",
        (Metric("call_ms", "per call, median [ms]", None, 1.05),
         Metric("call_ms_p10", "per call, 10th pct [ms]")),
        env="modern", needs_converted=True),
    Row("tf2_finetune_mlp_small", MLP_SMALL, "tf2_finetune",
        "fine-tuning step, KerasLayer(trainable=True) in Keras 3, batch "
        "{batch}, small MLP",
        "the same SGD step in TF1 graph mode: hub_tf1.Module(trainable=True) "
        "+ GradientDescentOptimizer in .venv/legacy (TF 2.15); original: "
        "n/a, 0.16.1 refuses trainable=True for TF1 Hub modules",
        (Metric("step_ms", "per step, median [ms]", None, 1.1),
         Metric("step_ms_p10", "per step, 10th pct [ms]"),
         Metric("first_step_s", "1st step (tracing) [s]")),
        env="modern", floor_env="legacy", floor_uses_hub_tf1=True),
]

ROWS_BY_NAME = {r.name: r for r in ROWS}


def impl_env(row: Row, impl: str) -> str:
  """The environment ("legacy" or "modern") `impl` runs `row` in."""
  if impl == "floor" and row.floor_env:
    return row.floor_env
  return row.env


def human_size(num_bytes: float) -> str:
  for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
    if num_bytes >= scale:
      return "%.3g %s" % (num_bytes / scale, unit)
  return "%d B" % num_bytes


def title(row: Row, sizes: dict) -> str:
  return row.title.format(
      layers=sizes["mlp_deep_layers"], calls=sizes["calls"],
      emb=human_size(sizes["emb_rows"] * sizes["emb_dim"] * 4),
      batch=sizes["batch"], parts=sizes["emb_partitions"],
      vocab="%dk" % (sizes["text_vocab"] // 1000))


def metric_label(metric: Metric, sizes: dict) -> str:
  return metric.label.format(calls=sizes["calls"])
