"""A command line starts without TensorFlow's start-up lines; RESWISE_TF_LOGS=1 brings them back."""

import os
import subprocess
import sys

from tests.helpers import ROOT

NOISE = ("absl::InitializeLog", "cuda", "cpu_feature_guard", "cuInit", "oneDNN")


def _flops(**env):
    base = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "RESWISE_TF_LOGS")}
    return subprocess.run([sys.executable, "-m", "experiments.flops", "--arch=resnet18_small", "--resolutions=32"],
                          cwd=ROOT, env={**base, "PYTHONPATH": ROOT, **env}, capture_output=True, text=True,
                          timeout=300)


def test_no_tensorflow_start_up_lines_unless_asked():
    quiet = _flops()
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.startswith("resolution,macs,flops,flops_drop_pct\n")
    assert not [line for line in quiet.stderr.splitlines() if any(n in line for n in NOISE)], quiet.stderr
    loud = _flops(RESWISE_TF_LOGS="1")
    assert loud.returncode == 0 and loud.stdout == quiet.stdout
    assert any(n in loud.stderr for n in NOISE), loud.stderr


def test_a_warning_prints_as_one_line_without_the_library_source():
    from experiments import common

    assert common._one_line_warning(UserWarning("BN does not apply"), UserWarning, "/x/reduce.py", 84,
                                    "rows = run_reduce(...)") == "UserWarning: BN does not apply\n"


def test_library_info_lines_are_hidden_unless_asked(monkeypatch):
    """TFDS logs "Constructing tf.data.Dataset ..." through absl at INFO: a normal run hides it;
    RESWISE_TF_LOGS=1 or a --verbosity that shows INFO (0 or more) keeps it."""
    from absl import logging

    from experiments import quiet

    monkeypatch.delenv("RESWISE_TF_LOGS", raising=False)
    before = logging.get_verbosity()
    try:
        for argv, env, hidden in (([], None, True), (["--verbosity=0"], None, False), (["-v=1"], None, False),
                                  (["--verbosity=-1"], None, True), ([], "1", False)):
            logging.set_verbosity(logging.INFO)
            if env:
                monkeypatch.setenv("RESWISE_TF_LOGS", env)
            quiet.quiet_absl_info(argv)
            assert (logging.get_verbosity() == logging.WARNING) == hidden, (argv, env)
            monkeypatch.delenv("RESWISE_TF_LOGS", raising=False)
    finally:
        logging.set_verbosity(before)
