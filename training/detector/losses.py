"""RetinaFace training losses: smooth-L1 box regression and cross-entropy with hard negative mining."""

from __future__ import annotations

import tensorflow as tf

NEG_POS_RATIO = 7
LOC_WEIGHT = 2.0


def smooth_l1(x: tf.Tensor) -> tf.Tensor:
    """Elementwise smooth-L1 (beta 1)."""
    ax = tf.abs(x)
    return tf.where(ax < 1.0, 0.5 * x * x, ax - 0.5)


def detection_loss(
    loc_pred: tf.Tensor, logits: tf.Tensor, loc_target: tf.Tensor, labels: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(total, box, class) losses for a batch; labels are 1 face, 0 background, -1 ignored, per anchor."""
    pos = tf.cast(labels == 1, tf.float32)
    num_pos = tf.maximum(tf.reduce_sum(pos), 1.0)
    box = tf.reduce_sum(tf.reduce_sum(smooth_l1(loc_pred - loc_target), -1) * pos) / num_pos
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.maximum(labels, 0), logits)
    neg = tf.cast(labels == 0, tf.float32)
    neg_ce = ce * neg
    # hard negative mining: per image, the NEG_POS_RATIO * positives most confident mistakes
    k = tf.cast(tf.maximum(tf.reduce_sum(pos, 1) * NEG_POS_RATIO, NEG_POS_RATIO), tf.int32)
    k = tf.minimum(k, tf.shape(ce)[1] - 1)
    ranked = tf.sort(neg_ce, axis=1, direction="DESCENDING")
    threshold = tf.gather(ranked, k - 1, batch_dims=1)[:, None]
    hard = tf.cast(neg_ce >= threshold, tf.float32) * neg
    cls = tf.reduce_sum(ce * (pos + hard)) / num_pos
    return LOC_WEIGHT * box + cls, box, cls
