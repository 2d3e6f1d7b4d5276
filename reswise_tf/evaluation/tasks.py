"""What a sweep keeps of each image, by task: one engine and one cache layout for both.

A task says what a batch's per-image record holds, computed inside the compiled forward so that
only small arrays leave it, and which table the records make:

* `Classification`: the `kept_classes` most probable class ids and their probabilities (a
  softmax applied to models that end in logits) -> `PredictionTable`.
* `Segmentation`: the predicted class probabilities resized back to the label's own resolution (bilinear;
  the label is never resized), then per class the pixels predicted and labelled (intersection)
  and in either (union), the pixels right and scored (ignore-label pixels left out), and the
  mean top probability over the pixels (the image's confidence) -> `SegmentationTable`. No
  masks are kept.

A model's task follows from its output: a class map (B, H, W, classes) is segmentation.
"""

import numpy as np
import tensorflow as tf

from reswise_tf.data.source import IGNORE_LABEL
from reswise_tf.evaluation.predictions import PredictionTable, SegmentationTable, mean_iou
from reswise_tf.models.inspect import outputs_probabilities


def probabilities(model, images):
    """The model's probabilities on `images` (float32; softmax applied to logits)."""
    outputs = tf.cast(model(tf.cast(images, model.inputs[0].dtype), training=False), tf.float32)
    return outputs if outputs_probabilities(model) else tf.nn.softmax(outputs, axis=-1)


class Classification:
    """Top classes per image (see the module docstring)."""

    name = "classification"
    keys = (("ids", np.int32), ("probs", np.float32))  # the per-image record, in the partial checkpoint
    running_metric = "top1"

    def record(self, model, images, labels, kept_classes):
        """{key: per-image tensor} of one batch (in the compiled forward)."""
        del labels
        probs, ids = tf.math.top_k(probabilities(model, images), k=min(kept_classes, model.outputs[0].shape[-1]))
        return {"ids": tf.cast(ids, tf.int32), "probs": probs}

    def tally(self, so_far, record, labels):
        """The progress line's running sums, with one more batch: (top-1 hits, images)."""
        hits, count = so_far or (0, 0)
        return hits + (int(np.sum(record["ids"][:, 0] == labels)) if len(labels) else 0), count + len(labels)

    def value(self, tally):
        """The progress line's figure (top-1, a fraction) of the running sums."""
        hits, count = tally or (0, 0)
        return hits / count if count else 0.0

    def table(self, resolution, index, labels, record, meta, kept_classes):
        return PredictionTable(resolution=resolution, index=index, labels=labels,
                               top_ids=_fixed(record["ids"], np.int32, kept_classes),
                               top_probs=_fixed(record["probs"], np.float32, kept_classes), meta=meta)


class Segmentation:
    """Per-class pixel counts per image (see the module docstring)."""

    name = "segmentation"
    keys = (("intersection", np.int64), ("union", np.int64), ("pixel_correct", np.int64), ("pixels", np.int64),
            ("confidence", np.float32))
    running_metric = "miou"

    def __init__(self, num_classes):
        self.num_classes = int(num_classes)

    def record(self, model, images, labels, kept_classes):
        """The records of a batch: `labels` are class maps of the batch's size, or {"mask":
        padded maps, "size": each one's (h, w)} when their sizes differ (`data.segmentation`)."""
        del kept_classes
        probs = probabilities(model, images)
        if not isinstance(labels, dict):
            return self._scores(tf.image.resize(probs, tf.shape(labels)[1:3], method="bilinear"), labels)
        side = tf.shape(labels["mask"])[1]

        def one(args):
            p, mask, size = args
            p = tf.image.resize(p[None], size, method="bilinear")  # back to this label's own size
            p = tf.pad(p, [[0, 0], [0, side - size[0]], [0, side - size[1]], [0, 0]])  # on its padded mask
            return {k: v[0] for k, v in self._scores(p, mask[None]).items()}

        signature = {"intersection": tf.TensorSpec((self.num_classes,), tf.int64),
                     "union": tf.TensorSpec((self.num_classes,), tf.int64),
                     "pixel_correct": tf.TensorSpec((), tf.int64), "pixels": tf.TensorSpec((), tf.int64),
                     "confidence": tf.TensorSpec((), tf.float32)}
        return tf.map_fn(one, (probs, labels["mask"], labels["size"]), fn_output_signature=signature)

    def _scores(self, probs, labels):
        """The records of probabilities at the labels' size and the labels (B, H, W)."""
        labels = tf.cast(labels, tf.int32)
        predicted = tf.argmax(probs, axis=-1, output_type=tf.int32)
        valid = labels != IGNORE_LABEL
        c = self.num_classes
        pred_hot = tf.one_hot(predicted, c, dtype=tf.int64) * tf.cast(valid, tf.int64)[..., None]
        true_hot = tf.one_hot(tf.where(valid, labels, -1), c, dtype=tf.int64)
        intersection = tf.reduce_sum(pred_hot * true_hot, axis=(1, 2))
        union = tf.reduce_sum(pred_hot + true_hot, axis=(1, 2)) - intersection
        pixels = tf.reduce_sum(tf.cast(valid, tf.int64), axis=(1, 2))
        confidence = tf.reduce_sum(tf.reduce_max(probs, axis=-1) * tf.cast(valid, tf.float32), axis=(1, 2))
        return {"intersection": intersection, "union": union, "pixel_correct": tf.reduce_sum(intersection, axis=1),
                "pixels": pixels, "confidence": confidence / tf.maximum(tf.cast(pixels, tf.float32), 1.0)}

    def tally(self, so_far, record, labels):
        """The running sums with one more batch: per-class (intersection, union)."""
        del labels
        i, u = so_far or (0, 0)
        return i + np.asarray(record["intersection"]).sum(axis=0), u + np.asarray(record["union"]).sum(axis=0)

    def value(self, tally):
        """mIoU (a fraction) of the running sums."""
        return float(mean_iou(*tally)) / 100.0 if tally else 0.0

    def table(self, resolution, index, labels, record, meta, kept_classes):
        del labels, kept_classes
        n = len(index)
        confidence = np.asarray(record["confidence"], np.float32).reshape(n, 1)
        return SegmentationTable(
            resolution=resolution, index=index, labels=np.zeros(n, np.int64), top_ids=np.zeros((n, 1), np.int32),
            top_probs=confidence, meta=meta,
            **{k: _fixed(record[k], np.int64, self.num_classes if k in ("intersection", "union") else None)
               for k in ("intersection", "union", "pixel_correct", "pixels")})


def _fixed(array, dtype, k=None):
    array = np.asarray(array)
    if array.size == 0:
        return np.zeros((0,) if k is None else (0, k), dtype)
    return array.astype(dtype)


def task_of(model, num_classes=None):
    """The task of `model`: segmentation when its output is a class map (rank 4), else
    classification."""
    if len(model.outputs[0].shape) == 4:
        return Segmentation(num_classes or model.outputs[0].shape[-1])
    return Classification()
