"""Published FLOPs/accuracy results of ResNet50 pruning methods on ImageNet, as data, and the
thesis's Table 7: those results beside ours (lower resolution per image, no retraining).

Each result is as its paper reports it, against its own unpruned baseline (their baselines
differ: ThiNet's is 72.88% top-1, the He et al. papers' 76.15%), so drops compare, absolute
accuracies do not. Pruning methods fine-tune or retrain the pruned network; our rows do not
train at all. A value a paper does not report is None. FLOPs drop is the percent of the
baseline's FLOPs removed; accuracy drops are points lost (positive = worse than baseline).
"""

import dataclasses
import json
import os

from reswise_tf.report import tables
from reswise_tf.utils.files import atomic_write_text
from reswise_tf.utils.formatting import signed

TITLE = "ResNet50 pruning methods against lower input resolution (Table 7)"


@dataclasses.dataclass(frozen=True)
class PruningResult:
    """One published result.

    Attributes:
      method: the method's name in its paper, e.g. "ThiNet-50".
      flops_drop_pct: percent of the baseline FLOPs removed.
      top1_drop, top5_drop: points lost against the paper's own baseline (None: not reported).
      baseline_top1, baseline_top5: the paper's unpruned accuracy, percent (None: not reported).
      reference: short reference, e.g. "Luo et al., ICCV 2017".
      citation: full citation.
    """

    method: str
    flops_drop_pct: float
    top1_drop: float | None
    top5_drop: float | None
    baseline_top1: float | None
    baseline_top5: float | None
    reference: str
    citation: str


_CP = (
    "He, Yihui; Zhang, Xiangyu; Sun, Jian. Channel Pruning for Accelerating Very Deep Neural "
    "Networks. IEEE International Conference on Computer Vision (ICCV), 2017. arXiv:1707.06168"
)
_THINET = (
    "Luo, Jian-Hao; Wu, Jianxin; Lin, Weiyao. ThiNet: A Filter Level Pruning Method for Deep "
    "Neural Network Compression. IEEE International Conference on Computer Vision (ICCV), 2017. "
    "arXiv:1707.06342"
)
_SFP = (
    "He, Yang; Kang, Guoliang; Dong, Xuanyi; Fu, Yanwei; Yang, Yi. Soft Filter Pruning for "
    "Accelerating Deep Convolutional Neural Networks. International Joint Conference on "
    "Artificial Intelligence (IJCAI), 2018. arXiv:1808.06866"
)
_NISP = (
    "Yu, Ruichi; Li, Ang; Chen, Chun-Fu; Lai, Jui-Hsin; Morariu, Vlad I.; Han, Xintong; Gao, "
    "Mingfei; Lin, Ching-Yung; Davis, Larry S. NISP: Pruning Networks using Neuron Importance "
    "Score Propagation. IEEE Conference on Computer Vision and Pattern Recognition (CVPR), 2018. "
    "arXiv:1711.05908"
)
_FPGM = (
    "He, Yang; Liu, Ping; Wang, Ziwei; Hu, Zhilan; Yang, Yi. Filter Pruning via Geometric Median "
    "for Deep Convolutional Neural Networks Acceleration. IEEE Conference on Computer Vision and "
    "Pattern Recognition (CVPR), 2019. arXiv:1811.00250"
)
_HRANK = (
    "Lin, Mingbao; Ji, Rongrong; Wang, Yan; Zhang, Yichen; Zhang, Baochang; Tian, Yonghong; "
    "Shao, Ling. HRank: Filter Pruning using High-Rank Feature Map. IEEE Conference on Computer "
    "Vision and Pattern Recognition (CVPR), 2020. arXiv:2002.10179"
)

# ResNet50 on ImageNet (ILSVRC-2012 validation, single 224x224 centre crop), sorted by FLOPs drop.
RESNET50_IMAGENET = tuple(
    sorted(
        (
            PruningResult(
                "ThiNet-70", 36.75, 0.84, 0.47, 72.88, 91.14, "Luo et al., ICCV 2017", _THINET
            ),
            PruningResult(
                "ThiNet-50", 55.83, 1.87, 1.12, 72.88, 91.14, "Luo et al., ICCV 2017", _THINET
            ),
            PruningResult("CP (2x)", 50.0, None, 1.40, None, 92.20, "He et al., ICCV 2017", _CP),
            PruningResult(
                "SFP (30%)", 41.8, 1.54, 0.81, 76.15, 92.87, "He et al., IJCAI 2018", _SFP
            ),
            PruningResult(
                "NISP-50-B", 44.01, 0.89, None, None, None, "Yu et al., CVPR 2018", _NISP
            ),
            PruningResult(
                "FPGM-only (30%)", 42.2, 0.56, 0.24, 76.15, 92.87, "He et al., CVPR 2019", _FPGM
            ),
            PruningResult(
                "FPGM-only (40%)", 53.5, 1.32, 0.55, 76.15, 92.87, "He et al., CVPR 2019", _FPGM
            ),
            PruningResult(
                "HRank (2.30B)", 43.76, 1.17, 0.54, 76.15, 92.87, "Lin et al., CVPR 2020", _HRANK
            ),
            PruningResult(
                "HRank (1.55B)", 62.10, 4.17, 1.86, 76.15, 92.87, "Lin et al., CVPR 2020", _HRANK
            ),
        ),
        key=lambda r: r.flops_drop_pct,
    )
)

OUR_SELECTORS = ("fixed", "random", "cascade")


def comparison_rows(selection_rows, literature=RESNET50_IMAGENET, topk=5):
    """Rows of Table 7: the literature's results, then ours from `selection.csv` rows
    (fixed resolutions below native, random, cascade; the oracle is left out: not deployable).

    Every row: source ("literature" / "ours"), method, flops_drop_pct, top1_drop, top5_drop
    (None where not reported), retrained, reference.
    """
    rows = [
        {
            "source": "literature",
            "method": r.method,
            "flops_drop_pct": r.flops_drop_pct,
            "top1_drop": r.top1_drop,
            f"top{topk}_drop": r.top5_drop if topk == 5 else None,
            "retrained": True,
            "reference": r.reference,
        }
        for r in literature
    ]
    for row in selection_rows:
        if row["selector"] not in OUR_SELECTORS or (
            row["selector"] == "fixed" and abs(row["flops_drop_pct"]) < 1e-9
        ):
            continue
        name = row["selector"] if row["selector"] != "fixed" else f"resolution {row['setting']}"
        rows.append(
            {
                "source": "ours",
                "method": name if row["selector"] == "fixed" else f"{name}: {row['setting']}",
                "flops_drop_pct": row["flops_drop_pct"],
                "top1_drop": row["top1_drop"],
                f"top{topk}_drop": row.get(f"top{topk}_drop"),
                "retrained": False,
                "reference": f"this work ({row['part']} part, {row['num_examples']} images)",
            }
        )
    return rows


def to_markdown(rows, title, note="", topk=5):
    """Table 7 layout: Method | FLOPs Drop (%) | Top-1 Drop | Top-5 Drop | Retrained | Source,
    changes signed as the thesis prints them (-2.70 = 2.70 points less accuracy)."""
    lines = [
        f"### {title}",
        "",
        f"| Method | FLOPs Drop (%) | Top-1 Accuracy Drop (%) | Top-{topk} Accuracy Drop (%) "
        "| Retrained | Source |",
        "|---|---:|---:|---:|:---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['method']} | {_change(row['flops_drop_pct'])} | {_change(row['top1_drop'])} | "
            f"{_change(row[f'top{topk}_drop'])} | {'yes' if row['retrained'] else 'no'} | "
            f"{row['reference']} |"
        )
    lines += [
        "",
        "Literature rows: ResNet50 on ImageNet as each paper reports it, against its own "
        "baseline; - = not reported. Our rows change only the input resolution (no training).",
    ]
    if note:
        lines += ["", note]
    refs = sorted({(r.reference, r.citation) for r in RESNET50_IMAGENET})
    lines += ["", "References:", ""] + [f"- {ref}: {cite}" for ref, cite in refs]
    return "\n".join(lines) + "\n"


def _change(value):
    if value is None or value == "":
        return "-"
    return signed(-float(value))


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
    drops = [k for k in selection[0] if k.startswith("top") and k.endswith("_drop")]
    topk = max(int(k[3:-5]) for k in drops)
    rows = comparison_rows(selection, topk=topk)
    output_dir = output_dir or results_dir
    atomic_write_text(os.path.join(output_dir, "comparison.csv"), to_csv(rows))
    text = to_markdown(rows, title, describe_sweep(results_dir), topk)
    atomic_write_text(os.path.join(output_dir, "comparison.md"), text)
    return text


def describe_sweep(results_dir):
    """One line naming the model and data of our rows (from predictions/sweep.json)."""
    path = os.path.join(results_dir, "predictions", "sweep.json")
    if not os.path.isfile(path):
        return f"Our rows: the sweep in {results_dir}. The literature is ResNet50 on ImageNet."
    with open(path) as f:
        info = json.load(f)
    identity = info.get("identity", {})
    model = identity.get("arch") or identity.get("model_path", {}).get("path", "a model")
    native = info.get("native_resolution", info.get("config", {}).get("native_resolution", "?"))
    return (
        f"Our rows: {model} on {info.get('dataset', '?')} ({info.get('split', '?')} split), "
        f"native {native}px. The literature is ResNet50 on ImageNet: compare like with like."
    )
