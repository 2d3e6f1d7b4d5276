"""Only the expected retracing warning of our per-model functions is dropped."""

import logging

from reswise_tf.runtime.logs import expect_one_trace_per_model


def test_only_the_named_functions_retracing_warning_is_dropped(caplog):
    expect_one_trace_per_model("forward_fn.<locals>.forward")
    logger = logging.getLogger("tensorflow")
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        logger.warning("5 out of the last 5 calls to <function forward_fn.<locals>.forward at 0x7f> triggered "
                       "tf.function retracing. Tracing is expensive")
        logger.warning("5 out of the last 5 calls to <function user_fn at 0x7f> triggered tf.function retracing.")
        logger.warning("something else about <function forward_fn.<locals>.forward at 0x7f>")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and "user_fn" in messages[0] and "something else" in messages[1]
