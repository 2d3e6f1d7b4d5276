"""TensorFlow's start-up lines, hidden: every entry point (`python -m experiments.X`,
`python -m benchmarks.X`) imports this first, through its package's `__init__`.

On import TensorFlow's C++ runtime prints lines a user cannot act on (absl's "All log messages
before absl::InitializeLog()...", the CUDA probes of a machine without a GPU, "failed call to
cuInit", the CPU-instructions notice). They are written to file descriptor 2 while TensorFlow
is imported and its devices are listed; if the import fails they are printed after all. Later
C++ log lines below ERROR are hidden too (`TF_CPP_MIN_LOG_LEVEL=2`); Python warnings still show.

`RESWISE_TF_LOGS=1` (or `--verbosity=1` or more on the command line) shows everything.
Libraries' absl INFO lines (TFDS: "Constructing tf.data.Dataset cifar10 for split test...") are
hidden too (`quiet_absl_info`, after the flags are parsed) unless `RESWISE_TF_LOGS=1` or the
command line asks for a verbosity that shows them (`--verbosity=0` or more).
"""

import os
import sys
import tempfile

ENV = "RESWISE_TF_LOGS"


def asked_verbosity(argv):
    """The `--verbosity`/`-v` given on the command line (None when not given or not a number)."""
    for arg in argv:
        for prefix in ("--verbosity=", "-v="):
            if arg.startswith(prefix):
                try:
                    return int(arg[len(prefix):])
                except ValueError:
                    return None
    return None


def wants_logs(argv, level):
    """Whether the user asked for log lines of absl verbosity `level` (1: TensorFlow's own
    start-up lines; 0: INFO lines): `RESWISE_TF_LOGS`, or a `--verbosity` of at least `level`."""
    if os.environ.get(ENV, "0") not in ("", "0"):
        return True
    verbosity = asked_verbosity(argv)
    return verbosity is not None and verbosity >= level


def wants_tf_logs(argv):
    """Whether the user asked for TensorFlow's own lines (env variable or --verbosity >= 1)."""
    return wants_logs(argv, 1)


def quiet_absl_info(argv=None):
    """Hides absl INFO lines of libraries (TFDS) unless asked for (call after flag parsing)."""
    if not wants_logs(sys.argv if argv is None else argv, 0):
        from absl import logging

        logging.set_verbosity(logging.WARNING)


def import_tensorflow_quietly(argv=None):
    """Imports TensorFlow (once) with its start-up lines captured instead of printed."""
    if "tensorflow" in sys.modules or wants_tf_logs(sys.argv if argv is None else argv):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    captured = tempfile.TemporaryFile()
    os.dup2(captured.fileno(), 2)
    try:
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probes happen here
    except BaseException:
        os.dup2(saved, 2)
        captured.seek(0)
        sys.stderr.write(captured.read().decode(errors="replace"))
        raise
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        captured.close()
