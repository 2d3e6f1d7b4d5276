"""One sweep under `MirroredStrategy` over two logical CPUs, in its own process (the logical
devices must be set before TensorFlow starts); run by tests/evaluation/test_distributed.py.

  python -m tests.evaluation.distributed_worker MODEL.keras FOLDER OUTPUT_DIR [NUM_EXAMPLES]
"""

import sys


def main(model_path, folder, output_dir, num_examples=None):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    from reswise_tf import data, models
    from reswise_tf.evaluation import SweepConfig, sweep

    with strategy.scope():
        loaded = models.load_user_model(model_path, preprocess="tf")
    config = SweepConfig(resolutions=[16, 12, 8], preprocess="tf", batch_size=4,
                         num_examples=int(num_examples) if num_examples else None)
    tables = sweep(loaded, data.folder_source(folder), config, output_dir, strategy=strategy, verbose=0)
    print(f"{strategy.num_replicas_in_sync} replicas evaluated {len(tables[16])} images")


if __name__ == "__main__":
    main(*sys.argv[1:])
