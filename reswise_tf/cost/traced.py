"""MACs inside a subclassed layer: its `call` is traced symbolically while every layer call is
recorded, and the counted layers it calls are counted with the shapes they really get (each
once: the projections inside a counted MultiHeadAttention are not counted again). This counts
keras_hub's Vision Transformer, whose blocks are custom layers around standard MultiHeadAttention
and Dense layers.

It uses Keras internals: `keras.src.backend.compute_output_spec` and, while tracing, a wrapper
around `keras.layers.Layer.__call__` (one trace at a time, under a lock).
"""

import contextlib
import threading
import warnings

import keras

_LOCK = threading.Lock()


@contextlib.contextmanager
def _recording(records, counted):
    """Records the outermost calls of `counted` layers made while active."""
    original = keras.layers.Layer.__call__
    state = {"depth": 0, "stack": []}

    def recorder(self, *args, **kwargs):
        is_counted = isinstance(self, counted)
        outer = is_counted and state["depth"] == 0
        state["stack"].append(self.name)
        state["depth"] += is_counted
        try:
            out = original(self, *args, **kwargs)
        finally:
            state["depth"] -= is_counted
            path = "/".join(state["stack"])
            state["stack"].pop()
        if outer:
            records.append((path, self, args, kwargs, keras.tree.flatten(out)))
        return out

    keras.layers.Layer.__call__ = recorder
    try:
        yield
    finally:
        keras.layers.Layer.__call__ = original


def count_calls(layer, name, args, kwargs, counts, layer_macs, counted):
    """Adds to `counts` the MACs of the calls of `counted` layer types that `layer.call` runs
    (by `layer_macs`, the per-layer rule of `flops.py`); returns the output specs of `layer`."""
    from keras.src import backend as keras_backend  # compute_output_spec of a bound call

    records = []
    with _LOCK, _recording(records, counted):
        out = keras_backend.compute_output_spec(layer.call, *args, **kwargs)
    found = False
    for path, sub, sub_args, sub_kwargs, sub_outs in records:
        specs = [x for x in keras.tree.flatten((sub_args, sub_kwargs)) if hasattr(x, "shape")]
        macs = layer_macs(sub, f"{name}/{path}", specs, sub_outs, sub_args, sub_kwargs)
        if macs is not None:
            counts[f"{name}/{path}"] = counts.get(f"{name}/{path}", 0) + macs
            found = True
    if not found:
        warnings.warn(f"Layer '{name}' ({type(layer).__name__}) calls no counted layer: its MACs are not counted",
                      stacklevel=3)
    return [keras.KerasTensor(tuple(o.shape), dtype=o.dtype) for o in keras.tree.flatten(out)]
