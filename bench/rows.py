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
BERT = "bert"  # BERT-base-sized text encoder (issue 16).
ELMO = "elmo"  # ELMo-like character CNN + biLSTM (issue 16).

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
  # The realistic modules (issue 16).  Fields starting real_ only change the
  # runs, not the files.
  bert_layers: int
  bert_hidden: int
  bert_heads: int
  bert_ffn: int
  bert_vocab: int
  bert_max_positions: int
  elmo_char_dim: int
  elmo_filter_scale: int  # Divides models.ELMO_FILTERS' filter counts.
  elmo_highways: int
  elmo_lstm_units: int
  elmo_proj: int
  real_batch: int
  real_seq: int
  real_train_seq: int  # Tokens per example in the SGD steps.
  real_calls: int  # m(x) with new inputs after the 1st.
  real_train_steps: int  # Timed SGD steps after the 1st.


FULL = Sizes(
    mlp_small_layers=4, mlp_small_width=256,  # 4 x (256x256 + 256) fp32 = 1 MB
    mlp_deep_layers=200, mlp_deep_width=64,  # 3.3 MB, ~4,200 graph nodes
    text_vocab=200_000, text_dim=128,  # 100 MB + vocabulary asset
    emb_rows=1_000_000, emb_dim=256, emb_partitions=4,  # 1 GB
    calls=50, steady_runs=1000, batch=256,
    # 12 x 768, 30k vocabulary: 110M parameters (440 MB).
    bert_layers=12, bert_hidden=768, bert_heads=12, bert_ffn=3072,
    bert_vocab=30522, bert_max_positions=512,
    # 2048 CNN filters, 2 highways, 2 x 2 LSTMs 4096 -> 512: 94M parameters.
    elmo_char_dim=16, elmo_filter_scale=1, elmo_highways=2,
    elmo_lstm_units=4096, elmo_proj=512,
    # Training at 16 tokens: the ELMo step's gradient sums a 64 MB weight
    # gradient per LSTM per time step (13 s a step at 32 tokens, see
    # bench/README), and the full run must stay under an hour on 2 cores.
    real_batch=4, real_seq=32, real_train_seq=16, real_calls=10,
    real_train_steps=3)

QUICK = Sizes(
    mlp_small_layers=4, mlp_small_width=64,
    mlp_deep_layers=20, mlp_deep_width=64,
    text_vocab=5_000, text_dim=32,
    emb_rows=20_000, emb_dim=256, emb_partitions=4,  # 20 MB
    calls=15, steady_runs=50, batch=256,
    bert_layers=2, bert_hidden=64, bert_heads=2, bert_ffn=256,
    bert_vocab=1000, bert_max_positions=128,
    elmo_char_dim=8, elmo_filter_scale=16, elmo_highways=1,
    elmo_lstm_units=64, elmo_proj=32,
    real_batch=2, real_seq=8, real_train_seq=8, real_calls=10,
    real_train_steps=2)

# The size fields (by prefix) that decide each module's files: a module is
# regenerated only when one of its own fields changed.
MODULE_SIZE_PREFIXES = {
    MLP_SMALL: ("mlp_small_",), MLP_DEEP: ("mlp_deep_",), TEXT: ("text_",),
    EMB: ("emb_",), EMB_PART: ("emb_",), BERT: ("bert_",), ELMO: ("elmo_",),
}


def module_sizes(module: str, sizes: dict) -> dict:
  """The fields of `sizes` (a dict) that decide `module`'s files."""
  return {k: v for k, v in sizes.items()
          if k.startswith(MODULE_SIZE_PREFIXES[module])}


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
  # Repetitions of a full run (None: 5, heavy_io rows 7); --reps overrides.
  reps: Optional[int] = None


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
        (Metric("time_s", "time [s]", 0.7, 1.3),
         Metric("user_s", "user CPU [s]"),
         Metric("sys_s", "system CPU [s]"),
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
        "n/a, 0.16.1 refuses trainable=True for TF1 Hub modules; 'plain "
        "TF2 step': the same MLP as tf.Variables, tf.function + "
        "GradientTape + Keras SGD, interleaved in the same process (TF 2.21 "
        "/ Keras 3 under hub_tf1, TF 2.15 / Keras 2 under floor)",
        (Metric("step_ms", "per step, median [ms]", None, 1.1),
         Metric("step_ms_p10", "per step, 10th pct [ms]"),
         Metric("first_step_s", "1st step (tracing) [s]"),
         Metric("plain_step_ms", "plain TF2 step, same process, median [ms]"),
         Metric("step_vs_plain", "per step / plain TF2 step [x]")),
        env="modern", floor_env="legacy", floor_uses_hub_tf1=True),
]

# The realistic modules (issue 16).  Two rows per module, each one process
# per repetition: using the module (construction, applications, init,
# export) and fine-tuning it (trainable=True, tags={"train"}).
for _module, _what in ((BERT, "BERT-base-sized encoder ({bert})"),
                       (ELMO, "ELMo-like char-CNN + biLSTM ({elmo})")):
  ROWS += [
      Row("%s_use" % _module, _module, "real_use",
          _what + ": hub.Module(path), m(x), init, export",
          "import_graph_def of the whole module graph; the signature's "
          "pruned sub-graph imported with an input_map per call; one "
          "RestoreV2 + AssignVariableOp into the imported variables; export "
          "= SaveV2 of those variables + writing the serialized graph",
          (Metric("construct_s", "hub.Module(path) [s]", 0.3),
           Metric("first_call_s", "1st m(x) [s]", 0.3),
           Metric("calls_s", "{real_calls} x m(x), new inputs [s]", 0.3),
           Metric("init_s", "init [s]", None, 1.1),
           Metric("run_s", "1st session.run of m(x) [s]"),
           Metric("export_s", "Module.export [s]", 0.7),
           Metric("export_user_s", "Module.export user CPU [s]"),
           Metric("export_sys_s", "Module.export system CPU [s]"),
           Metric("export2_s", "2nd Module.export [s]"),
           Metric("export2_user_s", "2nd Module.export user CPU [s]"),
           Metric("export2_sys_s", "2nd Module.export system CPU [s]"),
           Metric("ops", "ops in graph"),
           Metric("peak_mb", "peak RSS [MB]")),
          # 5: a process takes ~7-9 s, and the export ratios sit near their
          # target, where with 3 one slow process moved the median (the
          # 2026-12-07 22:31 run: ELMo's export 0.177-0.214 s).
          reps=5),
      Row("%s_train" % _module, _module, "real_train",
          _what + ": hub.Module(path, trainable=True, tags={{\"train\"}}) "
          "+ SGD step, batch {real_batch} x {real_train_seq}",
          "the train graph built directly (bench/models.py), variables "
          "restored by a Saver, the same GradientDescentOptimizer step",
          (Metric("construct_s", "construction [s]", 0.3),
           Metric("init_s", "init [s]", None, 1.1),
           Metric("first_step_s", "1st SGD step [s]", None, 1.1),
           Metric("step_s", "SGD step, median of {real_train_steps} [s]",
                  None, 1.1),
           Metric("peak_mb", "peak RSS [MB]")),
          # 3, not 5: the five columns of these two rows take ~4 min per
          # repetition, and a full run must stay under an hour on 2 cores.
          reps=3),
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
      vocab="%dk" % (sizes["text_vocab"] // 1000),
      bert="%d x %d" % (sizes["bert_layers"], sizes["bert_hidden"]),
      elmo="LSTM %d -> %d" % (sizes["elmo_lstm_units"], sizes["elmo_proj"]),
      real_batch=sizes["real_batch"],
      # Results written before the field existed trained at real_seq.
      real_train_seq=sizes.get("real_train_seq", sizes["real_seq"]))


def metric_label(metric: Metric, sizes: dict) -> str:
  return metric.label.format(calls=sizes["calls"],
                             real_calls=sizes["real_calls"],
                             real_train_steps=sizes["real_train_steps"])
