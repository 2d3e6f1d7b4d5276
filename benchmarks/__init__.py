"""Speed measurements, run as `python -m benchmarks.NAME` (ratios measured side by side)."""

from experiments.quiet import import_tensorflow_quietly

import_tensorflow_quietly()
