"""Fine-tuning YuNet (PyTorch) on annotated photos: SimOTA assignment, IoU-aware scores, GIoU boxes.

Scale augmentation puts many faces at 8-24 px: log-uniform downscaling of whole photos, and 2 x 2
mosaics of four independently scaled crops; blur and JPEG artefacts come from `augment.photometric`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from shared.detectors.yunet import YuNetDetector, prior_points
from shared.imaging import ImageError, read_image
from training.detector.augment import augment
from training.detector.data import Scene
from training.detector.run_log import RunLog
from training.detector.targets import iou_matrix
from training.detector.unlabelled import unlabelled_boxes
from training.detector.yunet_model import YuNetTorch

log = logging.getLogger(__name__)
UNLABELLED_SCORE = 0.85  # base-model faces at least this sure, covering no annotation, are ignored
CENTER_RADIUS = 2.5  # strides: candidate priors lie this close to a face's centre (or inside it)
TOP_IOU = 10  # SimOTA: a face takes as many priors as the sum of its top-10 IoUs
BOX_WEIGHT = 5.0


@dataclass
class YuNetTrainConfig:
    """Hyper-parameters of one YuNet fine-tuning run."""

    size: int = 320
    batch: int = 16
    epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 5e-4
    scale_range: tuple[float, float] = (0.2, 1.6)  # log-uniform, relative to the photo's own pixels
    mosaic: float = 0.4  # share of 2 x 2 mosaics
    lowres: float = 0.0  # share of images given a low-resolution round trip (small photos, upscaled)
    max_minutes: float = 0.0
    seed: int = 0
    threads: int = 2
    log_every: int = 10


def unlabelled_faces(scenes: list[Scene], base_onnx: Path, threshold: float = UNLABELLED_SCORE) -> list[np.ndarray]:
    """Faces the base YuNet is sure of that no annotation covers, per photo (ignored in training)."""
    detector = YuNetDetector(base_onnx, score_threshold=threshold, min_face=10, threads=2)
    return unlabelled_boxes(scenes, lambda image: detector.detect(image).boxes)


def cached_unlabelled(scenes: list[Scene], base_onnx: Path, cache: Path) -> list[np.ndarray]:
    """`unlabelled_faces`, kept in `cache` so that a restarted run does not search again."""
    key = [str(s.image) for s in scenes] + [str(base_onnx)]
    if cache.is_file():
        data = np.load(cache, allow_pickle=False)
        if data["key"].tolist() == key:
            return [data[f"b{i}"] for i in range(len(scenes))]
    found = unlabelled_faces(scenes, base_onnx)
    np.savez(cache, key=np.array(key), **{f"b{i}": b for i, b in enumerate(found)})
    return found


def _example(scene: Scene, extra: np.ndarray, size: int, cfg: YuNetTrainConfig, rng: np.random.Generator):
    image = read_image(scene.image)
    boxes = np.vstack([scene.boxes, extra]).astype(np.float32)
    pseudo = np.arange(len(boxes)) >= len(scene.boxes)
    out, out_boxes, kept, skip = augment(image, boxes, size, rng, (0.0, 0.0, 0.0), cfg.scale_range, cfg.lowres)
    return out, out_boxes, skip | pseudo[kept]


def training_examples(
    scenes: list[Scene], unlabelled: list[np.ndarray], cfg: YuNetTrainConfig, rng: np.random.Generator,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Endless augmented examples: (HWC BGR uint8 image, boxes, ignore mask)."""
    while True:
        for i in rng.permutation(len(scenes)):
            try:
                if rng.random() >= cfg.mosaic:
                    yield _example(scenes[i], unlabelled[i], cfg.size, cfg, rng)
                    continue
                half = cfg.size // 2
                canvas = np.zeros((cfg.size, cfg.size, 3), np.uint8)
                all_boxes, all_ignore = [], []
                for k, j in enumerate([i, *rng.integers(0, len(scenes), 3)]):
                    img, b, ign = _example(scenes[j], unlabelled[j], half, cfg, rng)
                    ox, oy = (k % 2) * half, (k // 2) * half
                    canvas[oy:oy + half, ox:ox + half] = img
                    all_boxes.append(b + [ox, oy, ox, oy])
                    all_ignore.append(ign)
                yield canvas, np.vstack(all_boxes), np.concatenate(all_ignore)
            except ImageError as exc:
                log.warning("skipping %s", exc)


def giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Generalised IoU of paired boxes (N x 4 each)."""
    lt, rb = torch.max(a[:, :2], b[:, :2]), torch.min(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    area_a, area_b = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(1), (b[:, 2:] - b[:, :2]).clamp(min=0).prod(1)
    union = area_a + area_b - inter + 1e-7
    hull = (torch.max(a[:, 2:], b[:, 2:]) - torch.min(a[:, :2], b[:, :2])).clamp(min=0).prod(1) + 1e-7
    return inter / union - (hull - union) / hull


def decode(bbox: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """YuNet box regression (priors x 4) -> [x1, y1, x2, y2] pixels (same maths as the serving decoder)."""
    s = priors[:, 2:3]
    centre = priors[:, :2] + bbox[:, :2] * s
    size = torch.exp(bbox[:, 2:4].clamp(max=10.0)) * s
    return torch.cat([centre - size / 2, centre + size / 2], 1)


@torch.no_grad()
def simota(pred_boxes: torch.Tensor, scores: torch.Tensor, priors: torch.Tensor, gt: torch.Tensor) -> tuple:
    """SimOTA: (foreground mask over priors, index of the face each foreground prior learns, its IoU)."""
    n_priors = len(priors)
    fg = torch.zeros(n_priors, dtype=torch.bool)
    if len(gt) == 0:
        return fg, torch.zeros(0, dtype=torch.long), torch.zeros(0)
    px, py, s = priors[:, 0], priors[:, 1], priors[:, 2]
    cx, cy = (gt[:, 0] + gt[:, 2]) / 2, (gt[:, 1] + gt[:, 3]) / 2
    inside = ((px[None] > gt[:, None, 0]) & (px[None] < gt[:, None, 2])
              & (py[None] > gt[:, None, 1]) & (py[None] < gt[:, None, 3]))
    near = ((px[None] - cx[:, None]).abs() < CENTER_RADIUS * s[None]) & \
           ((py[None] - cy[:, None]).abs() < CENTER_RADIUS * s[None])
    candidate = inside | near
    iou = torch.from_numpy(iou_matrix(gt.numpy(), pred_boxes.numpy())).float()  # G x P
    cost = -torch.log(iou + 1e-8) * 3.0 + F.binary_cross_entropy(
        scores[None].expand(len(gt), -1).clamp(1e-6, 1 - 1e-6), torch.ones_like(iou), reduction="none")
    cost = cost + 1e5 * (~(inside & near)) + 1e6 * (~candidate)
    k = torch.clamp(torch.topk(iou * candidate, min(TOP_IOU, n_priors), 1).values.sum(1).int(), min=1)
    matching = torch.zeros_like(iou, dtype=torch.bool)
    for g in range(len(gt)):
        matching[g, torch.topk(cost[g], int(k[g]), largest=False).indices] = True
    matching &= candidate
    multi = matching.sum(0) > 1
    if multi.any():
        best = cost[:, multi].argmin(0)
        matching[:, multi] = False
        matching[best, multi.nonzero().squeeze(1)] = True
    fg = matching.any(0)
    gt_index = matching[:, fg].float().argmax(0)
    return fg, gt_index, iou[gt_index, fg]


def batch_loss(model: YuNetTorch, images: torch.Tensor, targets: list[tuple[np.ndarray, np.ndarray]],
               priors: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Objectness BCE over all priors (ignored regions left out), IoU-target class BCE and GIoU on foreground."""
    out = model(images)
    obj_loss = cls_loss = box_loss = images.new_zeros(())
    n_fg = 0
    for b, (boxes, ignore) in enumerate(targets):
        pred = decode(out["bbox"][b], priors)
        scores = torch.sqrt(torch.sigmoid(out["cls"][b, :, 0]) * torch.sigmoid(out["obj"][b, :, 0]))
        gt = torch.from_numpy(boxes[~ignore]).float()
        fg, gt_index, iou = simota(pred.detach(), scores.detach(), priors, gt)
        weight = torch.ones(len(priors))
        if ignore.any():
            ign = torch.from_numpy(boxes[ignore]).float()
            covered = ((priors[None, :, 0] > ign[:, None, 0]) & (priors[None, :, 0] < ign[:, None, 2])
                       & (priors[None, :, 1] > ign[:, None, 1]) & (priors[None, :, 1] < ign[:, None, 3])).any(0)
            weight[covered & ~fg] = 0.0
        obj_loss = obj_loss + F.binary_cross_entropy_with_logits(
            out["obj"][b, :, 0], fg.float(), weight=weight, reduction="sum")
        if fg.any():
            cls_loss = cls_loss + F.binary_cross_entropy_with_logits(out["cls"][b, fg, 0], iou, reduction="sum")
            box_loss = box_loss + (1 - giou(pred[fg], gt[gt_index])).sum()
            n_fg += int(fg.sum())
    n = max(n_fg, 1)
    loss = (obj_loss + cls_loss + BOX_WEIGHT * box_loss) / n
    parts = {"obj": float(obj_loss.detach()) / n, "cls": float(cls_loss.detach()) / n,
             "box": float(box_loss.detach()) / n, "fg": n_fg}
    return loss, parts


def train_yunet(
    scenes: list[Scene], base_onnx: Path, workdir: Path, cfg: YuNetTrainConfig,
    unlabelled: list[np.ndarray] | None = None,
) -> tuple[YuNetTorch, dict]:
    """Fine-tune YuNet from `base_onnx` on `scenes`; checkpoints to `workdir`; returns the model and a summary."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    workdir.mkdir(parents=True, exist_ok=True)
    model = YuNetTorch(base_onnx)
    if unlabelled is None:
        unlabelled = cached_unlabelled(scenes, base_onnx, workdir / "unlabelled.npz")
    rng = np.random.default_rng(cfg.seed)
    examples = training_examples(scenes, unlabelled, cfg, rng)
    steps_per_epoch = max(1, len(scenes) // cfg.batch)
    total = steps_per_epoch * cfg.epochs
    optimizer = torch.optim.AdamW(model.trainable(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    warmup = min(50, max(1, total // 10))
    run = RunLog(total, steps_per_epoch, ("obj", "cls", "box"), "fg", cfg.log_every, cfg.max_minutes)

    def progress(i: int) -> float:
        """Share of the run done: by steps, or by time when a time limit comes first (the lr still anneals)."""
        by_time = run.elapsed() / (cfg.max_minutes * 60) if cfg.max_minutes else 0.0
        return min(1.0, max(i / total, by_time))

    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda i: min(1.0, (i + 1) / warmup) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress(i)))))
    priors = torch.from_numpy(prior_points(tuple(model.strides), cfg.size, cfg.size))
    ckpt = workdir / "last.pt"
    model.train()
    while run.done < total:
        batch = [next(examples) for _ in range(cfg.batch)]
        images = torch.from_numpy(np.stack([b[0] for b in batch]).astype(np.float32)).permute(0, 3, 1, 2)
        loss, parts = batch_loss(model, images, [(b[1], b[2]) for b in batch], priors)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.trainable(), 10.0)
        optimizer.step()
        schedule.step()
        if run.step(float(loss.detach()), parts["obj"], parts["cls"], parts["box"], parts["fg"]):
            torch.save(model.state_dict(), ckpt)
        if run.time_up():
            break
    torch.save(model.state_dict(), ckpt)
    model.eval()
    return model, run.summary(cfg, len(scenes))
