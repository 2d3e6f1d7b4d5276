"""`tf.distribute` strategies by name, for `--strategy`, and what workers must agree on."""

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def make_strategy(name="default", tpu=""):
    """Returns the strategy called `name`.

    - `default`: one device (the default strategy).
    - `mirrored`: every local GPU (or CPU) of this host.
    - `multi_worker`: several hosts, described by the TF_CONFIG environment variable.
    - `tpu`: a TPU, found by `tpu` (address or name; empty for a local TPU VM).

    Create it before anything else touches TensorFlow: `multi_worker` configures the
    collective ops, which TensorFlow allows only at program startup.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown strategy {name!r}. Available: {', '.join(STRATEGIES)}")


def is_chief(strategy):
    """True on the one worker that writes files (always true outside multi-worker).

    The chief is the `chief` task when TF_CONFIG's cluster has one, else worker 0.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    return resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )


def num_workers(strategy):
    """Processes that run the program together: the tasks of a multi-worker cluster, else 1
    (a TPU, even a pod, is driven by one process)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 1
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return sum(len(cluster.get(job, ())) for job in ("chief", "worker")) or 1


def decide_on_chief(strategy, decide, size):
    """Returns what `decide()` (a list of `size` integers) returns on the chief, on every worker.

    For decisions that depend on files only the chief may read (what is cached, where an
    interrupted run stopped): every worker must call the same collectives in the same order,
    or they wait for each other forever. Only the chief calls `decide`. If it raises there,
    the other workers raise a `RuntimeError` instead of waiting.
    """
    if num_workers(strategy) == 1:
        return list(decide())
    values, error, status = [0] * size, None, 0  # status: 0 other worker, 1 chief, 2 chief failed
    if is_chief(strategy):
        try:
            values, status = [int(v) for v in decide()], 1
            if len(values) != size:
                raise ValueError(f"`decide` should return {size} integers. Received {values!r}")
        except Exception as e:  # re-raised below, once the other workers know
            values, error, status = [0] * size, e, 2
    row = tf.constant([[status, *values]], tf.int64)
    rows = strategy.gather(strategy.experimental_distribute_values_from_function(lambda _: row), axis=0).numpy()
    if error is not None:
        raise error
    chief = rows[rows[:, 0] > 0][0]
    if chief[0] == 2:
        raise RuntimeError("The chief worker failed (its log says why); this worker stops too.")
    return chief[1:].tolist()
