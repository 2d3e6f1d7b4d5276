"""The `adaptive_pool` head: a Flatten + Dense classifier (VGG) run at another resolution by
average-pooling its last feature map to the grid it was trained on, exactly as torchvision's
`AdaptiveAvgPool2d` does (overlapping bins when the map is smaller), with standard Keras layers
only (the model still saves and loads in safe mode). Where the map already has its trained size
nothing is inserted, so the native resolution stays bitwise exact."""

import keras

from reswise_tf.models.inspect import RescaleError


def adaptive_bins(size_in, size_out):
    """torchvision's AdaptiveAvgPool bins: [floor(i * in / out), ceil((i + 1) * in / out))."""
    return [(i * size_in // size_out, -(-(i + 1) * size_in // size_out)) for i in range(size_out)]


def adaptive_avg_pool(x, size, name):
    """Average-pools an NHWC feature map to `size` = (height, width) exactly as torchvision's
    `AdaptiveAvgPool2d` (overlapping bins when upsampling), with standard Keras layers only."""
    x = _adaptive_pool_axis(x, size[0], axis=1, name=f"{name}_rows")
    return _adaptive_pool_axis(x, size[1], axis=2, name=f"{name}_cols")


def _adaptive_pool_axis(x, size_out, axis, name):
    size_in = x.shape[axis]
    if size_in == size_out:
        return x
    bins = adaptive_bins(size_in, size_out)
    window = (lambda n: (n, 1)) if axis == 1 else (lambda n: (1, n))
    step = bins[1][0] if size_out > 1 else 1
    if all(b == (i * step, i * step + bins[0][1]) for i, b in enumerate(bins)):  # one pooling
        return keras.layers.AveragePooling2D(window(bins[0][1]), window(step), name=name)(x)
    parts = []
    for i, (start, end) in enumerate(bins):
        crop = ((start, size_in - end), (0, 0))
        crop = crop if axis == 1 else crop[::-1]
        part = keras.layers.Cropping2D(crop, name=f"{name}_crop_{i}")(x)
        parts.append(keras.layers.AveragePooling2D(window(end - start), name=f"{name}_pool_{i}")(part))
    return keras.layers.Concatenate(axis=axis, name=name)(parts)


def pool_to_trained_size(x, trained, name):
    """For head='adaptive_pool': pools the map a Flatten/Reshape receives to its trained size."""
    if len(x.shape) != 4 or tuple(x.shape[1:3]) == tuple(trained.shape[1:3]):
        return x
    if None in trained.shape[1:3]:
        raise RescaleError(f"Layer '{name}' flattens a map of undefined trained size {trained.shape}")
    return adaptive_avg_pool(x, trained.shape[1:3], name=f"{name}_adaptive_pool")
