"""A sweep's figures draw its rows and nothing else: each curve's points are the rows' values,
the native point is marked in red, BatchNorm columns get their own curve, a segmentation sweep
plots mIoU and pixel accuracy, the speed-up figure's ideal line is the FLOPs ratio, segmentation examples draw each map with the
ignore label blank; figures are written whole (PNG) and closed."""

import numpy as np

from reswise_tf.report import figures

ROWS = [{"resolution": r, "flops": 2e9 * (r / 32) ** 2, "flops_drop_pct": 100 * (1 - (r / 32) ** 2),
         "top1": a, "top5": b, "top1_bn": a + 1, "top5_bn": b + 1, "speedup_b1": s, "speedup_b32": s * 1.2}
        for r, a, b, s in [(32, 90.0, 99.0, 1.0), (24, 80.0, 97.0, 1.5), (16, 50.0, 85.0, 2.5)]]


def _lines(ax):
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()}


def test_accuracy_against_resolution_draws_the_rows_with_native_in_red():
    fig = figures.plot_accuracy_vs_resolution(ROWS, 32)
    ax = fig.axes[0]
    lines = _lines(ax)
    assert lines["top1"] == ([32, 24, 16], [90.0, 80.0, 50.0])
    assert lines["top5"] == ([32, 24, 16], [99.0, 97.0, 85.0])
    assert lines["top1, BN re-estimated"][1] == [91.0, 81.0, 51.0]
    red = [line for line in ax.get_lines() if line.get_color() == "red"]
    assert sorted((list(line.get_xdata()), list(line.get_ydata())) for line in red) == [([32], [90.0]), ([32], [99.0])]
    figures.pyplot().close(fig)


def test_accuracy_against_flops_is_in_gflops_labelled_by_resolution():
    fig = figures.plot_accuracy_vs_flops(ROWS)
    ax = fig.axes[0]
    np.testing.assert_allclose(_lines(ax)["top1"][0], [2.0, 1.125, 0.5])
    assert [t.get_text() for t in ax.texts] == ["32", "24", "16"]
    figures.pyplot().close(fig)


def test_a_segmentation_sweep_plots_miou_and_pixel_accuracy():
    rows = [{"resolution": r, "flops": 1e9, "miou": m, "pixel_acc": p} for r, m, p in [(64, 55.0, 90.0), (32, 40.0, 85.0)]]
    fig = figures.plot_accuracy_vs_resolution(rows, 64)
    lines = _lines(fig.axes[0])
    assert lines["miou"][1] == [55.0, 40.0] and lines["pixel_acc"][1] == [90.0, 85.0]
    assert fig.axes[0].get_ylabel() == "mIoU, pixel accuracy (%)"
    figures.pyplot().close(fig)


def test_the_speedup_figure_sets_the_measured_beside_the_flops_ratio():
    fig = figures.plot_speedup_vs_flops(ROWS)
    lines = _lines(fig.axes[0])
    np.testing.assert_allclose(lines["FLOPs ratio (ideal)"][1], [1.0, 32**2 / 24**2, 4.0])
    np.testing.assert_allclose(lines["measured, batch 32"][1], [1.2, 1.8, 3.0])
    figures.pyplot().close(fig)


def test_save_figure_writes_a_whole_png(tmp_path):
    fig = figures.plot_sweep(ROWS, 32, "t")
    assert len(fig.axes) == 2
    path = tmp_path / "sweep.png"
    figures.save_figure(fig, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and sorted(p.name for p in tmp_path.iterdir()) == ["sweep.png"]
    assert not figures.pyplot().fignum_exists(fig.number)


def test_segmentation_examples_show_image_label_and_each_sizes_map_with_ignored_pixels_blank():
    masks = [np.array([[0, 1], [2, 255]], np.uint8)]
    predictions = {64: [np.array([[0, 1], [2, 2]])], 32: [np.array([[0, 0], [0, 0]])]}
    fig = figures.plot_segmentation_examples([np.zeros((2, 2, 1), np.uint8)], masks, predictions, 3)
    assert [ax.get_title() for ax in fig.axes] == ["image", "label", "64x64", "32x32"]
    label = fig.axes[1].get_images()[0].get_array()
    assert label.mask.tolist() == [[False, False], [False, True]]  # the ignore label is not a class colour
    np.testing.assert_array_equal(fig.axes[2].get_images()[0].get_array(), predictions[64][0])
    figures.pyplot().close(fig)

