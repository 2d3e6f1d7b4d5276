"""The progress line: percent with two decimals, speed, time left, named percentages."""

import io

from reswise_tf.utils.progress import Progress, format_seconds


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_line_shows_percentages_with_two_decimals_and_the_time_left():
    clock = Clock()
    progress = Progress(1000, stream=io.StringIO(), clock=clock)
    clock.now = 2.0
    progress.update(50)  # the first update: the speed is measured from here, after start-up
    assert "images/s" not in progress.line(50) and "ETA" not in progress.line(50)
    clock.now = 10.0
    line = progress.line(250, [("top1@224", 0.0), ("top1@196", 0.876543)])
    assert line == ("250/1000 images  25.00%  25.0 images/s  ETA 0:00:30  elapsed 0:00:10  "
                    "top1@224 0.00%  top1@196 87.65%")


def test_a_resumed_step_counts_only_the_new_images_in_its_speed():
    clock = Clock()
    progress = Progress(100, start=60, stream=io.StringIO(), clock=clock)
    clock.now = 1.0
    progress.update(70)
    clock.now = 4.0
    assert "10.0 images/s" in progress.line(100) and "ETA" not in progress.line(100)


def test_a_log_file_gets_few_lines_and_always_the_last():
    clock, out = Clock(), io.StringIO()
    progress = Progress(0, unit="batch", stream=out, log_every=30, clock=clock)
    for t in range(0, 100, 5):
        clock.now = float(t)
        progress.update(t)
    progress.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 5 and lines[0].startswith("0 batches") and lines[-1].startswith("95 batches")


def test_format_seconds():
    assert [format_seconds(s) for s in (0, 59.6, 3725)] == ["0:00:00", "0:01:00", "1:02:05"]
