"""The thesis's published numbers, as data, and our rows beside them on the same footing.

*Resolution-Wise Convolutional Neural Networks for Image Classification* (Nascimento, 2023).
Every drop as the thesis prints it: FLOPs drop in percent of the native FLOPs, accuracy drop in
points against native (top-1 for CIFAR-10, top-5 for ImageNet); positive is a loss, negative a
gain. A number the thesis has that this project's copy of it lacks is None.
"""

import dataclasses

from reswise_tf.utils.formatting import drop

# Tables 1-2: NASNet and MobileNetV2 trained on CIFAR-10 at 32 px; {resolution: (FLOPs drop,
# top-1 drop)}.
CIFAR10_NATIVE = 32
CIFAR10_TABLES = {
    "nasnetmobile": {28: (23.43, 1.92), 24: (43.74, 4.34), 20: (60.93, 13.32), 16: (74.99, 29.58), 12: (85.93, 52.40)},
    "mobilenetv2": {28: (7.32, 4.50), 24: (31.91, 10.95), 20: (37.28, 24.67), 16: (74.99, 70.29), 12: (78.40, 81.83)},
}

# Tables 3-5: ResNets with ImageNet weights at 224 px; {resolution: (FLOPs drop, top-5 drop)}.
# Table 5 (ResNet152) repeats Table 4's FLOPs column (ResNet101's) instead of its own.
IMAGENET_NATIVE = 224
IMAGENET_TABLES = {
    "resnet50": {210: (3.90, None), 196: (14.72, None), 182: (29.26, 2.70), 168: (38.49, None), 154: (49.50, None),
                 140: (57.26, None)},
    "resnet101": {210: (1.99, None), 196: (14.25, None), 182: (27.92, None), 168: (38.38, None), 154: (49.25, None),
                  140: (57.96, None)},
    "resnet152": {210: (1.99, 1.31), 196: (14.25, 2.86), 182: (27.92, 2.45), 168: (38.38, 4.52), 154: (49.25, 5.92),
                  140: (57.96, 9.51)},
}


@dataclasses.dataclass(frozen=True)
class Stats:
    """Mean, std, max, min over trials, as Table 6 prints them."""

    mean: float
    std: float
    max: float
    min: float


# Table 6: each image at a resolution drawn uniformly from {224, 210, 196, 182, 168}, on all
# 50,000 validation images: top-5 accuracy drop and FLOPs drop. ResNet152's max is below its
# min as printed.
TABLE6_RANDOM = {
    "resnet50": {"accuracy": Stats(2.42, 0.11, 2.54, 2.24), "flops": Stats(17.30, 0.04, 17.34, 17.25)},
    "resnet101": {"accuracy": Stats(2.09, 0.05, 2.16, 2.02), "flops": Stats(16.51, 0.03, 16.54, 16.47)},
    "resnet152": {"accuracy": Stats(2.04, 0.02, 2.02, 2.06), "flops": Stats(16.53, 0.04, 16.60, 16.50)},
}

# Table 7: ResNet50 pruning methods on ImageNet as the thesis lists them: (method, FLOPs drop,
# accuracy drop); then its own rows (Table 4's ResNet50 and Table 6's random selection).
TABLE7_PRUNING = (
    ("Hu et al. 2016", 19.69, 0.84),
    ("He, Zhang, Sun 2017", 20.00, 1.70),
    ("Wang et al. 2018", 20.00, 2.00),
    ("He et al. 2018", 20.00, 1.40),
    ("Li et al. 2019", 50.00, 0.36),
    ("He et al. 2019", 53.50, 0.55),
    ("Guo, Ouyang, Xu 2020", 55.71, -0.28),
    ("He et al. 2020", 60.80, 0.83),
    ("Luo, Wu 2020", 72.86, 1.41),
    ("Lin et al. 2020", 76.03, 3.29),
)
TABLE7_THESIS = tuple(
    [(f"Resolution {r}x{r} (thesis)", f, a) for r, (f, a) in IMAGENET_TABLES["resnet50"].items()]
    + [("Random Resolution (thesis)", 17.30, 2.42)]
)


def thesis_table(arch, native):
    """The thesis's {resolution: (FLOPs drop, accuracy drop)} for `arch` at `native`, or None."""
    tables = {CIFAR10_NATIVE: CIFAR10_TABLES, IMAGENET_NATIVE: IMAGENET_TABLES}.get(native, {})
    return tables.get(arch)


def by_ratio_markdown(rows, thesis, thesis_native, title, accuracy="top1"):
    """Our sweep `rows` beside a thesis table, size by size ratio (our size / our native against
    the thesis's size / its native): | Ratio | Thesis | Ours | FLOPs drop thesis | ours |
    accuracy drop thesis | ours |. Rows whose ratio the thesis has no size within 0.01 of show
    only ours."""
    native = next(row["resolution"] for row in rows if abs(row["flops_drop_pct"]) < 1e-12)
    lines = [f"### {title}", "",
             "| Size ratio | Thesis size | Our size | FLOPs Drop (%), thesis | ours "
             f"| Accuracy Drop (points), thesis | ours ({accuracy}) |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        r = row["resolution"]
        if r == native:
            continue
        ratio = r / native
        match = [t for t in thesis if abs(t / thesis_native - ratio) < 0.01]
        t_size, (t_flops, t_acc) = (match[0], thesis[match[0]]) if match else ("-", (None, None))
        lines.append(f"| {ratio:.3f} | {t_size} | {r} | {_value(t_flops)} | {drop(row['flops_drop_pct'])} | "
                     f"{_value(t_acc)} | {drop(row[f'{accuracy}_drop'])} |")
    return "\n".join(lines) + "\n"


def _value(x):
    return "-" if x is None else drop(x)
