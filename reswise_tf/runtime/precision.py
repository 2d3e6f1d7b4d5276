"""Numerical precision of a run: float32, or Keras mixed precision (bfloat16 / float16 compute,
float32 variables), and whether this machine computes it fast.

Reduced precision is fast on GPUs with tensor cores (float16 from compute capability 7.0,
bfloat16 from 8.0) and on CPUs with AVX512-BF16 or AMX (bfloat16). Elsewhere TensorFlow emulates
it and it can be slower than float32: a run says so once, and goes on.
"""

import os
import warnings

from reswise_tf.utils.checks import check_choice

PRECISIONS = ("float32", "bfloat16", "float16")
_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
_CPU_FLAGS = {"bfloat16": ("avx512_bf16", "amx_bf16"), "float16": ("avx512_fp16", "amx_fp16")}
_GPU_CAPABILITY = {"bfloat16": (8, 0), "float16": (7, 0)}
_noted = set()


class SlowPrecisionWarning(UserWarning):
    """The requested precision has no fast support on this machine."""


def check_precision(precision):
    return check_choice(precision, PRECISIONS, "precision")


def policy_name(precision):
    """The Keras dtype policy of `precision` ("float32", "mixed_bfloat16", "mixed_float16")."""
    return _POLICIES[check_precision(precision)]


def compute_dtype(precision):
    """The dtype layers compute in ("float32", "bfloat16", "float16")."""
    return check_precision(precision)


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def fast_support(precision):
    """(True, where) when this machine computes `precision` fast, else (False, why not)."""
    check_precision(precision)
    if precision == "float32":
        return True, "float32"
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability") or (0, 0)
        if tuple(capability) >= _GPU_CAPABILITY[precision]:
            return True, f"GPU {gpu.name} (compute capability {capability[0]}.{capability[1]})"
    flags = sorted(cpu_flags() & set(_CPU_FLAGS[precision]))
    if flags:
        return True, f"CPU with {', '.join(flags)}"
    return False, (
        f"this machine has no fast {precision}: no GPU of compute capability "
        f"{'.'.join(map(str, _GPU_CAPABILITY[precision]))} or more, and a CPU without "
        f"{' or '.join(_CPU_FLAGS[precision])} ({os.cpu_count()} cores); TensorFlow emulates it, "
        "which can be slower than float32"
    )


def note_if_slow(precision):
    """Warns once per process and precision when `precision` has no fast support here."""
    if precision == "float32" or precision in _noted:
        return
    _noted.add(precision)
    fast, why = fast_support(precision)
    if not fast:
        warnings.warn(f"--precision={precision}: {why}. Results are still computed in {precision}.",
                      SlowPrecisionWarning, stacklevel=2)
