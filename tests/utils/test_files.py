"""Atomic writes: the whole new file or the old one, the mode `open()` would give, and no
temporary file left behind when the write fails."""

import os
import stat

import numpy as np
import pytest

from reswise_tf.utils.checks import check_choice, check_fraction, check_positive_int
from reswise_tf.utils.files import atomic_path, atomic_save_npz, atomic_write_text
from reswise_tf.utils.formatting import drop, signed


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_text_and_npz_get_the_umask_mode(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(str(tmp_path / "a" / "t.txt"), "hello\n")
        atomic_save_npz(str(tmp_path / "a.npz"), {"x": np.arange(3)})
    finally:
        os.umask(old)
    assert (tmp_path / "a" / "t.txt").read_text() == "hello\n"
    assert _mode(tmp_path / "a" / "t.txt") == _mode(tmp_path / "a.npz") == 0o640
    with np.load(tmp_path / "a.npz") as saved:
        assert saved["x"].tolist() == [0, 1, 2]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "results.csv"
    atomic_write_text(str(path), "old\n")
    with pytest.raises(RuntimeError), atomic_path(str(path)) as tmp:
        assert tmp.endswith(".csv") and os.path.dirname(tmp) == str(tmp_path)
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("interrupted")
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["results.csv"]


def test_the_temporary_keeps_a_double_extension(tmp_path):
    with atomic_path(str(tmp_path / "model.weights.h5")) as tmp:
        assert tmp.endswith(".weights.h5")
        open(tmp, "w").close()
    assert os.listdir(tmp_path) == ["model.weights.h5"]


def test_checks_name_the_argument_and_the_choices():
    assert check_positive_int(3, "trials") == 3
    for bad in (0, -1, 2.0, True, "3"):
        with pytest.raises(ValueError, match=f"`trials` should be a positive integer. Received trials={bad!r}"):
            check_positive_int(bad, "trials")
    assert check_positive_int(None, "num_examples", allow_none=True) is None
    with pytest.raises(ValueError, match=r"Unknown metric 'top3'. Available: top1, top5"):
        check_choice("top3", ("top1", "top5"), "metric")
    with pytest.raises(ValueError, match=r"`crop_pct` should be in \(0, 1\]. Received crop_pct=0"):
        check_fraction(0, "crop_pct")
    with pytest.raises(ValueError, match=r"should be in \(0, 1\)"):
        check_fraction(1.0, "calibration_fraction", include_high=False)


def test_signed_changes():
    assert [signed(x) for x in (29.2595, -2.7, 0.004, -0.004, 0.0)] == ["+29.26", "-2.70", "0.00", "0.00", "0.00"]


def test_drops_print_as_the_thesis_prints_them():
    # Positive for a loss ("182x182 29.26 2.70"), negative for a gain (Table 7's "-0.28").
    assert [drop(x) for x in (29.2595, 2.7, -0.28, 0.004, -0.004)] == ["29.26", "2.70", "-0.28", "0.00", "0.00"]
