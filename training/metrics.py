"""Classification metrics (scikit-learn), readable tables and plots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix (rows = truth)."""
    labels = list(labels)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = [i for i, n in enumerate(s) if n > 0]
    return {
        "n": len(y_true),
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4) if len(y_true) else 0.0,
        "macro_f1": round(float(np.mean(f[present])), 4) if present else 0.0,
        "per_class": {
            name: {"precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4),
                   "f1": round(float(f[i]), 4), "support": int(s[i])}
            for i, name in enumerate(labels)
        },
        "labels": labels,
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist() if len(y_true) else [],
    }


def format_classification(report: dict[str, Any], title: str = "") -> str:
    """A readable table of a `classification_metrics` report."""
    labels = report["labels"]
    width = max(14, *(len(x) for x in labels)) + 1
    lines = [title] if title else []
    lines.append(f"n={report['n']}  accuracy={report['accuracy']:.4f}  macro-F1={report['macro_f1']:.4f}")
    lines.append(f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}")
    for name in labels:
        c = report["per_class"][name]
        lines.append(f"{name:<{width}}{c['precision']:>10.4f}{c['recall']:>10.4f}{c['f1']:>10.4f}{c['support']:>9}")
    if report["confusion"]:
        lines.append("confusion (rows = truth, columns = predicted):")
        lines.append(" " * width + "".join(f"{name[:14]:>15}" for name in labels))
        for name, row in zip(labels, report["confusion"]):
            lines.append(f"{name:<{width}}" + "".join(f"{v:>15}" for v in row))
    return "\n".join(lines)


def plot_confusion(report: dict[str, Any], path: Path, title: str = "Confusion matrix") -> None:
    """Save the confusion matrix as a PNG (counts, rows = truth)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    labels = report["labels"]
    matrix = np.asarray(report["confusion"]) if report["confusion"] else np.zeros((len(labels),) * 2, int)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(labels), 1.2 + 1.2 * len(labels)))
    ConfusionMatrixDisplay(matrix, display_labels=labels).plot(ax=ax, colorbar=False, xticks_rotation=30)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_curves(history: dict[str, list[float]], path: Path, phase_starts: Sequence[int] = ()) -> None:
    """Save loss and accuracy per epoch (train and validation) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            if history.get(key):
                ax.plot(range(1, len(history[key]) + 1), history[key], style, label=key)
        for start in phase_starts:
            ax.axvline(start + 0.5, color="grey", linewidth=0.8)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
