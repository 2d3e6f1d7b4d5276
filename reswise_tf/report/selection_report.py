"""The report of a selection study: selection.csv/.md, pareto.png and the cascade's files.

Units as in `tables`: accuracies in percent, drops in points against native on the same images
(positive = loss), FLOPs = 2 x MACs, `flops_drop_pct` = percent of native FLOPs saved.
"""

import json
import os

from reswise_tf.report import figures, tables
from reswise_tf.selection import oracle
from reswise_tf.selection.cascade.config import CascadeConfig
from reswise_tf.utils.files import atomic_save_npz, atomic_write_text
from reswise_tf.utils.formatting import drop
from reswise_tf.utils.units import FLOPS_PER_MAC


def to_markdown(report, title):
    """Table 6 of the thesis, extended: one row per selector and setting, then the random
    selector's trial statistics; drops as the thesis prints them (positive = a loss: FLOPs saved,
    accuracy lost; negative = a gain)."""
    pool = report.pool
    names = [name for name, _, _ in report.results[0].scores]
    where = (
        f"All rows are measured on the evaluation part ({report.split.describe()}); cascade "
        "stages, thresholds and temperatures were fitted on the calibration part only."
        if report.split is not None
        else f"All rows are measured on all {len(pool)} images."
    )
    lines = [
        f"### {title}",
        "",
        where,
        "",
        "| Selector | Setting | FLOPs Drop (%) | " + " | ".join(f"{label(n)} (%) | {label(n)} Drop (%)" for n in names)
        + " |",
        "|---|---|---:|" + "---:|" * (2 * len(names)),
    ]
    for r in report.results:
        name = r.selector if r.deployable else f"{r.selector} (not deployable)"
        lines.append(f"| {name} | {r.setting} | {drop(r.flops_drop_pct)} | "
                     + " | ".join(f"{value:.2f} | {drop(d)}" for _, value, d in r.scores) + " |")
    if report.table6 is not None:
        lines += _random_trials_table(report.table6, len(pool))
    fits = [r.extra["fit"] for r in report.results if "fit" in r.extra]
    if fits:
        lines += ["", "Cascade fits on the calibration part:", ""]
        for fit in fits:
            c = fit.calibration
            lines.append(
                f"- {fit.target}: {fit.config.describe(pool.describe)}; on {c['num_examples']} calibration "
                f"images {c['metric']} {c['accuracy']:.2f}% ({drop(c['drop'])} points), "
                f"FLOPs {drop(c['flops_drop_pct'])}%"
            )
    lines += [
        "",
        f"{len(pool)} images; {_reference(pool)}; mean FLOPs per image = 2 x mean MACs, "
        "counting every pass a cascade ran. The oracle reads the labels: an upper bound. "
        "cascade_bound is the best cascade (of the stage sets searched) at a FLOPs budget if it "
        "knew which images to send on (it reads the labels): no confidence threshold beats it.",
    ]
    return "\n".join(lines) + "\n"


def _reference(pool):
    """"native 32px" for one sweep, else the stage the drops are measured against."""
    if pool.single:
        return f"native {pool.reference}px"
    return f"drops against {pool.describe(pool.reference)} (the reference stage)"


# How each kind of row is drawn: (selector, marker, colour, size, legend label).
_MARKERS = (
    ("committee", "X", "tab:brown", 8, "committee of natives"),
    ("cascade", "D", "darkgreen", 7, "cascade (fitted)"),
    (oracle.BOUND, "P", "tab:purple", 8, "cascade, perfect decisions (not deployable)"),
    ("oracle", "*", "tab:red", 12, "oracle (not deployable)"),
)


def label(name):
    """A column's words: "Top-1 Accuracy", "Top-5 Accuracy", "mIoU", "Pixel Accuracy"."""
    if name.startswith("top"):
        return f"Top-{name[3:]} Accuracy"
    return {"miou": "mIoU", "pixel_acc": "Pixel Accuracy"}.get(name, name)


def _random_trials_table(r, num_images):
    """The random selector's trial statistics in the thesis's Table 6 layout, on all images (as
    the thesis: it had no calibration split)."""
    lines = ["", f"#### Random selection: {r.setting} (Table 6 layout, all {num_images} images)", "",
             "| Against native | Mean | Std | Max | Min |", "|---|---:|---:|---:|---:|"]
    rows = [(f"{label(n)} Drop (%)", f"{n}_drop", d) for n, _, d in r.scores]
    for text, key, mean in (*rows, ("FLOPs Drop (%)", "flops_drop_pct", r.flops_drop_pct)):
        s = r.stats
        lines.append(f"| {text} | {drop(mean)} | {s[key + '_std']:.2f} | "
                     f"{drop(s[key + '_max'])} | {drop(s[key + '_min'])} |")
    return lines + ["", "Max and min are over trials; std is the sample std. Drops are positive for a loss."]


def plot_pareto(report, path, title=""):
    """Accuracy against mean GFLOPs per image: fixed resolutions (one line per model), the
    committees, random (mean +- std over trials), the cascade's curve over its thresholds (its
    calibration frontier), the fitted cascades and the oracle."""
    plt = figures.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, (name, _, _) in enumerate(report.results[0].scores[:2]):
        _pareto_panel(axes[i], report, i, label(name))
    fig.suptitle(title or "Accuracy against mean FLOPs per image")
    figures.save_figure(fig, path)


# Colours of the fixed points' lines, one per model: none of the selectors' colours (_MARKERS,
# random's orange, the cascade curve's green).
_MODEL_COLORS = ("tab:blue", "tab:gray", "tab:cyan", "tab:pink", "tab:olive", "black")


def _pareto_panel(ax, report, column, text):
    native_flops = FLOPS_PER_MAC * report.pool.macs[report.pool.reference]
    name = report.results[0].scores[column][0]

    def acc(r):
        return r.scores[column][1]

    def gflops(r):
        return FLOPS_PER_MAC * r.mean_macs / 1e9

    fixed = [r for r in report.results if r.selector == "fixed"]
    by_model = {}
    for r in fixed:  # one line per model ("model@28"); one sweep: one line of resolutions
        by_model.setdefault(r.setting.rpartition("@")[0], []).append(r)
    for i, (model, rows) in enumerate(by_model.items()):
        ax.plot([gflops(r) for r in rows], [acc(r) for r in rows], "o-", color=_MODEL_COLORS[i % len(_MODEL_COLORS)],
                label=f"{model} at each resolution" if model else "fixed resolution")
        for r in rows:
            ax.annotate(r.setting.rpartition("@")[2], (gflops(r), acc(r)), textcoords="offset points",
                        xytext=(3, 3), fontsize=7)
    if report.curve:
        pts = sorted(report.curve, key=gflops)
        ax.plot([gflops(r) for r in pts], [acc(r) for r in pts], ".-", color="tab:green",
                label="cascade (over thresholds)")
    for r in report.results:
        if r.selector == "random":
            drop_key = f"{name}_drop_std"
            ax.errorbar([gflops(r)], [acc(r)], yerr=[r.stats[drop_key]],
                        xerr=[r.stats["flops_drop_pct_std"] / 100 * native_flops / 1e9], fmt="s",
                        color="tab:orange", capsize=3, label="random (mean +- std)")
        for selector, marker, color, size, legend in _MARKERS:
            if r.selector == selector:
                ax.plot([gflops(r)], [acc(r)], marker, color=color, markersize=size, label=legend)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), fontsize=7)
    ax.set_xlabel("mean GFLOPs per image (2 x MACs)")
    ax.set_ylabel(f"{text} (%)")
    ax.grid(alpha=0.3)


def write_reports(report, output_dir, title):
    """Writes selection.csv, selection.md, pareto.png, and (with a cascade) cascade_curve.csv,
    cascade_fits.json and selection_split.npz (dataset indices of both parts)."""
    os.makedirs(output_dir, exist_ok=True)
    rows = [r.as_row() for r in report.results]
    atomic_write_text(os.path.join(output_dir, "selection.csv"), tables.to_csv(rows))
    atomic_write_text(os.path.join(output_dir, "selection.md"), to_markdown(report, title))
    plot_pareto(report, os.path.join(output_dir, "pareto.png"), title)
    written = ["selection.csv", "selection.md", "pareto.png"]
    if report.curve:
        curve_rows = [r.as_row() for r in report.curve]
        atomic_write_text(
            os.path.join(output_dir, "cascade_curve.csv"), tables.to_csv(curve_rows)
        )
        written.append("cascade_curve.csv")
    fits = [(r, r.extra["fit"]) for r in report.results if "fit" in r.extra]
    if fits:
        doc = {
            "split": report.split.describe(),
            "fits": [
                {
                    "target": fit.target,
                    "setting": r.setting,
                    "alternative": bool(r.extra.get("alternative")),
                    "config": fit.config.to_dict(),
                    "calibration": fit.calibration,
                    "evaluation": r.as_row(),
                }
                for r, fit in fits
            ],
        }
        atomic_write_text(
            os.path.join(output_dir, "cascade_fits.json"), json.dumps(doc, indent=2) + "\n"
        )
        written.append("cascade_fits.json")
    if report.split is not None:
        index = report.pool.index
        atomic_save_npz(
            os.path.join(output_dir, "selection_split.npz"),
            {
                "calibration_index": index[report.split.calibration],
                "evaluation_index": index[report.split.evaluation],
            },
        )
        written.append("selection_split.npz")
    return written


def load_fitted_configs(output_dir):
    """{target: CascadeConfig} of the cascades chosen over every stage, from the
    cascade_fits.json that `write_reports` wrote."""
    path = os.path.join(output_dir, "cascade_fits.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No cascade_fits.json in {output_dir!r}: run experiments.select with a cascade first"
        )
    with open(path) as f:
        doc = json.load(f)
    # Alternatives (a model's own cascade, the same search without the learned gate) share the
    # target of the cascade chosen over every stage: that one is the target's.
    return {fit["target"]: CascadeConfig.from_dict(fit["config"]) for fit in doc["fits"] if not fit.get("alternative")}
