"""Tables and figures of a sweep, made from the prediction cache alone (never by running a model).

Units: `macs` are multiply-accumulates per image, `flops` = 2 x MACs; accuracies are percent;
`flops_drop_pct` is the percent of the native FLOPs saved; `top1_drop`/`top5_drop` are
percentage points lost against the native row (positive = worse than native).
"""

import csv
import io
import os

from reswise_tf.predictions import atomic_write_text

BASE_COLUMNS = ("resolution", "macs", "flops", "flops_drop_pct")


def sweep_rows(tables, native_resolution, topk=5, bn_tables=None):
    """One row (dict) per resolution, highest first, from {resolution: PredictionTable}.

    With `bn_tables` (the same sweep with BatchNorm re-estimated), adds `top1_bn`, `top5_bn`
    and their drops, measured against the *original* model's native accuracy.
    """
    if native_resolution not in tables:
        raise ValueError(
            f"The native resolution {native_resolution} is not among the evaluated ones: "
            f"{sorted(tables, reverse=True)}"
        )
    native = tables[native_resolution]
    native_macs = native.meta["macs"]
    # A cache narrower than k holds every class (a model with fewer than k classes): clip k.
    k = min(topk, native.top_ids.shape[1])
    ref = {1: native.accuracy(1), topk: native.accuracy(k)}
    rows = []
    for r in sorted(tables, reverse=True):
        t = tables[r]
        top1, topk_acc = t.accuracy(1), t.accuracy(k)
        seconds, timed = t.meta.get("forward_seconds", 0.0), t.meta.get("timed_images", 0)
        rows.append(
            {
                "resolution": r,
                "macs": t.meta["macs"],
                "flops": 2 * t.meta["macs"],
                "flops_drop_pct": round(100.0 * (1.0 - t.meta["macs"] / native_macs), 4),
                "top1": round(top1, 4),
                f"top{topk}": round(topk_acc, 4),
                "top1_drop": round(ref[1] - top1, 4),
                f"top{topk}_drop": round(ref[topk] - topk_acc, 4),
                "num_examples": len(t),
                "num_skipped": t.meta.get("num_skipped", 0),
                "images_per_sec": round(timed / seconds, 2) if seconds else float("nan"),
            }
        )
        if bn_tables is not None:
            b = bn_tables[r]
            rows[-1].update(
                {
                    "top1_bn": round(b.accuracy(1), 4),
                    f"top{topk}_bn": round(b.accuracy(k), 4),
                    "top1_bn_drop": round(ref[1] - b.accuracy(1), 4),
                    f"top{topk}_bn_drop": round(ref[topk] - b.accuracy(k), 4),
                }
            )
    return rows


def flops_rows(macs_by_resolution, native_resolution):
    """`resolution,macs,flops,flops_drop_pct` rows from {resolution: MACs}."""
    native = macs_by_resolution[native_resolution]
    return [
        {
            "resolution": r,
            "macs": m,
            "flops": 2 * m,
            "flops_drop_pct": round(100.0 * (1.0 - m / native), 4),
        }
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


def to_markdown(rows, title, topk=5):
    """The thesis's table layout: Resolution | FLOPs Drop (%) | Accuracy Drop (%).

    Drops are shown as signed changes against the native row, as the thesis prints them
    (-29.26 means 29.26% fewer FLOPs; -2.70 means 2.70 points less accuracy).
    """
    bn = "top1_bn" in rows[0]
    latency = "speedup_b1" in rows[0]
    header = (
        f"| Resolution | FLOPs Drop (%) | Top-1 Accuracy (%) | Top-1 Accuracy Drop (%) "
        f"| Top-{topk} Accuracy (%) | Top-{topk} Accuracy Drop (%) | Images/s |"
    )
    if bn:
        header += f" Top-1 Drop, BN re-estimated | Top-{topk} Drop, BN re-estimated |"
    if latency:
        header += " Speed-up, batch 1 | Speed-up, batch 32 |"
    lines = [f"### {title}", "", header, "|" + "---:|" * header.count(" |")]
    for row in rows:
        r = row["resolution"]
        line = (
            f"| {r}x{r} | {_signed(-row['flops_drop_pct'])} | {row['top1']:.2f} | "
            f"{_signed(-row['top1_drop'])} | {row[f'top{topk}']:.2f} | "
            f"{_signed(-row[f'top{topk}_drop'])} | {row['images_per_sec']:.1f} |"
        )
        if bn:
            line += f" {_signed(-row['top1_bn_drop'])} | {_signed(-row[f'top{topk}_bn_drop'])} |"
        if latency:
            line += f" {row['speedup_b1']:.2f}x | {row['speedup_b32']:.2f}x |"
        lines.append(line)
    n = rows[0]["num_examples"]
    lines += ["", f"{n} images. MACs counted exactly per image; FLOPs = 2 x MACs."]
    return "\n".join(lines) + "\n"


def _signed(x):
    x = 0.0 if abs(x) < 5e-3 else x
    return f"{x:+.2f}" if x else "0.00"


def plot_accuracy_vs_resolution(rows, path, native_resolution, title="", topk=5):
    """Accuracy against resolution, the native point in red (as the thesis's figures)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    res = [row["resolution"] for row in rows]
    for key, style in (("top1", "o-"), (f"top{topk}", "s--")):
        ax.plot(res, [row[key] for row in rows], style, color="tab:blue", label=key)
        if f"{key}_bn" in rows[0]:
            ax.plot(res, [row[f"{key}_bn"] for row in rows], style, color="tab:green", label=f"{key}, BN re-estimated")
        for row in rows:
            if row["resolution"] == native_resolution:
                ax.plot([native_resolution], [row[key]], style[0], color="red", markersize=9)
    ax.set_xlabel("input resolution (px)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title or "Accuracy against resolution (native in red)")
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


def plot_accuracy_vs_flops(rows, path, title="", topk=5):
    """Accuracy against FLOPs per image (GFLOPs), each point labelled with its resolution."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    gflops = [row["flops"] / 1e9 for row in rows]
    for key, style in (("top1", "o-"), (f"top{topk}", "s--")):
        ax.plot(gflops, [row[key] for row in rows], style, label=key)
    for g, row in zip(gflops, rows):
        ax.annotate(str(row["resolution"]), (g, row["top1"]), textcoords="offset points", xytext=(3, 3))
    ax.set_xlabel("GFLOPs per image (2 x MACs)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title or "Accuracy against FLOPs")
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


def plot_speedup_vs_flops(rows, path, title=""):
    """Measured speed-up (batch 1 and 32) against FLOPs drop, beside what FLOPs alone predict."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
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
    _save(fig, path)


def write_reports(rows, output_dir, native_resolution, title, topk=5):
    """Writes results.csv, results.md and the figures into `output_dir`."""
    atomic_write_text(os.path.join(output_dir, "results.csv"), to_csv(rows))
    atomic_write_text(os.path.join(output_dir, "results.md"), to_markdown(rows, title, topk))
    plot_accuracy_vs_resolution(
        rows, os.path.join(output_dir, "accuracy_vs_resolution.png"), native_resolution, title, topk
    )
    plot_accuracy_vs_flops(rows, os.path.join(output_dir, "accuracy_vs_flops.png"), title, topk)
    if "speedup_b1" in rows[0]:
        plot_speedup_vs_flops(rows, os.path.join(output_dir, "flops_drop_vs_speedup.png"), title)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    tmp = path + ".tmp.png"
    fig.tight_layout()
    fig.savefig(tmp, dpi=120)
    _pyplot().close(fig)
    os.replace(tmp, path)
