"""The thesis's Table 7: its literature rows and its own rows as printed, then ours from
selection.csv rows (fixed sizes below native, random, cascade; never the native row or the
oracle), in the top-K column with top-1 beside, marked as not retrained."""

from reswise_tf.report import literature, thesis

SELECTION = [
    {"selector": "fixed", "setting": "32px", "part": "evaluation", "num_examples": 500, "flops_drop_pct": 0.0,
     "top1_drop": 0.0, "top5_drop": 0.0},
    {"selector": "fixed", "setting": "24px", "part": "evaluation", "num_examples": 500, "flops_drop_pct": 43.75,
     "top1_drop": 4.2, "top5_drop": 1.1},
    {"selector": "random", "setting": "choices 32,24", "part": "evaluation", "num_examples": 500,
     "flops_drop_pct": 21.9, "top1_drop": 2.0, "top5_drop": 0.6},
    {"selector": "oracle", "setting": "32,24", "part": "evaluation", "num_examples": 500, "flops_drop_pct": 30.0,
     "top1_drop": -5.0, "top5_drop": -2.0},
    {"selector": "cascade", "setting": "max_drop 0.5", "part": "evaluation", "num_examples": 500,
     "flops_drop_pct": 25.0, "top1_drop": 0.4, "top5_drop": 0.1},
]


def test_thesis_rows_come_first_as_printed_then_ours():
    rows = literature.comparison_rows(SELECTION, topk=5)
    sources = [r["source"] for r in rows]
    n_lit, n_thesis = len(thesis.TABLE7_PRUNING), len(thesis.TABLE7_THESIS)
    assert sources == ["thesis: literature"] * n_lit + ["thesis"] * n_thesis + ["ours"] * 3
    for row, (method, flops, acc) in zip(rows, thesis.TABLE7_PRUNING + thesis.TABLE7_THESIS):
        assert (row["method"], row["flops_drop_pct"], row["accuracy_drop"]) == (method, flops, acc)
    ours = rows[-3:]
    assert [r["method"] for r in ours] == ["resolution 24px", "random: choices 32,24", "cascade: max_drop 0.5"]
    assert [(r["flops_drop_pct"], r["accuracy_drop"], r["top1_drop"]) for r in ours] == [
        (43.75, 1.1, 4.2), (21.9, 0.6, 2.0), (25.0, 0.1, 0.4)]
    assert not any(r["retrained"] for r in ours) and all(r["retrained"] for r in rows[:n_lit])


def test_the_markdown_prints_drops_as_the_thesis_with_dashes_for_what_it_lacks():
    text = literature.to_markdown(literature.comparison_rows(SELECTION), "T7", note="our note")
    assert "| resolution 24px | 43.75 | 1.10 | no |" in text
    assert "| Random Resolution (thesis) | 17.30 | 2.42 | no |" in text
    assert any(line.split(" | ")[2] == "-" for line in text.splitlines() if "(thesis)" in line)
    assert text.rstrip().endswith("our note")
