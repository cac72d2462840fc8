"""Benchmark of hub_tf1 against tensorflow_hub 0.15 and against plain TF.

Usage (from the repository root; see bench/README.md):

  bash bench/run.sh [--quick] [--only ROW[,ROW...]] [--reps N] ...

Generates the modules once (with the original tensorflow_hub in .venv/ref, so
both implementations load the same files), then runs every measurement of
every row in a fresh subprocess: implementation "hub_tf1" (.venv/legacy with
the repository on PYTHONPATH), "original" (.venv/ref) and "floor" (the same
work done directly with TensorFlow, .venv/legacy), and the same hub_tf1 and
floor measurements on TF 2.21 (columns hub_tf1@2.21 and floor@2.21,
.venv/modern).  After the table it draws the ratios with bench/plot.py in
.venv/plot (RESULTS.png beside RESULTS.md).  The TF2 rows (tf2_*) run
hub_tf1 and the floor in .venv/modern and the original (tensorflow_hub 0.16.1)
in .venv/ref_modern; their floor loads the modules as hub_tf1.tf2.convert
writes them, converted once into <work>/converted/.  They get a table of
their own after the TF1 API rows' (--tf2 runs them alone).  The implementations are
interleaved within each repetition, in a rotating order, because the machine
is noisy; the table shows medians over the repetitions.

Standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
sys.path.insert(0, BENCH_DIR)

import host_memory  # pylint: disable=g-import-not-at-top,wrong-import-position
import rows  # pylint: disable=g-import-not-at-top,wrong-import-position

PYTHONS = {
    "hub_tf1": os.path.join(ROOT, ".venv", "legacy", "bin", "python"),
    "original": os.path.join(ROOT, ".venv", "ref", "bin", "python"),
    "floor": os.path.join(ROOT, ".venv", "legacy", "bin", "python"),
}
# The TF2 rows' interpreters (rows.Row.env == "modern").
MODERN_PYTHONS = {
    "hub_tf1": os.path.join(ROOT, ".venv", "modern", "bin", "python"),
    "original": os.path.join(ROOT, ".venv", "ref_modern", "bin", "python"),
    "floor": os.path.join(ROOT, ".venv", "modern", "bin", "python"),
}
WORKER_TIMEOUT_S = 1800
# The legacy (TF 1 API) rows also run hub_tf1 and the floor on TF 2.21
# (.venv/modern, tf.compat.v1 graph mode): these two extra columns.  No
# original exists there (tensorflow_hub 0.16.1 is the TF2 rows' original).
MODERN_SUFFIX = "@2.21"
MODERN_COLUMNS = ("hub_tf1" + MODERN_SUFFIX, "floor" + MODERN_SUFFIX)
COLUMNS = rows.IMPLS + MODERN_COLUMNS
PLOT_PYTHON = os.path.join(ROOT, ".venv", "plot", "bin", "python")


def _env(impl, row_name=None):
  env = dict(os.environ)
  env["TF_CPP_MIN_LOG_LEVEL"] = "2"
  env["PYTHONDONTWRITEBYTECODE"] = "1"
  path = [BENCH_DIR]
  row = rows.ROWS_BY_NAME.get(row_name)
  if impl == "hub_tf1" or (row is not None and row.floor_uses_hub_tf1):
    path.insert(0, ROOT)
  env["PYTHONPATH"] = os.pathsep.join(path)
  return env


def python_for(impl, row=None):
  """The interpreter that runs `impl` for `row` (None: the legacy rows')."""
  env = rows.impl_env(row, impl) if row is not None else "legacy"
  return (MODERN_PYTHONS if env == "modern" else PYTHONS)[impl]


def column_impl(column):
  """The measure.py implementation of a column ("hub_tf1@2.21" -> hub_tf1)."""
  return column[:-len(MODERN_SUFFIX)] if column.endswith(MODERN_SUFFIX) \
      else column


def row_columns(row):
  """The columns `row` runs: the legacy rows also the TF 2.21 ones."""
  return COLUMNS if row.env == "legacy" else rows.IMPLS


def python_for_column(column, row):
  if column.endswith(MODERN_SUFFIX):
    return MODERN_PYTHONS[column_impl(column)]
  return python_for(column, row)


def run_worker(impl, extra_args, tmp=None, python=None):
  """Runs bench/measure.py.

  Returns:
    ("ok", metrics dict), ("na", reason) or ("error", message).
  """
  python = python or PYTHONS[impl]
  if not os.path.exists(python):
    return "na", "n/a (no %s)" % os.path.relpath(python, ROOT)
  cmd = [python, os.path.join(BENCH_DIR, "measure.py"), "--impl", impl]
  cmd += extra_args
  if tmp:
    os.makedirs(tmp, exist_ok=True)
    cmd += ["--tmp", tmp]
  try:
    row_name = (extra_args[extra_args.index("--row") + 1]
                if "--row" in extra_args else None)
    proc = subprocess.run(cmd, env=_env(impl, row_name), capture_output=True,
                          text=True,
                          timeout=WORKER_TIMEOUT_S, check=False)
  except subprocess.TimeoutExpired:
    return "error", "timeout after %d s" % WORKER_TIMEOUT_S
  finally:
    if tmp:
      shutil.rmtree(tmp, ignore_errors=True)
  for line in proc.stdout.splitlines():
    if line.startswith("BENCH_RESULT "):
      return "ok", json.loads(line[len("BENCH_RESULT "):])
    if line.startswith("BENCH_NA "):
      return "na", line[len("BENCH_NA "):]
  tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
  return "error", "exit %d: %s" % (proc.returncode, tail[:300])


# ----------------------------------------------------------------------------
# Set-up.


def bootstrap(modern=False):
  """Creates/reuses .venv/{legacy,ref,modern,plot} (tools/bootstrap.sh).

  With `modern` (TF2 rows selected) also .venv/ref_modern.
  """
  script = os.path.join(ROOT, "tools", "bootstrap.sh")
  if not os.path.exists(script):
    return
  # .venv/modern: the legacy rows' TF 2.21 columns; .venv/plot: the chart.
  targets = ["legacy", "ref", "modern", "plot"] + (["ref_modern"] if modern
                                                   else [])
  proc = subprocess.run(["bash", script] + targets, cwd=ROOT,
                        check=False)
  if proc.returncode:
    print("bench: tools/bootstrap.sh failed (exit %d); the original column "
          "is n/a unless .venv/ref exists" % proc.returncode)


def ensure_modules(work, sizes, quick, regenerate):
  """Generates the modules whose files do not match `sizes` (stamp: generated.json).

  A module is stale when its directory is missing or one of its own size
  fields (rows.module_sizes) differs from the stamp's; only the stale ones
  are (re)written, so adding a module does not regenerate the others.
  """
  stamp = os.path.join(work, "generated.json")
  stale = list(rows.MODULE_SIZE_PREFIXES)
  if not regenerate and os.path.exists(stamp):
    with open(stamp) as f:
      info = json.load(f)
    old = info.get("sizes", {})
    stale = [m for m in rows.MODULE_SIZE_PREFIXES
             if rows.module_sizes(m, old) != rows.module_sizes(m, sizes)
             or not os.path.isdir(os.path.join(work, "modules", m))]
    if not stale:
      return info
  if os.path.exists(PYTHONS["original"]):
    impl = "original"
  else:
    impl = "hub_tf1"
    print("bench: no .venv/ref; generating the modules with hub_tf1")
  print("bench: generating %s in %s with %s (once)" %
        (", ".join(stale), os.path.relpath(work, ROOT), impl), flush=True)
  everything = stale == list(rows.MODULE_SIZE_PREFIXES)
  if everything:
    for sub in ("modules", "train", rows.CONVERTED):
      shutil.rmtree(os.path.join(work, sub), ignore_errors=True)
  else:
    for m in stale:
      shutil.rmtree(os.path.join(work, "modules", m), ignore_errors=True)
      shutil.rmtree(os.path.join(work, rows.CONVERTED, m), ignore_errors=True)
  cmd = [PYTHONS[impl], os.path.join(BENCH_DIR, "generate.py"),
         "--work", work, "--impl", impl] + (["--quick"] if quick else [])
  if not everything:
    cmd += ["--modules", ",".join(stale)]
  t0 = time.time()
  subprocess.run(cmd, env=_env(impl), check=True)
  print("bench: generation took %.0f s" % (time.time() - t0))
  with open(stamp) as f:
    return json.load(f)


def ensure_converted(work, selected, quick, generated):
  """Converts the TF2 rows' modules with hub_tf1.tf2.convert, once.

  <work>/converted/<module>/ is the SavedModel; <module>.json beside it
  records the generated.json it was converted from (a regeneration or a
  missing stamp converts again).
  """
  out_dir = os.path.join(work, rows.CONVERTED)
  for module in sorted({r.module for r in selected if r.needs_converted}):
    target = os.path.join(out_dir, module)
    stamp = target + ".json"
    if os.path.exists(stamp):
      with open(stamp) as f:
        if json.load(f).get("generated") == generated:
          continue
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(out_dir, exist_ok=True)
    print("bench: converting %s with hub_tf1.tf2.convert (once)" % module,
          flush=True)
    cmd = [MODERN_PYTHONS["hub_tf1"], os.path.join(BENCH_DIR, "generate.py"),
           "--work", work, "--convert", module] + (["--quick"] if quick
                                                   else [])
    t0 = time.time()
    env = _env("hub_tf1")
    subprocess.run(cmd, env=env, check=True)
    with open(stamp + ".tmp", "w") as f:
      json.dump({"generated": generated,
                 "seconds": round(time.time() - t0, 1)}, f)
    os.replace(stamp + ".tmp", stamp)


def machine_info():
  info = {"nproc": os.cpu_count(), "platform": platform.platform()}
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          info["cpu"] = line.split(":", 1)[1].strip()
          break
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemTotal"):
          info["memory_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
  except OSError:
    pass
  return info


# ----------------------------------------------------------------------------
# Formatting.


def fmt(value, key):
  if value is None:
    return "-"
  if isinstance(value, str):
    return value
  if key in ("ops", "ops_per_call"):
    pattern = "{:,.0f}" if value == int(value) else "{:,.1f}"
    return pattern.format(value)
  if key.endswith("_mb"):
    return "{:,.0f}".format(value)
  if key == "growth":
    return "%.2fx" % value
  if value >= 100:
    return "%.0f" % value
  if value >= 10:
    return "%.1f" % value
  if value >= 1:
    return "%.2f" % value
  return "%.3f" % value


def ratio(a, b):
  if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
    return None
  if b == 0:
    return None
  return a / b


def fmt_ratio(r):
  return "-" if r is None else "%.2fx" % r


def target_text(metric, r_orig, r_floor, r_floor_modern=None):
  """"<=Ax orig, <=Bx floor ok|MISSED" (+ the floor bound on TF 2.21)."""
  parts = []
  verdicts = []
  for bound, r, who in ((metric.max_vs_original, r_orig, "orig"),
                        (metric.max_vs_floor, r_floor, "floor")):
    if bound is None:
      continue
    parts.append("<=%gx %s" % (bound, who))
    if r is not None:
      verdicts.append(r <= bound)
  if not parts:
    return ""
  verdict = ""
  if verdicts:
    verdict = " ok" if all(verdicts) else " MISSED"
  modern = ""
  if metric.max_vs_floor is not None and r_floor_modern is not None:
    modern = "; 2.21: %s" % ("ok" if r_floor_modern <= metric.max_vs_floor
                             else "MISSED")
  return ", ".join(parts) + verdict + modern


def _spread(values, key):
  return "%s-%s" % (fmt(min(values), key), fmt(max(values), key))


def summarize(results, sizes, selected, extended):
  """Table rows, notes, spreads and the chart's ratios.

  A table row is [what, metric, hub, orig, floor, h/o, h/f, target, n], or
  with `extended` [what, metric, hub, orig, floor, hub@2.21, floor@2.21, h/o,
  h/f, h@2.21/f@2.21, h@2.21/h, target, n].  A cell without any successful
  run shows "n/a" or "error (k)"; the messages are returned as notes.
  """
  table = []
  notes = []
  spreads = []  # Per table row: {column: "min-max"}.
  chart = []  # Per metric with a ratio: what the chart draws.
  for row in selected:
    per_impl = results.get(row.name, {})
    for i, metric in enumerate(row.metrics):
      cells = {}
      counts = []
      spread = {}
      for impl in COLUMNS:
        runs = per_impl.get(impl, [])
        values = [r[metric.key] for status, r in runs
                  if status == "ok" and metric.key in r]
        if values:
          cells[impl] = statistics.median(values)
          counts.append(len(values))
          if fmt(min(values), metric.key) != fmt(max(values), metric.key):
            spread[impl] = _spread(values, metric.key)
        else:
          msgs = [(status, r) for status, r in runs if status != "ok"]
          if not msgs:
            cells[impl] = None
            continue
          status, msg = msgs[0]
          note = "%s, %s: %s" % (row.name, impl, msg)
          if note not in notes:
            notes.append(note)
          cells[impl] = "n/a (%d)" % (notes.index(note) + 1) if status == "na" \
              else "error (%d)" % (notes.index(note) + 1)
      hub_m, floor_m = MODERN_COLUMNS
      r_orig = ratio(cells["hub_tf1"], cells["original"])
      r_floor = ratio(cells["hub_tf1"], cells["floor"])
      r_floor_m = ratio(cells[hub_m], cells[floor_m])
      r_tf = ratio(cells[hub_m], cells["hub_tf1"])
      what = rows.title(row, sizes) if i == 0 else ""
      line = [what, rows.metric_label(metric, sizes),
              fmt(cells["hub_tf1"], metric.key),
              fmt(cells["original"], metric.key),
              fmt(cells["floor"], metric.key)]
      if extended:
        line += [fmt(cells[hub_m], metric.key), fmt(cells[floor_m], metric.key)]
      line += [fmt_ratio(r_orig), fmt_ratio(r_floor)]
      if extended:
        line += [fmt_ratio(r_floor_m), fmt_ratio(r_tf)]
      line += [target_text(metric, r_orig, r_floor, r_floor_m),
               str(min(counts)) if counts else "0"]
      table.append(line)
      spreads.append(spread)
      if any(r is not None for r in (r_orig, r_floor, r_floor_m)):
        chart.append({
            "row": row.name, "title": rows.title(row, sizes),
            "metric": rows.metric_label(metric, sizes),
            "vs_original": r_orig, "vs_floor": r_floor,
            "vs_floor_modern": r_floor_m, "modern_vs_legacy": r_tf,
            "max_vs_original": metric.max_vs_original,
            "max_vs_floor": metric.max_vs_floor})
  return table, notes, spreads, chart


HEADER = ["what", "metric", "hub_tf1", "original", "floor",
          "hub_tf1/original", "hub_tf1/floor", "target (issue 6)", "n"]
# The legacy rows' header with the TF 2.21 columns and ratios.
EXTENDED_HEADER = (HEADER[:5] + list(MODERN_COLUMNS) + HEADER[5:7] +
                   ["hub_tf1@2.21/floor@2.21", "hub_tf1@2.21/hub_tf1"] +
                   ["target (issues 6, 16)", "n"])


def is_extended(selected):
  """Whether the table has the TF 2.21 columns (some legacy row selected)."""
  return any(r.env == "legacy" for r in selected)


def header_for(selected):
  """The header of a table of `selected`: the TF2 rows' has no @2.21 columns."""
  if selected and all(r.env == "modern" for r in selected):
    return HEADER[:7] + ["target (issue 12)"] + HEADER[8:]
  return EXTENDED_HEADER


def text_table(table, header=None):
  header = header or HEADER
  cells = [header] + table
  widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
  lines = []
  for j, r in enumerate(cells):
    lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    if j == 0:
      lines.append("  ".join("-" * w for w in widths))
  return "\n".join(lines)


def markdown_table(table, spreads, header=None):
  """The table with each median followed by the min-max of its runs."""
  header = header or HEADER
  lines = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
  columns = ((2, "hub_tf1"), (3, "original"), (4, "floor"))
  if len(header) == len(EXTENDED_HEADER):
    columns += ((5, MODERN_COLUMNS[0]), (6, MODERN_COLUMNS[1]))
  for r, spread in zip(table, spreads):
    r = list(r)
    for col, impl in columns:
      if impl in spread:
        r[col] = "%s <sub>%s</sub>" % (r[col], spread[impl])
    lines.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
  return "\n".join(lines)


def floor_notes(selected, sizes):
  return "\n".join("- **%s**: floor = %s." % (rows.title(r, sizes), r.floor)
                   for r in selected)


def sections_of(selected):
  """The selected rows by table: the TF1-API rows, then the TF2 rows.

  The two have different originals (tensorflow_hub 0.15 on TF 2.15, 0.16.1
  on TF 2.21) and columns, so each gets a table of its own.
  """
  legacy = [r for r in selected if r.env == "legacy"]
  modern = [r for r in selected if r.env == "modern"]
  return [group for group in (legacy, modern) if group]


def _section_intro(group, only_section):
  """Heading (unless the file has one table) and what the columns mean."""
  if group[0].env == "legacy":
    lines = [] if only_section else [
        "## TF1 API rows: hub_tf1 vs tensorflow_hub 0.15 (TF 2.15.1)", ""]
    return lines + [
        "Columns `hub_tf1@2.21` and `floor@2.21`: the same measurement on "
        "TensorFlow 2.21 (`.venv/modern`, tf.compat.v1 graph mode; no "
        "original exists there).  `hub_tf1@2.21/floor@2.21` shows a "
        "regression of hub_tf1 on current TensorFlow, `hub_tf1@2.21/hub_tf1` "
        "the change of TensorFlow itself; the target column adds the floor "
        "target's verdict on 2.21 (`2.21: ok|MISSED`).  Targets: issue 6 "
        "and, for the BERT and ELMo rows, issue 16.",
        ""]
  lines = [] if only_section else [
      "## TF2 rows (issue 12): hub_tf1 vs tensorflow_hub 0.16.1 on "
      "TensorFlow 2.21", ""]
  return lines + [
      "Here `hub_tf1` runs in `.venv/modern` (TF 2.21, Keras 3) and "
      "`original` is tensorflow_hub 0.16.1 with tf-keras "
      "(`.venv/ref_modern`), loading the same module files; what the floor "
      "runs, and where, is named per row below.  Targets: issue 12.",
      ""]


def write_markdown(path, sections, meta, sizes, raw_path, chart_path=None):
  """Writes the results file: one table (with notes) per section.

  Args:
    path: the markdown file, replaced atomically.
    sections: dicts with "rows" (the rows.Row list), "table", "notes" and
      "spreads" (summarize's results for those rows).
    meta: the run's facts (command, date, machine, versions, ...).
    sizes: the size set, as a dict.
    raw_path: the per-repetition JSON, named at the end.
    chart_path: the PNG to link, or None.
  """
  m = meta["machine"]
  versions = meta["versions"]
  modern_only = all(sec["rows"][0].env == "modern" for sec in sections)
  heading = ("# Benchmark results: hub_tf1 vs tensorflow_hub 0.15 vs plain "
             "TensorFlow")
  if modern_only:
    heading = ("# Benchmark results (TF2 rows): hub_tf1 vs tensorflow_hub "
               "0.16.1 on TensorFlow 2.21 vs plain TensorFlow")
  elif len(sections) > 1:
    heading += " (and, for the TF2 rows, tensorflow_hub 0.16.1 on TF 2.21)"
  lines = [
      heading,
      "",
      "Generated by `%s` on %s (%.0f min). Do not edit by hand: rerun the "
      "command." % (meta["command"], meta["date"], meta["minutes"]),
      "",
      "Machine: %s CPUs (`nproc`), %s GB memory, %s; %s." %
      (m.get("nproc"), m.get("memory_gb"), m.get("cpu", "?"),
       m.get("platform")),
      "",
      "Load (`uptime`; other jobs may share the machine): before `%s`; "
      "after `%s`." % (meta.get("uptime_before", "?"),
                       meta.get("uptime_after", "?")),
      "",
      "Host memory (bench/host_memory.py): %s." % meta.get(
          "host_memory", "not recorded"),
      "",
      "Versions:",
  ]
  for impl in versions:
    v = versions.get(impl)
    if isinstance(v, dict):
      lines.append("- %s: %s" % (impl, ", ".join(
          "%s %s" % (k, val) for k, val in v.items() if k != "executable")))
    else:
      lines.append("- %s: %s" % (impl, v))
  gen = meta["generated"]
  lines += [
      "- modules generated once by %s %s on TensorFlow %s" %
      (gen.get("generator"), gen.get("generator_version"),
       gen.get("tensorflow")),
      "",
      "Sizes: %s." % ", ".join("%s=%s" % kv for kv in sizes.items()),
      "",
      "Each cell is the median over `n` repetitions, each a fresh process; "
      "the columns (implementations) are interleaved within a repetition, in "
      "an order that rotates between repetitions.  Times "
      "cover only the operation named in the row (imports, input and session "
      "set-up excluded).  RSS figures are from /proc/self/status: *RSS delta* "
      "= resident memory after minus before the operation, *peak RSS growth* "
      "= peak during it (VmHWM, reset before it) minus before, *peak RSS* = "
      "the process's absolute peak (TensorFlow itself accounts for a few "
      "hundred MB of it).  Small print after a median: min-max over the "
      "repetitions.  Ratios are computed from the medians.",
      "",
  ]
  if chart_path:
    lines += ["![hub_tf1/original, hub_tf1/floor and hub_tf1@2.21/floor@2.21 "
              "per metric, log scale, with the targets](%s)" %
              os.path.relpath(chart_path, os.path.dirname(path)), "",
              "Chart: `%s` (log-scale ratios; ticks = targets)." %
              os.path.relpath(chart_path, ROOT), ""]
  for sec in sections:
    group = sec["rows"]
    lines += _section_intro(group, len(sections) == 1)
    lines += [markdown_table(sec["table"], sec["spreads"], header_for(group)),
              ""]
    if sec["notes"]:
      lines += ["Notes:", ""] + ["%d. %s" % (i + 1, n)
                                 for i, n in enumerate(sec["notes"])] + [""]
    lines += ["What the floor column does:", "",
              floor_notes(group, sizes), ""]
  lines += [
      "Raw per-repetition values: `%s` (not committed)." %
      os.path.relpath(raw_path, ROOT),
      "",
  ]
  with open(path + ".tmp", "w") as f:
    f.write("\n".join(lines))
  os.replace(path + ".tmp", path)


# ----------------------------------------------------------------------------


def run_rows(selected, impls, args, work):
  """Runs every repetition of every selected row; returns the results.

  {row: {column: [(status, value), ...]}}
  """
  results = {}
  # Per process: runs sharing a work directory do not share scratch space.
  tmp_root = os.path.join(work, "tmp.%d" % os.getpid())
  shutil.rmtree(tmp_root, ignore_errors=True)
  try:
    for row in selected:
      reps = args.reps or (1 if args.quick else (
          row.reps or (7 if row.heavy_io else 5)))
      results[row.name] = {impl: [] for impl in COLUMNS}
      columns = [c for c in impls if c in row_columns(row)]
      for rep in range(reps):
        order = columns[rep % len(columns):] + columns[:rep % len(columns)]
        for impl in order:
          extra = ["--row", row.name, "--work", work]
          if args.quick:
            extra.append("--quick")
          # hub_tf1 being unimportable is reported once, not retried per rep.
          previous = results[row.name][impl]
          if previous and previous[-1][0] == "na":
            previous.append(previous[-1])
            continue
          if not args.no_sync:
            os.sync()  # No earlier run's dirty pages in the timed writes.
          t0 = time.time()
          status, value = run_worker(column_impl(impl), extra,
                                     tmp=os.path.join(tmp_root, impl),
                                     python=python_for_column(impl, row))
          results[row.name][impl].append((status, value))
          shown = (", ".join("%s=%s" % (k, fmt(v, k)) for k, v in value.items()
                             if not isinstance(v, bool))
                   if status == "ok" else value)
          print("[%s rep %d/%d] %-8s %s  (%.0f s)" %
                (row.name, rep + 1, reps, impl, shown, time.time() - t0),
                flush=True)
  finally:
    shutil.rmtree(tmp_root, ignore_errors=True)
  return results


def main():
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--quick", action="store_true",
                      help="small modules, 1 repetition: a smoke test")
  parser.add_argument("--only", default="",
                      help="comma-separated row names (see --list)")
  parser.add_argument("--tf2", action="store_true",
                      help="only the TF2 rows (tf2_*, issue 12); writes "
                      "<work>/RESULTS_tf2.md (the default run has them in "
                      "bench/RESULTS.md)")
  parser.add_argument("--impls", default=",".join(COLUMNS),
                      help="comma-separated subset of %s (the @2.21 "
                      "columns: the legacy rows on TF 2.21)" %
                      ",".join(COLUMNS))
  parser.add_argument("--reps", type=int, default=0,
                      help="repetitions per row (default: 5, file-writing "
                      "rows 7, the BERT and ELMo training rows 3; --quick: 1)")
  parser.add_argument("--list", action="store_true", help="list the rows")
  parser.add_argument("--regenerate", action="store_true",
                      help="rewrite the modules even if they exist")
  parser.add_argument("--no-bootstrap", action="store_true",
                      help="do not run tools/bootstrap.sh")
  parser.add_argument("--no-sync", action="store_true",
                      help="do not flush dirty pages (os.sync) before each "
                      "measurement")
  parser.add_argument("--keep-page-reporting", action="store_true",
                      help="leave the kernel's free page reporting on "
                      "(bench/host_memory.py: by default the run stops it "
                      "and touches free memory once)")
  parser.add_argument("--work", default="",
                      help="work directory (default bench/work/{full,quick})")
  parser.add_argument("--results", default="",
                      help="markdown output (default bench/RESULTS.md for a "
                      "full run of all rows, else <work>/RESULTS.md)")
  parser.add_argument("--raw", default="",
                      help="per-repetition JSON output (default "
                      "<work>/results.json; --tf2: <work>/results_tf2.json)")
  args = parser.parse_args()

  if args.list:
    for r in rows.ROWS:
      print("%-22s %s" % (r.name, rows.title(r, vars_of(rows.FULL))))
    return 0
  # The default run: every row; --tf2: the TF2 rows alone.
  selected = [r for r in rows.ROWS if r.env == "modern" or not args.tf2]
  if args.only:
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in rows.ROWS_BY_NAME]
    if unknown:
      parser.error("unknown row(s) %s; --list shows them" % ", ".join(unknown))
    selected = [rows.ROWS_BY_NAME[n] for n in names]
  impls = [i.strip() for i in args.impls.split(",") if i.strip()]
  for impl in impls:
    if impl not in COLUMNS:
      parser.error("unknown implementation %r" % impl)

  sizes_obj = rows.QUICK if args.quick else rows.FULL
  sizes = vars_of(sizes_obj)
  work = os.path.abspath(args.work or os.path.join(
      BENCH_DIR, "work", "quick" if args.quick else "full"))
  os.makedirs(work, exist_ok=True)
  modern = any(r.env == "modern" for r in selected)
  if not args.no_bootstrap:
    bootstrap(modern)

  started = time.time()
  uptime_before = _uptime()
  versions = {}
  for impl in rows.IMPLS:
    # Only the implementations some selected row runs in .venv/legacy|ref.
    if any(rows.impl_env(r, impl) == "legacy" for r in selected):
      status, value = run_worker(impl, ["--info"])
      versions[impl] = value if status == "ok" else "%s" % value
  for impl in rows.IMPLS:
    if any(rows.impl_env(r, impl) == "modern" for r in selected):
      status, value = run_worker(impl, ["--info"],
                                 python=MODERN_PYTHONS[impl])
      versions["%s (TF2 rows)" % impl] = (value if status == "ok"
                                          else "%s" % value)
  for column in MODERN_COLUMNS:
    if column in impls and is_extended(selected):
      status, value = run_worker(column_impl(column), ["--info"],
                                 python=python_for_column(column, None))
      versions[column] = value if status == "ok" else "%s" % value
  print("bench: versions: %s" % json.dumps(versions, indent=None))
  generated = ensure_modules(work, sizes, args.quick, args.regenerate)
  ensure_converted(work, selected, args.quick, generated)

  with host_memory.steady_host_memory(
      not args.keep_page_reporting) as memory_note:
    print("bench: %s" % memory_note, flush=True)
    results = run_rows(selected, impls, args, work)

  sections = []
  chart = []
  for group in sections_of(selected):
    table, notes, spreads, group_chart = summarize(
        results, sizes, group, is_extended(group))
    sections.append({"rows": group, "table": table, "notes": notes,
                     "spreads": spreads})
    chart += group_chart
    print()
    print(text_table(table, header_for(group)))
    for i, note in enumerate(notes):
      print("(%d) %s" % (i + 1, note))
  minutes = (time.time() - started) / 60
  cmd = "bash bench/run.sh" + "".join(" " + a for a in sys.argv[1:])
  meta = {
      "command": cmd,
      "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
      "minutes": minutes,
      "machine": machine_info(),
      "versions": versions,
      "generated": generated,
      "uptime_before": uptime_before,
      "host_memory": memory_note,
      "uptime_after": _uptime(),
  }
  raw_path = os.path.abspath(args.raw) if args.raw else os.path.join(
      work, "results_tf2.json" if args.tf2 else "results.json")
  with open(raw_path, "w") as f:
    json.dump({"meta": meta, "results": results}, f, indent=1)
  full = not args.quick and not args.only and impls == list(COLUMNS)
  default_name = "RESULTS_tf2.md" if args.tf2 else "RESULTS.md"
  # Only the default run (every row, every column) writes bench/RESULTS.md.
  full = full and not args.tf2
  out = args.results or (os.path.join(BENCH_DIR, default_name) if full
                         else os.path.join(work, default_name))
  chart_path = None
  if chart:
    chart_path = draw_chart(chart, os.path.splitext(out)[0] + ".png", meta,
                            work)
  write_markdown(out, sections, meta, sizes, raw_path, chart_path)
  print("\nbench: %.0f min; wrote %s and %s" %
        (minutes, os.path.relpath(out, ROOT), os.path.relpath(raw_path, ROOT)))
  errors = [(r, i) for r, per in results.items() for i, runs in per.items()
            for status, _ in runs if status == "error"]
  return 1 if errors else 0


def _uptime():
  """`uptime`'s output (load averages), or the load averages alone."""
  try:
    return subprocess.run(["uptime"], capture_output=True, text=True,
                          check=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return "load average: %.2f, %.2f, %.2f" % os.getloadavg()


def draw_chart(chart, png_path, meta, work):
  """Runs bench/plot.py in .venv/plot; returns `png_path` or None."""
  if not os.path.exists(PLOT_PYTHON):
    print("bench: no %s (tools/bootstrap.sh plot); no chart" %
          os.path.relpath(PLOT_PYTHON, ROOT))
    return None
  data = os.path.join(work, "chart.json")
  with open(data + ".tmp", "w") as f:
    json.dump({"metrics": chart, "command": meta["command"],
               "date": meta["date"]}, f, indent=1)
  os.replace(data + ".tmp", data)
  proc = subprocess.run([PLOT_PYTHON, os.path.join(BENCH_DIR, "plot.py"),
                         data, png_path], capture_output=True, text=True,
                        check=False)
  if proc.returncode:
    print("bench: plot.py failed: %s" % proc.stderr.strip()[-500:])
    return None
  return png_path


def vars_of(sizes_obj):
  return {f: getattr(sizes_obj, f) for f in sizes_obj.__dataclass_fields__}


if __name__ == "__main__":
  sys.exit(main())
