"""TensorFlow's start-up lines, hidden: every entry point (`python -m experiments.X`,
`python -m benchmarks.X`) imports this first, through its package's `__init__`.

On import TensorFlow's C++ runtime prints lines a user cannot act on (absl's "All log messages
before absl::InitializeLog()...", the CUDA probes of a machine without a GPU, "failed call to
cuInit", the CPU-instructions notice). They are written to file descriptor 2 while TensorFlow
is imported and its devices are listed; if the import fails they are printed after all. Later
C++ log lines below ERROR are hidden too (`TF_CPP_MIN_LOG_LEVEL=2`); Python warnings still show.

`RESWISE_TF_LOGS=1` (or `--verbosity=1` or more on the command line) shows everything.
"""

import os
import sys
import tempfile

ENV = "RESWISE_TF_LOGS"


def wants_tf_logs(argv):
    """Whether the user asked for TensorFlow's own lines (env variable or --verbosity >= 1)."""
    if os.environ.get(ENV, "0") not in ("", "0"):
        return True
    for arg in argv:
        for prefix in ("--verbosity=", "-v="):
            if arg.startswith(prefix):
                try:
                    return int(arg[len(prefix):]) >= 1
                except ValueError:
                    return False
    return False


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
