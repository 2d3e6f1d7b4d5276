"""A one-line progress report for long steps: done of total, percent, speed, time left, and
named percentages (two decimals, e.g. a running accuracy). Speed and time left are measured
from the first update on: the first unit carries the step's start-up (building, tracing), which
would make the first estimates of a long step hours too long.

On a terminal the line is redrawn in place; elsewhere (a log file, CI) a line is printed at
most every `log_every` seconds and at the end, so logs stay short.
"""

import sys
import time


def format_seconds(seconds):
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


class Progress:
    """Reports `update(done, fields)` calls for a step of `total` units (0: unknown).

    Args:
      total: units in the whole step (images, batches, ...), 0 or None when unknown.
      unit: what is counted, e.g. "image".
      start: units already done before this run (a resumed step).
      stream: where to write (default: stdout).
      log_every: seconds between lines when the stream is not a terminal.
    """

    def __init__(self, total, *, unit="image", start=0, stream=None, log_every=30.0, clock=time.monotonic):
        self.total, self.start = total or 0, start
        self.units = unit + ("es" if unit.endswith(("s", "x", "ch", "sh")) else "s")
        self.stream = stream or sys.stdout
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.log_every, self.clock = log_every, clock
        self.began = self.clock()
        self.last_line = -float("inf")
        self.done = start
        self.first = None  # (time, done) of the first update: the origin of the speed

    def line(self, done, fields=()):
        """The progress line for `done` units, with `fields` [(name, fraction)] as percentages."""
        now = self.clock()
        elapsed = now - self.began
        rate = 0.0
        if self.first is not None and now > self.first[0]:
            rate = (done - self.first[1]) / (now - self.first[0])
        parts = [f"{done}/{self.total} {self.units}" if self.total else f"{done} {self.units}"]
        if self.total:
            parts.append(f"{100.0 * done / self.total:.2f}%")
        if rate > 0:
            parts.append(f"{rate:.1f} {self.units}/s")
            if self.total and done < self.total:
                parts.append(f"ETA {format_seconds((self.total - done) / rate)}")
        parts.append(f"elapsed {format_seconds(elapsed)}")
        parts += [f"{name} {100.0 * value:.2f}%" for name, value in fields]
        return "  ".join(parts)

    def update(self, done, fields=()):
        self.done = done
        now = self.clock()
        if self.first is None:
            self.first = (now, done)
        if self.tty:
            self.stream.write("\r" + self.line(done, fields) + "\033[K")
            self.stream.flush()
        elif now - self.last_line >= self.log_every:
            self.stream.write(self.line(done, fields) + "\n")
            self.stream.flush()
            self.last_line = now

    def close(self, fields=()):
        """The final line (always written)."""
        self.stream.write(("\r" if self.tty else "") + self.line(self.done, fields) + ("\033[K\n" if self.tty else "\n"))
        self.stream.flush()
