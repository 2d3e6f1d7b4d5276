"""Sweep tables: the native row, signed drops, and top-k columns named for the k measured."""

import numpy as np
import pytest

from reswise_tf.evaluation import PredictionTable
from reswise_tf.report import tables
from tests.helpers import make_table


def _two_class_tables():
    """A 2-class model: its cache keeps 2 classes, so its "top-5" is top-2 (always 100 %)."""
    labels = np.array([0, 1, 1, 0])
    ids = np.array([[0, 1], [0, 1], [1, 0], [1, 0]], np.int32)
    probs = np.full((4, 2), 0.5, np.float32)
    meta = {"macs": 400, "native_resolution": 16, "forward_seconds": 2.0, "timed_images": 8}
    return {16: PredictionTable(16, np.arange(4), labels, ids, probs, meta),
            8: PredictionTable(8, np.arange(4), labels, ids[::-1].copy(), probs, {**meta, "macs": 100})}


def test_topk_columns_are_named_for_the_k_used():
    rows = tables.sweep_rows(_two_class_tables(), topk=5)
    assert "top5" not in rows[0] and rows[0]["top2"] == 100.0 and rows[0]["top1"] == 50.0
    assert rows[1]["top2_drop"] == 0.0 and rows[1]["flops_drop_pct"] == 75.0
    assert rows[0]["images_per_sec"] == 4.0
    text = tables.to_markdown(rows, "two classes")
    assert "| Top-2 Accuracy (%) |" in text and "Top-5" not in text
    assert "| 8x8 | 75.00 | 50.00 | 0.00 | 100.00 | 0.00 | 4.0 |" in text


def test_native_row_is_the_caches_native_resolution_not_the_largest():
    t = {r: make_table(r, [0, 0], [0, 1 if r == 24 else 0], [0.9, 0.9], r * r, native=16) for r in (24, 16, 8)}
    rows = tables.sweep_rows(t, topk=1)
    assert [row["resolution"] for row in rows] == [24, 16, 8]
    native = rows[1]
    assert native["top1_drop"] == 0.0 and native["flops_drop_pct"] == 0.0
    assert rows[0]["top1_drop"] == pytest.approx(50.0) and rows[0]["flops_drop_pct"] < 0


def test_flops_rows():
    assert tables.flops_rows({32: 400, 16: 100}, 32)[1] == {"resolution": 16, "macs": 100, "flops": 200,
                                                             "flops_drop_pct": 75.0}
