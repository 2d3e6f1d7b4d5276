"""TensorFlow warnings that are expected by design, filtered so that the real ones stand out.

A sweep compiles one forward function per model (one per resolution): TensorFlow counts the
closures made by one Python function together and, from the sixth trace on, warns that the
function "triggered tf.function retracing". Each of ours is traced once, by design; only that
warning, and only for the functions named here, is dropped.
"""

import logging

_MARK = "triggered tf.function retracing"


class _ExpectedRetracing(logging.Filter):
    def __init__(self):
        super().__init__()
        self.qualnames = set()

    def filter(self, record):
        message = record.getMessage()
        return not (_MARK in message and any(f"<function {q} at" in message for q in self.qualnames))


_FILTER = _ExpectedRetracing()


def expect_one_trace_per_model(*qualnames):
    """Drops TensorFlow's retracing warning for the tf.functions with these qualified names
    (e.g. "forward_fn.<locals>.forward")."""
    _FILTER.qualnames.update(qualnames)
    logger = logging.getLogger("tensorflow")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
