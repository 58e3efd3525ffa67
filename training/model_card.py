"""The model card (model_card.md) written into every classifier version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.metrics import format_classification


def _phase2_epochs(metrics: dict[str, Any]) -> str:
    """"N epochs (weights of epoch K kept)" for phase 2, "skipped", or why it was not kept."""
    phase2 = metrics["phase2"]
    if not phase2.get("epochs"):
        return "skipped"
    if not phase2.get("kept", True):
        return f"{phase2['epochs']} epochs (not kept: it did not lower validation loss)"
    if "best_val_loss" not in phase2:
        return f"{phase2['epochs']} epochs (last weights kept: no validation)"
    losses = metrics["history"]["val_loss"][metrics["phase1"]["epochs"]:]
    return f"{phase2['epochs']} epochs (weights of epoch {losses.index(min(losses)) + 1} kept)"


def write_model_card(path: Path, name: str, meta: dict[str, Any], metrics: dict[str, Any],
                     summary: dict[str, Any]) -> None:
    """Describe the model, its data, how it was validated and how well it did."""
    cfg = meta["config"]
    agree = metrics["tflite_vs_keras"]
    validated = metrics["validation"] is not None
    lines = [
        f"# Face-mask classifier `{name}`",
        "",
        meta["description"],
        "",
        "## Model",
        f"- MobileNetV2 ({cfg['variant']} padding), input {meta['input_size']}x{meta['input_size']} RGB, "
        f"'{meta['preprocessing']}' normalisation; pre-trained weights: {cfg['pretrained'] or 'none'}.",
        "- Head: average pool -> dense 128 ReLU -> dropout 0.5 -> softmax over "
        f"{', '.join(meta['labels'])}.",
        f"- Phase 1 (head, frozen backbone): {metrics['phase1']['epochs']} epochs; phase 2 (blocks "
        f"{cfg.get('finetune_from', 14)}-16 and Conv_1 unfrozen, lr {cfg['finetune_learning_rate']}"
        + (f", weights averaged with momentum {cfg['ema']}" if cfg.get("ema") else "")
        + f"): {_phase2_epochs(metrics)}; "
        f"{cfg['views']} cached views per image; loss weights: {cfg.get('balance', 'class')}.",
        f"- Serving file `{meta['model_file']}` (TFLite, quantisation: {cfg['quantize']}); crops are cut with "
        f"`shared.crops.crop_face` and margin {meta['crop_margin']} at training and serving time.",
        f"- TFLite vs Keras on {agree['n']} {'validation' if validated else 'training'} crops: top-1 agreement "
        f"{agree['top1_agreement']}, max probability difference {agree['max_abs_prob_diff']}.",
        f"- Training time: {metrics['training_seconds']:.0f} s (features {metrics['feature_seconds']:.0f} s), "
        f"{cfg['threads']} CPU threads.",
        "",
        "## Data",
        f"- Roots: {', '.join(summary['roots'])}; split: {summary['method']}"
        + (f" (perceptual-hash near-duplicates within {summary['dedup_max_distance']} bits kept together: "
           f"{summary['near_duplicate_pairs']} pairs)" if "near_duplicate_pairs" in summary else "") + ".",
        f"- Train images per class: {summary['train']}; validation: {summary['val']}.",
        "- Split lists: `split/train.txt`, `split/val.txt`; counts: `data_summary.json`.",
        "",
        "## Validation",
        *(["```", format_classification(metrics["validation"]), "```"] if validated else
          ["None: every image trained (`--val-fraction 0`), for the fixed epoch counts above."]),
        *(["- By data root: " + "; ".join(f"{root} {v['accuracy']:.4f} ({v['n']} images)"
                                         for root, v in metrics["validation_by_root"].items()) + "."]
          if "validation_by_root" in metrics else []),
        "",
        ("![confusion matrix](confusion_matrix.png) " if validated else "") + "![training curves](curves.png)",
        "",
        "## Limits",
        "- Validation above is on the split named there; end-to-end numbers on real scenes come from "
        "`maskwatch eval <version> --scenes VOC_DIR` (see docs/training.md).",
    ]
    path.write_text("\n".join(lines) + "\n")
