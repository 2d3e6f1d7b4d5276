"""The thesis's numbers as data, and our rows beside them size ratio by size ratio."""

from reswise_tf.models import registry
from reswise_tf.report import thesis


def test_the_thesis_tables_as_printed():
    assert thesis.CIFAR10_TABLES["nasnetmobile"][28] == (23.43, 1.92)
    assert thesis.CIFAR10_TABLES["mobilenetv2"][12] == (78.40, 81.83)
    assert thesis.IMAGENET_TABLES["resnet50"][182] == (29.26, 2.70)
    # Table 5's FLOPs column repeats Table 4's (ResNet101's).
    assert [f for f, _ in thesis.IMAGENET_TABLES["resnet152"].values()] == [
        f for f, _ in thesis.IMAGENET_TABLES["resnet101"].values()]
    assert thesis.TABLE6_RANDOM["resnet50"]["flops"].mean == 17.30
    assert thesis.TABLE6_RANDOM["resnet152"]["accuracy"].max < thesis.TABLE6_RANDOM["resnet152"]["accuracy"].min
    assert ("Guo, Ouyang, Xu 2020", 55.71, -0.28) in thesis.TABLE7_PRUNING and len(thesis.TABLE7_PRUNING) == 10
    assert thesis.TABLE7_THESIS[-1] == ("Random Resolution (thesis)", 17.30, 2.42)
    for native, tables in ((32, thesis.CIFAR10_TABLES), (224, thesis.IMAGENET_TABLES)):
        for table in tables.values():
            assert sorted(table, reverse=True) == registry.default_resolutions(native)[1:]


def test_our_rows_beside_the_thesis_by_size_ratio():
    rows = [{"resolution": r, "flops_drop_pct": f, "top1_drop": a}
            for r, f, a in ((64, 0.0, 0.0), (56, 17.83, 5.26), (48, 43.75, -0.4), (16, 93.75, 80.2))]
    text = thesis.by_ratio_markdown(rows, thesis.thesis_table("resnet152", 224), 224, "T")
    lines = text.splitlines()
    assert lines[4] == "| 0.875 | 196 | 56 | 14.25 | 17.83 | 2.86 | 5.26 |"
    assert lines[5] == "| 0.750 | 168 | 48 | 38.38 | 43.75 | 4.52 | -0.40 |"  # a gain is negative
    assert lines[6] == "| 0.250 | - | 16 | - | 93.75 | - | 80.20 |"  # no thesis size at this ratio
    assert thesis.thesis_table("resnet50", 64) is None
