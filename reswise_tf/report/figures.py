"""Figures of a sweep, from its rows alone. Each `plot_*` draws on a matplotlib `ax` (a new
figure when None) and returns the figure; `save_figure` writes one atomically."""

import numpy as np

from reswise_tf.report.tables import topk_of
from reswise_tf.utils.files import atomic_path


def pyplot():
    """matplotlib.pyplot with the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _axes(ax, figsize=(6, 4)):
    if ax is not None:
        return ax.figure, ax
    return pyplot().subplots(figsize=figsize)


def save_figure(fig, path, dpi=120):
    """Writes `fig` to `path` (PNG) atomically and closes it."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    pyplot().close(fig)


def quality_columns(rows):
    """The two quality columns of sweep rows and the axis label: top-1 and top-k accuracy, or
    a segmentation sweep's mIoU and pixel accuracy."""
    if "miou" in rows[0]:
        return ("miou", "pixel_acc"), "mIoU, pixel accuracy (%)"
    return ("top1", f"top{topk_of(rows)}"), "accuracy (%)"


def plot_accuracy_vs_resolution(rows, native_resolution, title="", ax=None):
    """Accuracy (or mIoU) against resolution, the native point in red (as the thesis's figures)."""
    fig, ax = _axes(ax)
    res = [row["resolution"] for row in rows]
    keys, label = quality_columns(rows)
    for key, style in zip(keys, ("o-", "s--")):
        ax.plot(res, [row[key] for row in rows], style, color="tab:blue", label=key)
        if f"{key}_bn" in rows[0]:
            ax.plot(res, [row[f"{key}_bn"] for row in rows], style, color="tab:green", label=f"{key}, BN re-estimated")
        for row in rows:
            if row["resolution"] == native_resolution:
                ax.plot([native_resolution], [row[key]], style[0], color="red", markersize=9)
    ax.set_xlabel("input resolution (px)")
    ax.set_ylabel(label)
    ax.set_title(title or "Accuracy against resolution (native in red)")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_accuracy_vs_flops(rows, title="", ax=None):
    """Accuracy against FLOPs per image (GFLOPs), each point labelled with its resolution."""
    fig, ax = _axes(ax)
    gflops = [row["flops"] / 1e9 for row in rows]
    keys, label = quality_columns(rows)
    for key, style in zip(keys, ("o-", "s--")):
        ax.plot(gflops, [row[key] for row in rows], style, label=key)
    for g, row in zip(gflops, rows):
        ax.annotate(str(row["resolution"]), (g, row[keys[0]]), textcoords="offset points", xytext=(3, 3))
    ax.set_xlabel("GFLOPs per image (2 x MACs)")
    ax.set_ylabel(label)
    ax.set_title(title or "Accuracy against FLOPs")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_speedup_vs_flops(rows, title="", ax=None):
    """Measured speed-up (batch 1 and 32) against FLOPs drop, beside what FLOPs alone predict."""
    fig, ax = _axes(ax)
    drops = [row["flops_drop_pct"] for row in rows]
    ax.plot(drops, [100.0 / (100.0 - d) for d in drops], "k:", label="FLOPs ratio (ideal)")
    for b, style in (("1", "o-"), ("32", "s--")):
        ax.plot(drops, [row[f"speedup_b{b}"] for row in rows], style, label=f"measured, batch {b}")
    for d, row in zip(drops, rows):
        ax.annotate(str(row["resolution"]), (d, row["speedup_b1"]), textcoords="offset points", xytext=(3, 3))
    ax.set_xlabel("FLOPs drop (%)")
    ax.set_ylabel("speed-up over native (x)")
    ax.set_title(title or "Measured speed-up against FLOPs drop")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_sweep(rows, native_resolution, title=""):
    """Both sweep figures side by side in one figure (for notebooks)."""
    fig, axes = pyplot().subplots(1, 2, figsize=(11, 4))
    plot_accuracy_vs_resolution(rows, native_resolution, title, ax=axes[0])
    plot_accuracy_vs_flops(rows, title, ax=axes[1])
    fig.tight_layout()
    return fig


def plot_segmentation_examples(images, masks, predictions, num_classes, title=""):
    """A grid: per image (a row) the image, its label map and the predicted map at each size
    (`predictions`: {resolution: [maps at the label's size]}, highest first); one colour per
    class, pixels not scored (the ignore label, 255) white."""
    plt = pyplot()
    sizes = list(predictions)
    fig, axes = plt.subplots(len(images), 2 + len(sizes), figsize=(2.0 * (2 + len(sizes)), 2.0 * len(images)),
                             squeeze=False)
    cmap = plt.get_cmap("tab20", max(num_classes, 2)).with_extremes(bad="white")

    def show(ax, mask):
        ax.imshow(np.ma.masked_greater_equal(mask, num_classes), cmap=cmap, vmin=-0.5, vmax=max(num_classes, 2) - 0.5,
                  interpolation="nearest")

    for i, (image, mask) in enumerate(zip(images, masks)):
        axes[i, 0].imshow(image.squeeze(), cmap="gray" if image.shape[-1] == 1 else None)
        show(axes[i, 1], mask)
        for j, size in enumerate(sizes):
            show(axes[i, 2 + j], predictions[size][i])
    for j, text in enumerate(["image", "label", *[f"{s}x{s}" for s in sizes]]):
        axes[0, j].set_title(text)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    return fig

