"""How TensorFlow runs: `tf.distribute` strategies by name and what workers must agree on."""
