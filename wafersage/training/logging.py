"""Training logs: every trainer log line to ``metrics.csv`` (a TrainerCallback) and a ``metrics.png`` plot.

GSPO runs log, per logging step, the mean reward, its spread within groups (``reward_std``), the share of groups
whose completions all got the same reward (``frac_reward_zero_std``: no learning signal), the clip statistics of
the importance ratio (``clip_ratio/*``), KL when beta > 0, and the reward parts (``reward_content``,
``well_formed``). SFT runs log loss, learning rate and token accuracy. The CSV is rewritten at each log, so it is
complete whenever the run stops.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

try:
    from transformers import TrainerCallback
except ImportError:  # the train extra is missing; plotting an existing CSV still works
    TrainerCallback = object  # type: ignore[assignment,misc]

METRICS_CSV = "metrics.csv"
METRICS_PNG = "metrics.png"

#: (panel title, columns) of the plot; panels without any logged column are left out
PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("reward", ("reward", "reward_content", "well_formed")),
    ("reward spread", ("reward_std", "frac_reward_zero_std")),
    ("clipping and KL", ("clip_ratio/region_mean", "clip_ratio/low_mean", "clip_ratio/high_mean", "kl")),
    ("loss", ("loss",)),
    ("learning rate", ("learning_rate",)),
    ("completion length", ("completions/mean_length",)),
)


class MetricsCSVCallback(TrainerCallback):
    """Appends each numeric log of the main process to ``<run_dir>/metrics.csv``; plots it when training ends."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.csv_path = self.run_dir / METRICS_CSV
        self.rows: list[dict[str, Any]] = []
        if self.csv_path.is_file():  # a resumed run keeps what was logged before the checkpoint
            self.rows = pd.read_csv(self.csv_path).to_dict("records")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        row = {"step": state.global_step, **{k: float(v) for k, v in logs.items()
                                              if isinstance(v, (int, float)) and not isinstance(v, bool)}}
        if "train_runtime" in row:  # the closing summary line, not a training step
            return
        # rows from a step at or after this one were logged before a resume from an earlier checkpoint
        self.rows = [r for r in self.rows if r.get("step", -1) < row["step"]] + [row]
        self.run_dir.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(self.rows).to_csv(self.csv_path, index=False)

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.csv_path.is_file():
            plot_metrics(self.csv_path, self.run_dir / METRICS_PNG)


def plot_metrics(csv_path: str | Path, png_path: str | Path) -> Path:
    """Plot the logged metrics against the step, one panel per quantity group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.read_csv(csv_path)
    panels = [(title, [c for c in cols if c in frame and frame[c].notna().any()]) for title, cols in PANELS]
    panels = [(title, cols) for title, cols in panels if cols]
    if not panels:
        raise ValueError(f"{csv_path}: no known metric columns to plot (expected some of reward, loss, …)")
    ncols = 2
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(10, 3 * nrows), squeeze=False)
    for ax, (title, cols) in zip(axes.flat, panels):
        for col in cols:
            data = frame[["step", col]].dropna()
            ax.plot(data["step"], data[col], marker="o", markersize=3, label=col)
        if title == "reward" and "reward_std" in frame:
            data = frame[["step", "reward", "reward_std"]].dropna()
            ax.fill_between(data["step"], data["reward"] - data["reward_std"], data["reward"] + data["reward_std"],
                            alpha=0.2, label="reward ± std")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    png_path = Path(png_path)
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path
