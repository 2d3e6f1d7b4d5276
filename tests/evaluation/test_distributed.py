"""Distributed sweeps give the single-process tables: every image exactly once, same predictions.

Each strategy runs in fresh processes (logical devices and collectives are fixed at TensorFlow's
startup): `mirrored` over two logical CPUs, and `multi_worker` as two `experiments.reduce`
processes on loopback ports. 11 images in global batches of 4: the last batch is partial, and
with `num_examples=9` one replica of the last batch gets nothing but padding.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from reswise_tf import data
from reswise_tf.evaluation import SweepConfig, load_tables, sweep
from tests.helpers import ROOT, loaded, tiny_classifier, write_image_folder

TIMEOUT_S = 120


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A saved model, a folder of 11 images and the single-process tables."""
    root = tmp_path_factory.mktemp("distributed")
    model_path = str(root / "model.keras")
    model = tiny_classifier(16)
    model.save(model_path)
    folder = str(root / "images")
    write_image_folder(folder, [0, 1, 2], per_class=4)
    os.remove(os.path.join(folder, "2", "img_3.png"))  # 11 images
    config = SweepConfig(resolutions=[16, 12, 8], preprocess="tf", batch_size=4)
    reference = sweep(loaded(model), data.folder_source(folder), config, str(root / "single"), verbose=0)
    assert len(reference[16]) == 11
    return model_path, folder, reference


def _assert_same(tables, reference, n=11):
    assert sorted(tables) == sorted(reference)
    for r, table in tables.items():
        ref = reference[r]
        np.testing.assert_array_equal(table.index, np.arange(n))
        np.testing.assert_array_equal(table.labels, ref.labels[:n])
        np.testing.assert_array_equal(table.top_ids, ref.top_ids[:n])
        np.testing.assert_allclose(table.top_probs, ref.top_probs[:n], rtol=1e-6, atol=1e-7)
        assert table.meta["num_skipped"] == 0


def _start(args, env=None):
    env = dict(os.environ if env is None else env, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(processes):
    """Waits for all; kills every one if any hangs past the timeout. Returns their outputs."""
    outputs = []
    try:
        for p in processes:
            outputs.append(p.communicate(timeout=TIMEOUT_S)[0])
    except subprocess.TimeoutExpired:
        for p in processes:
            p.kill()
        pytest.fail(f"a distributed process hung for more than {TIMEOUT_S} s")
    for p, out in zip(processes, outputs):
        assert p.returncode == 0, out[-3000:]
    return outputs


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow  # the multi-worker test below checks exactly-once evaluation in the default run
def test_mirrored_over_two_cpus_matches_one_process(setup, tmp_path):
    model_path, folder, reference = setup
    for n in (11, 9):
        out = str(tmp_path / str(n))
        (log,) = _finish([_start(["tests.evaluation.distributed_worker", model_path, folder, out, str(n)])])
        assert f"2 replicas evaluated {n} images" in log
        _assert_same(load_tables(out), reference, n)


def test_multi_worker_two_processes_match_one_process_and_only_the_chief_writes(setup, tmp_path):
    model_path, folder, reference = setup
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}

    def run(resolutions):
        processes = []
        for i in range(2):
            env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}))
            args = ["experiments.reduce", "--strategy=multi_worker", f"--model_path={model_path}", "--preprocess=tf",
                    f"--dataset=folder:{folder}", f"--resolutions={resolutions}", "--batch_size=4", "--verbose=0",
                    f"--output_dir={tmp_path / f'worker{i}'}"]
            processes.append(_start(args, env))
        return _finish(processes)

    chief_log, worker_log = run("16,12")
    assert "Wrote" in chief_log and "the chief writes" in worker_log
    assert not os.path.exists(tmp_path / "worker1")
    _assert_same(load_tables(str(tmp_path / "worker0")), {r: reference[r] for r in (16, 12)})
    # Run again with one more resolution: only the chief knows 16 and 12 are cached, and
    # the other worker must evaluate exactly the same (8 alone) or the collectives would hang.
    run("16,12,8")
    assert not os.path.exists(tmp_path / "worker1")
    _assert_same(load_tables(str(tmp_path / "worker0")), reference)
