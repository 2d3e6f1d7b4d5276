"""The per-image selection study of one sweep: selectors -> rows -> selection.csv/.md, pareto.png.

Only the prediction cache is read (`predictions/res_<R>.npz`); no model is run. When a cascade
is among the selectors, the images are split into a calibration part (where the cascade is
fitted) and an evaluation part, and every row is measured on the evaluation part, so all rows
compare on the same images; otherwise rows are measured on all images. The fixed resolutions
are always included as the reference.

Units as in `reporting`: accuracies in percent, drops in points against native on the same
images (positive = loss), FLOPs = 2 x MACs, `flops_drop_pct` = percent of native FLOPs saved.
"""

import dataclasses
import json
import os

import numpy as np

from reswise_tf import reporting
from reswise_tf.predictions import atomic_save_npz, atomic_write_text
from reswise_tf.selectors import cascade, get_selector, oracle, random_choice
from reswise_tf.selectors.common import SweepCache, effective_topk, split_rows
from reswise_tf.selectors.confidence import CONFIDENCES

ORDER = ("fixed", "random", "cascade", "oracle")


@dataclasses.dataclass
class SelectionReport:
    """Everything `write_reports` writes.

    Attributes:
      results: `SelectionResult`s, fixed rows first.
      curve: the cascade's calibration Pareto front measured on the reported part.
      split: the calibration/evaluation `Split`, or None (rows on all images).
      cache: the `SweepCache`.
      topk: the k of the top-k columns.
    """

    results: list
    curve: list
    split: object
    cache: SweepCache
    topk: int


def parse_flops_budget(value):
    """A fraction of native FLOPs, or 'random' (the random selector's mean FLOPs)."""
    if value is None or value == "random":
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(
            "`flops_budget` should be a fraction of the native FLOPs in (0, 1] or 'random'. "
            f"Received flops_budget={value!r}"
        ) from None


def run_selection(
    tables,
    selectors=ORDER,
    *,
    topk=5,
    choices=None,
    trials=10,
    seed=0,
    max_drops=(),
    flops_budgets=(),
    stages=None,
    max_stages=3,
    confidence="auto",
    thresholds="auto",
    metric="top1",
    calibration_fraction=0.5,
    split_seed=0,
    stratify=True,
):
    """Runs `selectors` over the cached tables of one sweep.

    Args:
      tables: {resolution: PredictionTable}.
      selectors: names from `SELECTORS` ("all" = every one).
      topk: the k of the second accuracy column (lowered to the classes kept in the cache).
      choices, trials, seed: the random selector's resolution set (default: native and the
        four next sizes), number of trials and seed.
      max_drops, flops_budgets: one cascade per target; budgets are fractions of native FLOPs
        or "random" (the random selector's expected mean FLOPs). Default: max_drop 0.5, plus
        the random selector's FLOPs when the random selector runs too.
      stages, max_stages, confidence, thresholds, metric: the cascade's search space (the
        confidence kind, and "shared" or "per_class" thresholds; "auto" searches all) and the
        accuracy (top1 or top5) its max_drop is measured in.
      calibration_fraction, split_seed, stratify: the calibration/evaluation split.
    """
    cache = SweepCache(tables)
    topk = effective_topk(cache, topk)
    names = list(ORDER) if "all" in selectors else list(selectors)
    specs = [get_selector(name) for name in names]
    names = [n for n in ORDER if n in names or n == "fixed"]
    if confidence != "auto" and confidence not in CONFIDENCES:
        raise ValueError(
            f"Unknown confidence {confidence!r}. Available: auto, {', '.join(CONFIDENCES)}"
        )
    if thresholds != "auto" and thresholds not in cascade.THRESHOLD_KINDS:
        raise ValueError(
            f"Unknown thresholds {thresholds!r}. Available: auto, {', '.join(cascade.THRESHOLD_KINDS)}"
        )
    threshold_kinds = cascade.THRESHOLD_KINDS if thresholds == "auto" else (thresholds,)
    if metric not in ("top1", "top5"):
        raise ValueError(f"Unknown metric {metric!r}. Available: top1, top5")
    metric_k = 1 if metric == "top1" else topk
    choices = list(choices) if choices else random_choice.default_choices(cache)
    cache.check_resolutions(choices, "choices")
    split = None
    rows, part = np.arange(len(cache)), "all"
    if any(spec.needs_calibration for spec in specs):
        labels = cache.labels if stratify else None
        split = split_rows(
            len(cache), calibration_fraction=calibration_fraction, seed=split_seed, labels=labels
        )
        rows, part = split.evaluation, "evaluation"
    targets = [{"max_drop": d} for d in max_drops]
    budgets = [parse_flops_budget(b) for b in flops_budgets]
    for target in targets:
        cascade.check_target(**target)
    for b in budgets:
        if b != "random":
            cascade.check_target(flops_budget=b)
    if not targets and not budgets:
        targets.append({"max_drop": 0.5})
        if "random" in names:
            budgets.append("random")
    matched = None
    for b in budgets:
        if b == "random":
            b = matched = random_choice.expected_macs(cache, choices) / cache.macs[cache.native]
        targets.append({"flops_budget": b})
    results, curve = [], []
    for name in names:
        spec = get_selector(name)
        if name == "random":
            results += spec.run(
                cache, rows, part=part, topk=topk, choices=choices, trials=trials, seed=seed
            )
        elif name == "cascade":
            results += spec.run(
                cache,
                rows,
                part=part,
                topk=topk,
                calibration_rows=split.calibration,
                targets=targets,
                stages=stages,
                max_stages=max_stages,
                confidence=confidence,
                metric_k=metric_k,
                thresholds=threshold_kinds,
            )
            fit = results[-1].extra["fit"]
            curve = cascade.curve(cache, fit, rows, part=part, topk=topk)
        else:
            results += spec.run(cache, rows, part=part, topk=topk)
        if name == "oracle":  # the best any cascade could do at each FLOPs budget
            for target in targets:
                if "flops_budget" in target:
                    results += oracle.cascade_bound(
                        cache,
                        rows,
                        part=part,
                        flops_budget=target["flops_budget"],
                        topk=topk,
                        metric_k=metric_k,
                        max_stages=max_stages,
                    )
    if matched is not None:  # say where the budget came from
        label = f"flops_budget={matched:.4g}"
        results = [
            dataclasses.replace(r, setting=r.setting.replace(label, f"{label}, random's FLOPs"))
            if r.selector in ("cascade", oracle.BOUND)
            else r
            for r in results
        ]
    return SelectionReport(results=results, curve=curve, split=split, cache=cache, topk=topk)


def to_markdown(report, title):
    """Table 6 of the thesis, extended: one row per selector and setting, then the random
    selector's trial statistics; drops signed as the thesis prints them (negative = less)."""
    k, cache = report.topk, report.cache
    where = (
        f"All rows are measured on the evaluation part ({report.split.describe()}); cascade "
        "stages, thresholds and temperatures were fitted on the calibration part only."
        if report.split is not None
        else f"All rows are measured on all {len(cache)} images."
    )
    lines = [
        f"### {title}",
        "",
        where,
        "",
        f"| Selector | Setting | FLOPs Drop (%) | Top-1 Accuracy (%) | Top-1 Accuracy Drop (%) "
        f"| Top-{k} Accuracy (%) | Top-{k} Accuracy Drop (%) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in report.results:
        name = r.selector if r.deployable else f"{r.selector} (not deployable)"
        lines.append(
            f"| {name} | {r.setting} | {_signed(-r.flops_drop_pct)} | {r.top1:.2f} | "
            f"{_signed(-r.top1_drop)} | {r.topk_acc:.2f} | {_signed(-r.topk_drop)} |"
        )
    for r in (r for r in report.results if r.selector == "random"):
        lines += [
            "",
            f"#### Random selection: {r.setting} (Table 6 layout)",
            "",
            "| Change against native | Mean | Std | Max | Min |",
            "|---|---:|---:|---:|---:|",
        ]
        for label, key, mean in (
            ("Top-1 Accuracy Drop (%)", "top1_drop", r.top1_drop),
            (f"Top-{k} Accuracy Drop (%)", f"top{k}_drop", r.topk_drop),
            ("FLOPs Drop (%)", "flops_drop_pct", r.flops_drop_pct),
        ):
            s = r.stats
            lines.append(
                f"| {label} | {_signed(-mean)} | {s[key + '_std']:.2f} | "
                f"{_signed(-s[key + '_min'])} | {_signed(-s[key + '_max'])} |"
            )
        lines += ["", "Max and min are over trials of the signed change; std is the sample std."]
    fits = [r.extra["fit"] for r in report.results if "fit" in r.extra]
    if fits:
        lines += ["", "Cascade fits on the calibration part:", ""]
        for fit in fits:
            c = fit.calibration
            lines.append(
                f"- {fit.target}: {fit.config.describe()}; on {c['num_examples']} calibration "
                f"images {c['metric']} {c['accuracy']:.2f}% ({_signed(-c['drop'])} points), "
                f"FLOPs {_signed(-c['flops_drop_pct'])}%"
            )
    lines += [
        "",
        f"{len(cache)} images; native {cache.native}px; mean FLOPs per image = 2 x mean MACs, "
        "counting every pass a cascade ran. The oracle reads the labels: an upper bound. "
        "cascade_bound is the best cascade (of the stage sets searched) at a FLOPs budget if it "
        "knew which images to send on (it reads the labels): no confidence threshold beats it.",
    ]
    return "\n".join(lines) + "\n"


def _signed(x):
    x = 0.0 if abs(x) < 5e-3 else x
    return f"{x:+.2f}" if x else "0.00"


def plot_pareto(report, path, title=""):
    """Accuracy against mean GFLOPs per image: fixed resolutions, random (mean +- std over
    trials), the cascade's curve over its thresholds, the fitted cascades and the oracle."""
    plt = reporting._pyplot()
    k, native_flops = report.topk, 2 * report.cache.macs[report.cache.native]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label in ((axes[0], "top1", "top-1"), (axes[1], "topk", f"top-{k}")):

        def acc(r, key=key):
            return r.top1 if key == "top1" else r.topk_acc

        def gflops(r):
            return 2 * r.mean_macs / 1e9

        fixed = [r for r in report.results if r.selector == "fixed"]
        ax.plot(
            [gflops(r) for r in fixed],
            [acc(r) for r in fixed],
            "o-",
            color="tab:blue",
            label="fixed resolution",
        )
        for r in fixed:
            ax.annotate(
                r.setting,
                (gflops(r), acc(r)),
                textcoords="offset points",
                xytext=(3, 3),
                fontsize=7,
            )
        if report.curve:
            pts = sorted(report.curve, key=gflops)
            ax.plot(
                [gflops(r) for r in pts],
                [acc(r) for r in pts],
                ".-",
                color="tab:green",
                label="cascade (over thresholds)",
            )
        for r in report.results:
            if r.selector == "random":
                drop_key = "top1_drop_std" if key == "top1" else f"top{k}_drop_std"
                ax.errorbar(
                    [gflops(r)],
                    [acc(r)],
                    yerr=[r.stats[drop_key]],
                    xerr=[r.stats["flops_drop_pct_std"] / 100 * native_flops / 1e9],
                    fmt="s",
                    color="tab:orange",
                    capsize=3,
                    label="random (mean +- std)",
                )
            elif r.selector == "cascade":
                ax.plot(
                    [gflops(r)],
                    [acc(r)],
                    "D",
                    color="darkgreen",
                    markersize=7,
                    label="cascade (fitted)",
                )
            elif r.selector == oracle.BOUND:
                ax.plot(
                    [gflops(r)],
                    [acc(r)],
                    "P",
                    color="tab:purple",
                    markersize=8,
                    label="cascade, perfect decisions (not deployable)",
                )
            elif r.selector == "oracle":
                ax.plot(
                    [gflops(r)],
                    [acc(r)],
                    "*",
                    color="tab:red",
                    markersize=12,
                    label="oracle (not deployable)",
                )
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=7)
        ax.set_xlabel("mean GFLOPs per image (2 x MACs)")
        ax.set_ylabel(f"{label} accuracy (%)")
        ax.grid(alpha=0.3)
    fig.suptitle(title or "Accuracy against mean FLOPs per image")
    reporting._save(fig, path)


def write_reports(report, output_dir, title):
    """Writes selection.csv, selection.md, pareto.png, and (with a cascade) cascade_curve.csv,
    cascade_fits.json and selection_split.npz (dataset indices of both parts)."""
    os.makedirs(output_dir, exist_ok=True)
    rows = [r.as_row() for r in report.results]
    atomic_write_text(os.path.join(output_dir, "selection.csv"), reporting.to_csv(rows))
    atomic_write_text(os.path.join(output_dir, "selection.md"), to_markdown(report, title))
    plot_pareto(report, os.path.join(output_dir, "pareto.png"), title)
    written = ["selection.csv", "selection.md", "pareto.png"]
    if report.curve:
        curve_rows = [r.as_row() for r in report.curve]
        atomic_write_text(
            os.path.join(output_dir, "cascade_curve.csv"), reporting.to_csv(curve_rows)
        )
        written.append("cascade_curve.csv")
    fits = [(r, r.extra["fit"]) for r in report.results if "fit" in r.extra]
    if fits:
        doc = {
            "split": report.split.describe(),
            "fits": [
                {
                    "target": fit.target,
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
        index = report.cache.index
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
    """{target: CascadeConfig} from the cascade_fits.json that `write_reports` wrote."""
    path = os.path.join(output_dir, "cascade_fits.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No cascade_fits.json in {output_dir!r}: run experiments.select with a cascade first"
        )
    with open(path) as f:
        doc = json.load(f)
    return {fit["target"]: cascade.CascadeConfig.from_dict(fit["config"]) for fit in doc["fits"]}
