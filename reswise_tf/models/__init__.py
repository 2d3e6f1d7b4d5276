"""The models stage: the architecture registry and builders, loading a classifier to study,
rebuilding it at another resolution with the same weights (`rescale`), and training-free
BatchNorm re-estimation."""

from reswise_tf.models.batchnorm import bn_statistics, recalibrate_bn
from reswise_tf.models.inspect import RescaleError, input_resolution, outputs_probabilities
from reswise_tf.models.loading import MODEL_EXTENSIONS, LoadedModel, load_arch, load_model_file, load_user_model
from reswise_tf.models.registry import (
    ARCHITECTURES,
    ArchSpec,
    default_resolutions,
    get_arch,
    register_arch,
    unregister_arch,
)
from reswise_tf.models.rescale import copy_weights, rescale, rescale_all
from reswise_tf.models.small_resnet import ResNet18Small, SmallResNet

__all__ = [
    "ARCHITECTURES",
    "MODEL_EXTENSIONS",
    "ArchSpec",
    "LoadedModel",
    "RescaleError",
    "ResNet18Small",
    "SmallResNet",
    "bn_statistics",
    "copy_weights",
    "default_resolutions",
    "get_arch",
    "input_resolution",
    "load_arch",
    "load_model_file",
    "load_user_model",
    "outputs_probabilities",
    "recalibrate_bn",
    "register_arch",
    "rescale",
    "rescale_all",
    "unregister_arch",
]
