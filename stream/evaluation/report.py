"""The evaluation's table rows and bar chart (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

from stream.evaluation.protocol import EvaluationResult

__all__ = ["plot_result", "render_rows"]

PLOT_DPI = 120


def render_rows(result: EvaluationResult) -> tuple[list[str], list[list[str]]]:
    """Column names and one formatted row per model (metrics with 4 decimals)."""
    summary = result.to_dict()
    models: dict[str, dict[str, float]] = summary["models"]  # type: ignore[assignment]
    k = result.config.k
    columns = ["model", f"hr@{k}", f"ndcg@{k}", f"mrr@{k}", f"conversion_hr@{k}"]
    rows = [[name] + [f"{metrics[column]:.4f}" for column in columns[1:]] for name, metrics in models.items()]
    return columns, rows


def plot_result(result: EvaluationResult, path: Path, *, title: str = "") -> None:
    """A grouped bar chart of every model's metrics, written as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    columns, rows = render_rows(result)
    metrics = columns[1:]
    names = [row[0] for row in rows]
    values = np.array([[float(value) for value in row[1:]] for row in rows])
    width = 0.8 / len(metrics)
    figure, axes = plt.subplots(figsize=(max(6.0, 1.1 * len(names) + 2), 4.0))
    positions = np.arange(len(names))
    for column, metric in enumerate(metrics):
        axes.bar(positions + (column - (len(metrics) - 1) / 2) * width, values[:, column], width, label=metric)
    axes.set_xticks(positions, names, rotation=20)
    axes.set_ylabel("score")
    axes.set_title(
        title or f"{result.targets} discovery / {result.conversion_targets} conversion targets, k={result.config.k}"
    )
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=PLOT_DPI)
    plt.close(figure)
