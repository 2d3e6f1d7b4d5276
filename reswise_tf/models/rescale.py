"""Rebuilding a trained classifier at another input resolution, weights unchanged.

A CNN that ends in global pooling has no weight whose shape depends on the input size, so the
same weights serve any resolution. `rescale` builds the same layers for the new input size and
copies every weight; at the original size its outputs are exactly the original model's.

Two ways: with `arch` (a registered architecture) the architecture's own builder builds it at
the new size; otherwise `rebuild.rebuild` re-runs the model's own graph at the new size, redoing
what Keras' builders decide from the feature-map size (correct_pad paddings, NASNet's cells,
nested models) and resampling a ViT's position table. Both give the builder's model at that
size with the same weights. A keras-hub model is the other kind: it is rebuilt from its
backbone's constructor arguments (`keras_hub`).
"""

from reswise_tf.cost.flops import count_macs
from reswise_tf.models import vit
from reswise_tf.models.inspect import RescaleError, classifier_activation, input_resolution, is_segmenter, total_stride
from reswise_tf.models.keras_hub import contains_hub, rescale_hub
from reswise_tf.models.rebuild import HEADS, rebuild
from reswise_tf.models.registry import get_arch
from reswise_tf.utils.checks import check_choice, check_multiple, check_resolution

__all__ = ["HEADS", "RescaleError", "copy_weights", "input_resolution", "rescale", "rescale_all"]


def rescale(model, resolution, arch=None, head=None):
    """Returns `model` rebuilt for `resolution` x `resolution` inputs with all weights copied.

    Args:
      model: a trained Keras functional classifier with one image input (NHWC).
      resolution: new input height and width in pixels.
      arch: optional `ArchSpec` or registry name: the model is then rebuilt with the
        architecture's own builder; otherwise its functional graph is rebuilt at the new size.
      head: None, or "adaptive_pool" for a classifier on a flattened feature map (VGG): the map
        is average-pooled to its trained grid (torchvision's AdaptiveAvgPool2d) so the same
        weights run at other sizes; exact at the native size.

    Returns:
      A new `keras.Model`; the original is not modified.

    Raises:
      RescaleError: a weight's shape would depend on the input size (a Flatten + Dense head
        without `head="adaptive_pool"`), a layer resizes the input back to a fixed size, or the
        weights do not fit at this resolution (the message names the layer and the smallest valid
        size where it is known).
    """
    spec = get_arch(arch) if arch is not None else None
    spec.check(resolution) if spec else check_resolution(resolution)
    check_choice(head, HEADS, "head")
    if contains_hub(model):  # the other kind of model: keras-hub's, rebuilt from constructor arguments
        return rescale_hub(model, resolution, head=head)
    if spec is None and is_segmenter(model) and total_stride(model) > 1:
        check_multiple(resolution, total_stride(model), "resolution", f"the total stride of '{model.name}'")
    if spec is None or head is not None:
        return rebuild(model, resolution, head=head)
    if spec.fixed_head and resolution != input_resolution(model):
        raise RescaleError(
            f"Architecture '{spec.name}' classifies a flattened feature map: its weights fit only at "
            f"{input_resolution(model)} px. Pass --head=adaptive_pool (head='adaptive_pool') to pool the map "
            f"to its trained grid at resolution={resolution}"
        )
    new = spec.build(resolution, classes=model.outputs[0].shape[-1], channels=model.inputs[0].shape[-1],
                     classifier_activation=classifier_activation(model))
    copy_weights(model, new, resolution=resolution, min_resolution=spec.min_resolution)
    return new


def rescale_all(model, resolutions, arch=None, head=None):
    """{resolution: model} for a sweep over `resolutions`: the same checks and outputs as
    `rescale` at each, but one model built once for every size when the graph allows it (then
    each forward function is traced once, not once per size), else one model per size.

    One model serves every size when no layer depends on the size: no ViT position table, no
    NASNet cell choice, no flattened head, no keras-hub model; correct_pad paddings are
    fused into 'same' convolutions (bitwise the same outputs). Each resolution is still
    checked (smallest size, feature maps that would vanish) before anything runs.
    """
    spec = get_arch(arch) if arch is not None else None
    for r in resolutions:
        spec.check(r) if spec else check_resolution(r)
    check_choice(head, HEADS, "head")
    shared = None
    if head is None and not contains_hub(model) and not (spec is not None and spec.fixed_head):
        try:
            shared = rebuild(model, None)
        except RescaleError:
            shared = None
    if shared is None:
        return {r: rescale(model, r, arch=arch, head=head) for r in resolutions}
    for r in resolutions:
        _check_runs_at(shared, r)
    return {r: shared for r in resolutions}


def _check_runs_at(model, resolution):
    """Raises RescaleError when a feature map of `model` would vanish at `resolution`."""
    try:
        count_macs(model, resolution=resolution)
    except ValueError as e:
        raise RescaleError(f"Model '{model.name}' cannot run at resolution={resolution}: {e}") from e


def copy_weights(source, target, *, resolution=None, min_resolution=None):
    """Copies the weights of `source` into `target`, layer by layer, after checking that both
    have the same weighted layers (class, and the shape of every weight) in the same order; a
    ViT's position table is resampled to the target's patch grid."""
    src = [layer for layer in source.layers if layer.weights]
    dst = [layer for layer in target.layers if layer.weights]
    hint = f" The smallest valid resolution is {min_resolution}." if min_resolution else ""
    at = f" at resolution={resolution}" if resolution is not None else ""
    for a, b in zip(src, dst):
        shapes_a = [tuple(w.shape) for w in a.weights]
        shapes_b = [tuple(w.shape) for w in b.weights]
        if vit.is_position_table(a) and vit.is_position_table(b):
            continue
        if type(a) is not type(b) or shapes_a != shapes_b:
            raise RescaleError(
                f"The weights of model '{source.name}' do not fit its architecture{at}: layer "
                f"'{a.name}' ({type(a).__name__}, weights {shapes_a}) meets layer '{b.name}' "
                f"({type(b).__name__}, weights {shapes_b}).{hint}"
            )
    if len(src) != len(dst):
        raise RescaleError(
            f"The weights of model '{source.name}' do not fit its architecture{at}: "
            f"{len(src)} weighted layers against {len(dst)}.{hint}"
        )
    for a, b in zip(src, dst):
        same = [tuple(w.shape) for w in a.weights] == [tuple(w.shape) for w in b.weights]
        b.set_weights(a.get_weights() if same else [vit.resampled_table(a, b.input_dim)])
