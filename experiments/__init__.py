"""Thin absl scripts over the library, run as `python -m experiments.NAME`."""

from experiments.quiet import import_tensorflow_quietly

import_tensorflow_quietly()
