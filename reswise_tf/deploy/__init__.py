"""The deploy stage: a fitted cascade run on images with TensorFlow (the selection stage above
it is numpy over caches only)."""

from reswise_tf.deploy.classifier import CascadeClassifier, CascadeOutput

__all__ = ["CascadeClassifier", "CascadeOutput"]
