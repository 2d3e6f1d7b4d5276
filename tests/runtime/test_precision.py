"""Precision by name: the Keras policies, an unknown name refused with the choices, and the
warning that a precision has no fast support here, said once per process, with the reason
read off the machine (GPU capability, CPU flags)."""

import warnings

import pytest

from reswise_tf.evaluation import SweepConfig
from reswise_tf.runtime import precision as precision_lib


def test_each_precision_is_a_keras_policy():
    assert [precision_lib.policy_name(p) for p in precision_lib.PRECISIONS] == [
        "float32", "mixed_bfloat16", "mixed_float16"]
    assert precision_lib.compute_dtype("bfloat16") == "bfloat16"


def test_unknown_precision_is_named():
    with pytest.raises(ValueError, match="Unknown precision 'int8'. Available: float32, bfloat16, float16"):
        SweepConfig(resolutions=[16], precision="int8")


def test_slow_precision_is_said_once(monkeypatch):
    monkeypatch.setattr(precision_lib, "fast_support", lambda p: (False, "no fast support (test)"))
    monkeypatch.setattr(precision_lib, "_noted", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        precision_lib.note_if_slow("bfloat16")
        precision_lib.note_if_slow("bfloat16")
        precision_lib.note_if_slow("float32")
    assert [str(w.message) for w in caught] == [
        "--precision=bfloat16: no fast support (test). Results are still computed in bfloat16."]




def test_fast_support_reads_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(precision_lib, "cpu_flags", lambda: {"avx2", "amx_bf16"})
    assert precision_lib.fast_support("bfloat16") == (True, "CPU with amx_bf16")
    monkeypatch.setattr(precision_lib, "cpu_flags", lambda: {"avx2"})
    fast, why = precision_lib.fast_support("bfloat16")
    assert not fast and "a CPU without avx512_bf16 or amx_bf16" in why
    assert precision_lib.fast_support("float32") == (True, "float32")
