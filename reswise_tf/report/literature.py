"""The thesis's Table 7: the ResNet50 pruning methods it lists (with its numbers) and its own
ResNet50 rows, with ours beside them (lower resolution per image, no retraining).

Pruning methods retrain the pruned network; our rows do not train at all. Each drop is against
the method's own baseline as the thesis prints it: FLOPs drop in percent, accuracy drop in
points (positive = worse, negative = better than the baseline). The thesis's ImageNet accuracy
is top-5: our rows show the top-K drop of the sweep (K = 5 unless the cache has fewer classes)
in the same column, and top-1 in the CSV.
"""

import os

from reswise_tf.evaluation.store import read_fingerprint
from reswise_tf.report import tables, thesis
from reswise_tf.utils.files import atomic_write_text
from reswise_tf.utils.formatting import drop

TITLE = "ResNet50 pruning methods against lower input resolution (Table 7)"

OUR_SELECTORS = ("fixed", "random", "cascade")


def comparison_rows(selection_rows, topk=5):
    """Rows of Table 7: the thesis's literature rows, its own rows, then ours from
    `selection.csv` rows (fixed resolutions below native, random, cascade; the oracle is left
    out: not deployable).

    Every row: source (`thesis: literature`, `thesis`, `ours`), method, flops_drop_pct,
    accuracy_drop (the thesis's; ours: top-K), top1_drop (ours only), retrained, reference.
    """
    rows = [_row("thesis: literature", m, f, a, True, "as listed in the thesis's Table 7")
            for m, f, a in thesis.TABLE7_PRUNING]
    rows += [_row("thesis", m, f, a, False, "the thesis (top-5, all 50,000 ImageNet validation images)")
             for m, f, a in thesis.TABLE7_THESIS]
    for row in selection_rows:
        if row["selector"] not in OUR_SELECTORS or (row["selector"] == "fixed" and abs(row["flops_drop_pct"]) < 1e-9):
            continue
        name = f"resolution {row['setting']}" if row["selector"] == "fixed" else f"{row['selector']}: {row['setting']}"
        rows.append({**_row("ours", name, row["flops_drop_pct"], row.get(f"top{topk}_drop"), False,
                            f"this work ({row['part']} part, {row['num_examples']} images, top-{topk})"),
                     "top1_drop": row["top1_drop"]})
    return rows


def _row(source, method, flops_drop, accuracy_drop, retrained, reference):
    return {"source": source, "method": method, "flops_drop_pct": flops_drop, "accuracy_drop": accuracy_drop,
            "top1_drop": None, "retrained": retrained, "reference": reference}


def to_markdown(rows, title, note=""):
    """Table 7 layout: Method | FLOPs Drop (%) | Accuracy Drop (%) | Retrained | Source."""
    lines = [f"### {title}", "", "| Method | FLOPs Drop (%) | Accuracy Drop (%) | Retrained | Source |",
             "|---|---:|---:|:---:|---|"]
    for row in rows:
        lines.append(f"| {row['method']} | {_value(row['flops_drop_pct'])} | {_value(row['accuracy_drop'])} | "
                     f"{'yes' if row['retrained'] else 'no'} | {row['reference']} |")
    lines += ["", "Drops as the thesis prints them (positive = a loss). The thesis's rows are top-5 on ImageNet; "
              "- = not in the copy of the thesis this project has. Our rows change only the input resolution "
              "(no training)."]
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def _value(value):
    return "-" if value is None or value == "" else drop(float(value))


def to_csv(rows):
    return tables.to_csv([{k: ("" if v is None else v) for k, v in row.items()} for row in rows])


def write_comparison(results_dir, output_dir=None, title=TITLE):
    """Reads `results_dir/selection.csv` (from experiments.select), writes comparison.csv and
    comparison.md into `output_dir` (default `results_dir`); returns the Markdown."""
    if not os.path.isdir(results_dir):
        raise FileNotFoundError(f"--results_dir {results_dir!r} does not exist")
    path = os.path.join(results_dir, "selection.csv")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No selection.csv in {results_dir!r}: run python -m experiments.select "
            f"--results_dir={results_dir} --selector=all first"
        )
    selection = tables.read_csv(path)
    rows = comparison_rows(selection, topk=tables.topk_of(selection))
    output_dir = output_dir or results_dir
    atomic_write_text(os.path.join(output_dir, "comparison.csv"), to_csv(rows))
    text = to_markdown(rows, title, describe_sweep(results_dir))
    atomic_write_text(os.path.join(output_dir, "comparison.md"), text)
    return text


def describe_sweep(results_dir):
    """One line naming the model and data of our rows (from the cache's fingerprint)."""
    info = read_fingerprint(results_dir)
    if info is None:
        return f"Our rows: the sweep in {results_dir}. The thesis's rows are ResNet50 on ImageNet."
    identity = info.get("identity", {})
    model = identity.get("arch") or identity.get("model_path", {}).get("path", "a model")
    return (
        f"Our rows: {model} on {info.get('dataset', '?')} ({info.get('split', '?')} split), "
        f"native {info.get('native_resolution', '?')}px. The thesis's rows are ResNet50 on ImageNet: compare like "
        "with like."
    )
