"""Tables of a sweep, made from the prediction cache alone (never by running a model).

Units: `macs` are multiply-accumulates per image, `flops` = 2 x MACs; accuracies are percent;
`flops_drop_pct` is the percent of the native FLOPs saved; `top1_drop`/`topK_drop` are
percentage points lost against the native row (positive = worse than native). The K of the
top-K columns is the one actually measured: `SweepCache.effective_topk` (a 2-class model's
"top-5" is top-2, and its columns say `top2`).
"""

import csv
import io

import numpy as np

from reswise_tf.evaluation.predictions import SegmentationTable, SweepCache
from reswise_tf.utils.formatting import drop, signed
from reswise_tf.utils.units import FLOPS_PER_MAC, flops_drop_pct

BASE_COLUMNS = ("resolution", "macs", "flops", "flops_drop_pct")


def as_cache(tables):
    """A `SweepCache` from one, or from {resolution: PredictionTable}."""
    return tables if isinstance(tables, SweepCache) else SweepCache(tables)


def segmentation_rows(tables, bn_tables=None):
    """One row per resolution of a segmentation sweep, highest first: mIoU and pixel accuracy
    (%), their drops against native (points), and each class's IoU (`iou_<class>`, %). With
    `bn_tables` (BatchNorm re-estimated), `miou_bn` and `miou_bn_drop` against the original
    model's native mIoU."""
    cache = as_cache(tables)
    native = cache.tables[cache.native]
    rows = []
    for r in cache.resolutions:
        t = cache.tables[r]
        bn = {}
        if bn_tables is not None:
            value = bn_tables[r].miou()
            bn = {"miou_bn": round(value, 4), "miou_bn_drop": round(native.miou() - value, 4)}
        rows.append({
            **_cost_columns(cache, r),
            "miou": round(t.miou(), 4),
            "pixel_acc": round(t.pixel_accuracy(), 4),
            "miou_drop": round(native.miou() - t.miou(), 4),
            "pixel_acc_drop": round(native.pixel_accuracy() - t.pixel_accuracy(), 4),
            **bn,
            **_run_columns(t),
            **{f"iou_{c}": round(float(v), 4) for c, v in enumerate(t.class_iou())},
        })
    return rows


def _cost_columns(cache, r):
    macs = cache.tables[r].meta["macs"]
    return {"resolution": r, "macs": macs, "flops": FLOPS_PER_MAC * macs,
            "flops_drop_pct": round(flops_drop_pct(cache.macs[r], cache.macs[cache.native]), 4)}


def _run_columns(t):
    seconds, timed = t.meta.get("forward_seconds", 0.0), t.meta.get("timed_images", 0)
    return {
        "num_examples": len(t),
        "num_skipped": t.meta.get("num_skipped", 0),
        "images_per_sec": round(timed / seconds, 2) if seconds else float("nan"),
        "precision": t.meta.get("precision", "float32"),
        **({"head": t.meta["head"]} if t.meta.get("head") else {}),
        **({"resize": t.meta["resize"]} if t.meta.get("resize") else {}),
    }


def sweep_rows(tables, topk=5, bn_tables=None, reference_tables=None):
    """One row (dict) per resolution, highest first, from a `SweepCache` (or its tables).

    The native row is the cache's native resolution. With `bn_tables` (the same sweep with
    BatchNorm re-estimated), adds `top1_bn`, `topK_bn` and their drops, measured against the
    *original* model's native accuracy. With `reference_tables` (the same model in float32, for
    a reduced-precision sweep), adds `top1_float32`, `top1_agreement_pct` (share of images with
    the same top-1 class as in float32) and `top1_vs_float32` (points, this precision minus
    float32).
    """
    cache = as_cache(tables)
    if isinstance(cache.tables[cache.native], SegmentationTable):
        return segmentation_rows(cache, bn_tables)
    k = cache.effective_topk(topk)
    native = cache.tables[cache.native]
    ref = {1: native.accuracy(1), k: native.accuracy(k)}
    rows = []
    for r in cache.resolutions:
        t = cache.tables[r]
        row = {
            **_cost_columns(cache, r),
            "top1": round(t.accuracy(1), 4),
            f"top{k}": round(t.accuracy(k), 4),
            "top1_drop": round(ref[1] - t.accuracy(1), 4),
            f"top{k}_drop": round(ref[k] - t.accuracy(k), 4),
            **_run_columns(t),
        }
        if reference_tables is not None:
            row.update(agreement(t, as_cache(reference_tables).tables[r]))
        if bn_tables is not None:
            b = as_cache(bn_tables).tables[r]
            row.update({
                "top1_bn": round(b.accuracy(1), 4),
                f"top{k}_bn": round(b.accuracy(k), 4),
                "top1_bn_drop": round(ref[1] - b.accuracy(1), 4),
                f"top{k}_bn_drop": round(ref[k] - b.accuracy(k), 4),
            })
        rows.append(row)
    return rows


def agreement(table, reference):
    """How a reduced-precision table agrees with the float32 one of the same images."""
    same = float(np.mean(table.top_ids[:, 0] == reference.top_ids[:, 0])) if len(table) else float("nan")
    return {
        "top1_float32": round(reference.accuracy(1), 4),
        "top1_agreement_pct": round(100.0 * same, 4),
        "top1_vs_float32": round(table.accuracy(1) - reference.accuracy(1), 4),
    }


def topk_of(rows):
    """The K of the `topK` accuracy column of sweep rows (None for a segmentation sweep)."""
    return next((int(key[3:]) for key in rows[0] if key.startswith("top") and key[3:].isdigit() and key != "top1"),
                None)


def flops_rows(macs_by_resolution, native_resolution):
    """`resolution,macs,flops,flops_drop_pct` rows from {resolution: MACs}."""
    native = macs_by_resolution[native_resolution]
    return [
        {"resolution": r, "macs": m, "flops": FLOPS_PER_MAC * m, "flops_drop_pct": round(flops_drop_pct(m, native), 4)}
        for r, m in sorted(macs_by_resolution.items(), reverse=True)
    ]


def to_csv(rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def read_csv(path):
    """Rows of a results.csv with numbers parsed."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return [{k: _number(v) for k, v in row.items()} for row in rows]


def _number(text):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def to_markdown(rows, title):
    """The thesis's table layout: Resolution | FLOPs Drop (%) | Accuracy Drop (%) (for a
    segmentation sweep: mIoU and pixel accuracy, then each class's IoU per resolution).

    Drops against the native row as the thesis prints them: 29.26 means 29.26 % fewer FLOPs,
    2.70 means 2.70 points less accuracy; a negative drop is a gain.
    """
    if "miou" in rows[0]:
        return _segmentation_markdown(rows, title)
    k = topk_of(rows)
    bn, latency, agree = "top1_bn" in rows[0], "speedup_b1" in rows[0], "top1_agreement_pct" in rows[0]
    header = (
        f"| Resolution | FLOPs Drop (%) | Top-1 Accuracy (%) | Top-1 Accuracy Drop (%) "
        f"| Top-{k} Accuracy (%) | Top-{k} Accuracy Drop (%) | Images/s |"
    )
    if bn:
        header += f" Top-1 Drop, BN re-estimated | Top-{k} Drop, BN re-estimated |"
    if latency:
        header += " Speed-up, batch 1 | Speed-up, batch 32 |"
    if agree:
        header += " Top-1 same as float32 (%) | Top-1 vs float32 (points) |"
    lines = [f"### {title}", "", header, "|" + "---:|" * header.count(" |")]
    for row in rows:
        r = row["resolution"]
        line = (
            f"| {r}x{r} | {drop(row['flops_drop_pct'])} | {row['top1']:.2f} | "
            f"{drop(row['top1_drop'])} | {row[f'top{k}']:.2f} | "
            f"{drop(row[f'top{k}_drop'])} | {row['images_per_sec']:.1f} |"
        )
        if bn:
            line += f" {drop(row['top1_bn_drop'])} | {drop(row[f'top{k}_bn_drop'])} |"
        if latency:
            line += f" {row['speedup_b1']:.2f}x | {row['speedup_b32']:.2f}x |"
        if agree:
            line += f" {row['top1_agreement_pct']:.2f} | {signed(row['top1_vs_float32'])} |"
        lines.append(line)
    return "\n".join(lines + ["", _notes(rows)]) + "\n"


def _segmentation_markdown(rows, title):
    bn = "miou_bn" in rows[0]
    header = ("| Resolution | FLOPs Drop (%) | mIoU (%) | mIoU Drop (%) | Pixel Accuracy (%) | Pixel Accuracy Drop (%) "
              "| Images/s |" + (" mIoU Drop, BN re-estimated |" if bn else ""))
    lines = [f"### {title}", "", header, "|" + "---:|" * header.count(" |")]
    for row in rows:
        r = row["resolution"]
        lines.append(f"| {r}x{r} | {drop(row['flops_drop_pct'])} | {row['miou']:.2f} | {drop(row['miou_drop'])} | "
                     f"{row['pixel_acc']:.2f} | {drop(row['pixel_acc_drop'])} | {row['images_per_sec']:.1f} |"
                     + (f" {drop(row['miou_bn_drop'])} |" if bn else ""))
    classes = sorted(int(key[4:]) for key in rows[0] if key.startswith("iou_"))
    lines += ["", "Per-class IoU (%) by resolution:", "",
              "| Resolution | " + " | ".join(f"class {c}" for c in classes) + " |", "|" + "---:|" * (len(classes) + 1)]
    for row in rows:
        lines.append(f"| {row['resolution']} | " + " | ".join(_value(row[f"iou_{c}"]) for c in classes) + " |")
    notes = _notes(rows).replace("images. MACs", "images. The predicted probabilities are resized back to each "
                                 "label's own resolution before scoring (the label is never resized). mIoU: each "
                                 "class's IoU over every image, averaged over the classes present. MACs")
    notes = notes.replace("(small images, at most 64 px: no crop)", "(no crop: it would cut the label)")
    return "\n".join(lines + ["", notes]) + "\n"


def _value(x):
    return "-" if x != x else f"{x:.2f}"  # nan: a class neither predicted nor labelled


def _notes(rows):
    """The line under a table: images, units, and how the images were made."""
    text = f"{rows[0]['num_examples']} images. MACs counted exactly per image; FLOPs = 2 x MACs."
    precision = rows[0].get("precision", "float32")
    if precision != "float32":
        text += f" Computed in {precision} (mixed precision: float32 weights and probabilities)."
    if rows[0].get("head") == "adaptive_pool":
        text += (" Classifier head adapted (--head=adaptive_pool): below the native size the last feature map "
                 "is average-pooled to its trained grid before the flattened classifier.")
    resize = str(rows[0].get("resize", ""))
    if resize == "direct":
        text += " Images resized directly to each size (small images, at most 64 px: no crop)."
    elif resize.startswith("crop"):
        text += f" Images: shorter side resized to size / {resize.split()[-1]} and centre-cropped (ImageNet's evaluation)."
    if rows[0].get("num_skipped"):
        text += f" {rows[0]['num_skipped']} unreadable image(s) skipped (listed in skipped.txt)."
    return text
