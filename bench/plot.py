"""Draws the benchmark's ratios as a chart (run by bench/run.py).

  .venv/plot/bin/python bench/plot.py CHART_JSON OUT_PNG

CHART_JSON is what run.py's summarize() collects per metric: the ratios
hub_tf1/original, hub_tf1/floor and hub_tf1@2.21/floor@2.21 and the metric's
targets (the TF2 rows, tf2_*, have no @2.21 ratio).  The chart has one group of horizontal bars per metric on a log
scale, a line at 1x and a tick at each target.  Runs in .venv/plot (matplotlib
only, requirements/plot.txt); never imported by TensorFlow code.
"""

import json
import os
import sys
import tempfile

import matplotlib  # pylint: disable=g-import-not-at-top
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position

# (key in the chart data, legend label, colour, key of its target or None).
SERIES = (
    ("vs_original", "hub_tf1 / original (0.15 on TF 2.15; tf2_* rows: "
     "0.16.1 on TF 2.21)", "#1f77b4", "max_vs_original"),
    ("vs_floor", "hub_tf1 / floor (TF 2.15; tf2_* rows: see the table)",
     "#ff7f0e", "max_vs_floor"),
    ("vs_floor_modern", "hub_tf1@2.21 / floor@2.21", "#2ca02c",
     "max_vs_floor"),
)
BAR_HEIGHT = 0.26


def _label(metric):
  """"<row name>: <metric label>" (the row names of bench/run.sh --list)."""
  return "%s: %s" % (metric["row"], metric["metric"])


def draw(data, out_path):
  """Writes the chart of `data` (run.py's chart.json) to `out_path` (PNG)."""
  metrics = data["metrics"]
  n = len(metrics)
  fig, ax = plt.subplots(figsize=(11, 1.2 + 0.36 * n))
  positions = list(range(n))[::-1]  # First metric on top.
  values = [m[key] for m in metrics for key, _, _, _ in SERIES
            if m.get(key)]
  lo = min(values + [0.5]) / 2
  hi = max(values + [2.0]) * 2
  for s, (key, label, colour, target_key) in enumerate(SERIES):
    offset = (1 - s) * BAR_HEIGHT
    ys, widths = [], []
    for y, m in zip(positions, metrics):
      if m.get(key):
        ys.append(y + offset)
        widths.append(m[key])
    # Bars start at 1x: left of the line = faster/smaller than the reference.
    ax.barh(ys, [w - 1 for w in widths], left=1, height=BAR_HEIGHT,
            color=colour, label=label)
    for y, m in zip(positions, metrics):
      target = m.get(target_key)
      if target and m.get(key):
        ax.plot([target, target], [y + offset - BAR_HEIGHT / 2,
                                   y + offset + BAR_HEIGHT / 2],
                color="black", linewidth=2)
  ax.plot([], [], color="black", linewidth=2, label="target (bar of its colour)")
  ax.axvline(1.0, color="grey", linewidth=1)
  ax.set_xscale("log")
  ax.set_xlim(lo, hi)
  ax.set_ylim(-0.6, n - 0.4)
  ax.set_yticks(positions)
  ax.set_yticklabels([_label(m) for m in metrics], fontsize=7)
  ax.set_xlabel("ratio (log scale; < 1 = hub_tf1 faster / smaller)")
  ax.grid(axis="x", which="both", alpha=0.3)
  ax.legend(loc="upper right", fontsize=8)
  ax.set_title("hub_tf1 benchmark ratios: %s, %s" % (data.get("command", ""),
                                                     data.get("date", "")),
               fontsize=9)
  fig.tight_layout()
  directory = os.path.dirname(os.path.abspath(out_path))
  fd, tmp = tempfile.mkstemp(suffix=".png", dir=directory)
  os.close(fd)
  try:
    fig.savefig(tmp, dpi=90)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 is not what a results file needs.
    os.replace(tmp, out_path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  plt.close(fig)


def main(argv):
  if len(argv) != 3:
    print(__doc__)
    return 2
  with open(argv[1]) as f:
    data = json.load(f)
  draw(data, argv[2])
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
