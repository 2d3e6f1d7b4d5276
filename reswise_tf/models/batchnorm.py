"""Training-free BatchNorm re-estimation for a model run at a resolution it was not trained at.

Why: a CNN evaluated at another input size sees objects at another apparent size, and the
statistics of its activations shift, while its BatchNormalization layers keep normalising with
the moving mean and variance collected at the training resolution. FixRes (Touvron et al.,
"Fixing the train-test resolution discrepancy", NeurIPS 2019) analyses this discrepancy and fixes
it by fine-tuning at the test resolution. The cheaper fix here needs no labels, no gradients and
no training: run the (already `rescale`d) model forward on unlabelled images at the new
resolution and replace only each BN layer's `moving_mean` / `moving_variance` by the statistics
it sees there ("precise BN", Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021; cf. PyTorch
`torch.optim.swa_utils.update_bn` with `momentum=None`).

How: a probe copy of the model runs in inference mode (Dropout and other noise layers are off)
except that every BN layer normalises with the statistics of the current batch, as in training.
Each probe BN layer adds the per-channel count, sum and sum of squares of its input, in float64,
over all images and all positions on the non-channel axes. The result is the exact population
mean and biased variance (E[x^2] - E[x]^2, the variance Keras BN itself uses for a batch) of that
layer's inputs over all images: pooled by element counts, not an exponential moving average, so
it does not depend on the order of the images or on an uneven last batch. (`update_bn` instead
averages per-batch means and unbiased per-batch variances with equal weight per batch, which
drops the spread between batch means and over-weights a short last batch.)

What is exact and what is not: the inputs of the first BN layer (and of every BN layer with no BN
before it) do not depend on batching, so its statistics are exactly those of the images,
whatever `batch_size` and order. Deeper BN layers see inputs that earlier BN layers normalised
with batch statistics, as in training, so their statistics depend (slightly, less for larger
batches) on how the images are split into batches; with all images in one batch they are exact
and order independent.

Units: the statistics are in the units of each BN layer's input (activations), per channel.

Example:

```python
small = rescale(model, 128)                      # same weights, 128x128 inputs
fixed = recalibrate_bn(small, calibration_images)  # (N, 128, 128, 3), preprocessed
stats = bn_statistics(small, calibration_images)   # {"conv1_bn": (mean, var), ...}
```
"""

import functools

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from reswise_tf.utils.checks import check_positive_int


def recalibrate_bn(model, images, *, batch_size=64):
    """Returns a copy of `model` whose BatchNorm moving statistics are re-estimated on `images`.

    Args:
      model: a Functional or Sequential Keras model with one input and at least one
        `keras.layers.BatchNormalization` layer (nested Functional / Sequential sub-models are
        searched too), typically the output of `rescale(model, resolution)`.
      images: the unlabelled calibration images, already preprocessed for the model: a numpy
        array or tf.Tensor of shape (N, H, W, C), or a `tf.data.Dataset` yielding such batches
        (tensors only; map (image, label) pairs to images first). H, W, C must match the model
        input.
      batch_size: images per forward pass for arrays and tensors (a dataset keeps its own
        batching). Larger batches bring deeper layers' statistics closer to the population ones.

    Returns:
      A new `keras.Model` with the same architecture and weights as `model`, except the
      `moving_mean` and `moving_variance` of every BatchNormalization layer (for renorm layers also
      `moving_stddev`), which hold the population statistics of `bn_statistics(model, images)`.
      Every other weight is bit-identical; `model` itself is not modified.

    Raises:
      ValueError: the model has no BatchNormalization layer, is not Functional or Sequential,
        has BN layers hidden inside custom layers, or the images are empty or of the wrong shape.
    """
    statistics = bn_statistics(model, images, batch_size=batch_size)
    copies = {}
    new = _clone(model, lambda layer: _record(copies, layer, _fresh_copy(layer)))
    for original, copy in copies.values():
        copy.set_weights(original.get_weights())
    for path, original in _batch_norm_layers(model).items():
        mean, variance = statistics[path]
        _assign_statistics(copies[id(original)][1], mean, variance)
    return new


def bn_statistics(model, images, *, batch_size=64):
    """Returns the population statistics of each BatchNormalization layer's input on `images`.

    Runs the probe forward pass described in the module docstring (inference mode, BN layers
    normalising with batch statistics); nothing in `model` changes.

    Args:
      model, images, batch_size: as for `recalibrate_bn`.

    Returns:
      A dict {layer path: (mean, variance)} in the order the layers are found, with float64
      numpy arrays of one value per channel. The path is the layer's name, prefixed by the names
      of the enclosing sub-models ("block1/bn") for nested layers. The variance is the biased
      population variance.
    """
    bn_layers = _batch_norm_layers(model)
    if not bn_layers:
        raise ValueError(
            f"Model '{model.name}' has no BatchNormalization layer, so there are no statistics "
            f"to re-estimate"
        )
    if len(model.inputs) != 1:
        raise ValueError(
            f"Expected a model with one input. Model '{model.name}' has {len(model.inputs)} inputs"
        )
    check_positive_int(batch_size, "batch_size")
    input_shape = tuple(model.inputs[0].shape)
    batches = _batches(images, batch_size, input_shape, model.name)

    probes = {}
    probe = _clone(model, lambda layer: _record(probes, layer, _probe_copy(layer)))
    for original, copy in probes.values():
        if copy is not original:
            _copy_affine(original, copy)
    probe_layers = [probes[id(layer)][1] for layer in bn_layers.values()]

    spec = tf.TensorSpec((None,) + input_shape[1:], model.inputs[0].dtype)
    # A partial, not a lambda: TF would warn about retracing after a few calls of this function.
    step = tf.function(functools.partial(_run_probe, probe, probe_layers), input_signature=[spec])
    totals = None  # per BN layer: [count, sum, sum of squares], float64, summed over batches
    for batch in batches:
        sums = [[np.asarray(t, np.float64) for t in layer_sums] for layer_sums in step(tf.cast(batch, spec.dtype))]
        totals = sums if totals is None else [[a + b for a, b in zip(t, s)] for t, s in zip(totals, sums)]
    if totals is None:
        raise ValueError(
            f"`images` is empty: the dataset yielded no images for model '{model.name}'"
        )
    return {path: _population_statistics(path, *total) for path, total in zip(bn_layers, totals)}


def _run_probe(probe, probe_layers, images):
    """One batch through the probe (inference mode for every layer: Dropout and noise layers
    are off; the probe BN layers use batch statistics regardless); returns each probe BN
    layer's [count, sum, sum of squares] of its inputs on this batch. The sums are outputs of
    the traced function, not variables updated in it: hundreds of stateful updates would make
    the trace two to three times slower (NASNet: 15 s against 6 s)."""
    for layer in probe_layers:
        layer.batch_sums = []
    probe(images, training=False)
    out = []
    for layer in probe_layers:
        if not layer.batch_sums:  # never called on this path: its count stays 0
            layer.batch_sums = [(tf.zeros((), tf.float64),) * 3]
        out.append([tf.add_n(list(parts)) for parts in zip(*layer.batch_sums)])  # a shared layer: pooled
    return out


def _population_statistics(path, count, total, total_of_squares):
    count = float(count)
    if count == 0:
        raise ValueError(
            f"BatchNormalization layer '{path}' received no inputs in the forward pass"
        )
    mean = total / count
    return mean, np.maximum(total_of_squares / count - mean * mean, 0.0)


class _BatchStatisticsProbe(keras.layers.BatchNormalization):
    """A BatchNormalization layer that always normalises with the statistics of the current batch
    (whatever `training` says), as Keras' BatchNormalization does in training but without moving
    any statistic, and records the per-channel count, sum and sum of squares of its inputs, in
    float64, in `batch_sums` (one entry per call). Used only inside the throw-away probe model."""

    batch_sums = ()

    def call(self, inputs, training=None, mask=None):
        if mask is not None:
            raise ValueError(
                f"BatchNormalization layer '{self.name}' receives a mask; masked inputs are not "
                f"supported"
            )
        x = tf.cast(inputs, tf.float64)
        axes = self._reduction_axes
        per_channel = tf.size(x, out_type=tf.int64) // tf.cast(tf.shape(x)[self.axis], tf.int64)
        sums = (tf.cast(per_channel, tf.float64), tf.reduce_sum(x, axis=axes), tf.reduce_sum(tf.square(x), axis=axes))
        if isinstance(self.batch_sums, list):  # inside `_run_probe`'s trace
            self.batch_sums.append(sums)
        # Keras' training-mode normalisation (BatchNormalization.call with training=True and no
        # renorm), without its updates of the moving statistics.
        inputs = ops.cast(inputs, keras.backend.result_type(inputs.dtype, "float32"))
        mean, variance = ops.moments(inputs, axes=axes)
        gamma = ops.cast(self.gamma, inputs.dtype) if self.scale else None
        beta = ops.cast(self.beta, inputs.dtype) if self.center else None
        outputs = ops.batch_normalization(x=inputs, mean=mean, variance=variance, axis=self.axis, offset=beta,
                                          scale=gamma, epsilon=self.epsilon)
        return ops.cast(outputs, self.compute_dtype)


def _probe_copy(layer):
    if not isinstance(layer, keras.layers.BatchNormalization):
        return layer  # shared: the probe runs every other layer in inference mode, changing nothing
    config = layer.get_config()
    # Batch statistics must be used even for frozen BN, and without renorm's corrections.
    config.update(trainable=True, renorm=False, synchronized=False)
    return _BatchStatisticsProbe.from_config(config)


def _fresh_copy(layer):
    return layer.__class__.from_config(layer.get_config())


def _record(copies, layer, copy):
    copies[id(layer)] = (layer, copy)
    return copy


def _clone(model, clone_function):
    """Clones `model` and its nested Functional / Sequential sub-models layer by layer; each
    other layer is replaced by `clone_function(layer)` (called once per layer, shared layers
    stay shared)."""
    try:
        return keras.models.clone_model(model, clone_function=clone_function, recursive=True)
    except ValueError as e:
        raise ValueError(
            f"Model '{model.name}' ({type(model).__name__}) cannot be cloned: BatchNorm statistics "
            f"can only be re-estimated for Functional or Sequential models. {e}"
        ) from e


def _copy_affine(source, target):
    """Copies the weights that the probe's normalisation uses: gamma and beta."""
    if source.scale:
        target.gamma.assign(source.gamma)
    if source.center:
        target.beta.assign(source.beta)


def _assign_statistics(layer, mean, variance):
    layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
    layer.moving_variance.assign(variance.astype(layer.moving_variance.dtype))
    if layer.renorm:
        # Renorm layers also carry the standard deviation that training derives the variance from.
        layer.moving_stddev.assign(
            np.sqrt(variance + layer.epsilon).astype(layer.moving_stddev.dtype)
        )


def _batch_norm_layers(model):
    """Returns {path: layer} for every BatchNormalization layer of `model`, its nested
    sub-models included; a layer shared between sub-models is listed once, under its first path."""
    found = {}
    seen = set()

    def visit(container, prefix):
        for layer in container.layers:
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            path = prefix + layer.name
            if isinstance(layer, keras.layers.BatchNormalization):
                found[path] = layer
            elif isinstance(layer, keras.Model) and not _is_custom_model(layer):
                visit(layer, path + "/")
            else:
                hidden = [
                    inner.name
                    for inner in layer._flatten_layers(include_self=False)
                    if isinstance(inner, keras.layers.BatchNormalization)
                ]
                if hidden:
                    raise ValueError(
                        f"Layer '{path}' ({type(layer).__name__}) of model '{model.name}' contains "
                        f"BatchNormalization layers {hidden} that cannot be reached: only BN "
                        f"layers of Functional or Sequential (sub-)models can be re-estimated"
                    )

    if _is_custom_model(model):
        raise ValueError(
            f"Model '{model.name}' ({type(model).__name__}) is a subclassed model: BatchNorm "
            f"statistics can only be re-estimated for Functional or Sequential models"
        )
    visit(model, "")
    return found


def _is_custom_model(model):
    """True for subclassed models, whose call() cannot be re-wired layer by layer."""
    return not (isinstance(model, keras.Sequential) or hasattr(model, "_run_through_graph"))


def _batches(images, batch_size, input_shape, model_name):
    """Checks `images` against the model input shape and yields its batches."""
    if isinstance(images, tf.data.Dataset):
        spec = images.element_spec
        if not isinstance(spec, tf.TensorSpec):
            raise ValueError(
                f"`images` should be a dataset of image batches (tensors). Received a dataset with "
                f"element_spec={spec}; map it to images first, e.g. "
                f"`dataset.map(lambda image, label: image)`"
            )
        _check_shape(tuple(spec.shape), input_shape, model_name, what="dataset batches")
        return _dataset_batches(images, input_shape, model_name)
    if not isinstance(images, tf.Tensor):
        images = np.asarray(images)
    shape = tuple(images.shape)
    _check_shape(shape, input_shape, model_name, what="images")
    if shape[0] == 0:
        raise ValueError(
            f"`images` is empty. Received images of shape {shape} for model '{model_name}'"
        )
    return (images[start : start + batch_size] for start in range(0, shape[0], batch_size))


def _dataset_batches(dataset, input_shape, model_name):
    for batch in dataset:
        _check_shape(tuple(batch.shape), input_shape, model_name, what="dataset batches")
        yield batch


def _check_shape(shape, input_shape, model_name, what):
    fits = len(shape) == len(input_shape) and all(
        a is None or b is None or a == b for a, b in zip(shape[1:], input_shape[1:])
    )
    if not fits:
        raise ValueError(
            f"The shape of the {what} does not match the input of model '{model_name}': "
            f"received {what} of shape {shape}, the model expects {input_shape} "
            f"(batch, height, width, channels)"
        )
