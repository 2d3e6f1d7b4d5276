"""Bicubic resampling of ViT position-embedding grids, numerically as PyTorch / timm do it.

timm's `resample_abs_pos_embed(posemb, new_size, num_prefix_tokens=1, ...)` splits off the
prefix (class token) rows, reshapes the rest to a (1, C, H, W) grid and calls
`torch.nn.functional.interpolate(grid, size=new_size, mode="bicubic", align_corners=False,
antialias=...)`. Two different kernels hide behind that call:

* `antialias=False` (`upsample_bicubic2d`): Keys' cubic convolution with **A = -0.75**,
  source coordinate `(i + 0.5) * in/out - 0.5` (not clamped), 4 taps, indices clamped to the
  border (edge replication). Downsampling just samples the cubic at wider spacing.
* `antialias=True` (`_upsample_bicubic2d_aa`, PIL's algorithm): cubic with **A = -0.5**,
  stretched by `in/out` when downsampling (support `2 * max(in/out, 1)` input pixels),
  centred at `(i + 0.5) * in/out`, taps outside the image dropped and the weights renormalised
  to sum 1 (no edge replication). It differs from `antialias=False` even when upsampling
  (different A, different borders).

timm's default is `antialias=True` (timm 1.0.31), in `resample_abs_pos_embed` and wherever timm
calls it (`checkpoint_filter_fn` when loading pretrained weights at another `img_size`,
`set_input_size`, `dynamic_img_size=True`), and it is the default here too.

TensorFlow's `tf.image.resize(method="bicubic")` / `keras.ops.image.resize` use A = -0.5 and
(for antialias=False) half-pixel centres with other border handling, so they match neither.

Both kernels are separable: the grid is resized by one (out x in) float64 matrix per axis,
`out[i, j] = sum_{h, w} Mh[i, h] * Mw[j, w] * grid[h, w]`. The matrices are built in float64;
PyTorch computes in float32, so results agree to float32 rounding (about 1e-7 relative).
"""

import math

import numpy as np

__all__ = ["bicubic_matrix", "resize_grid", "resample_pos_embed"]


def _cubic(x, a):
    """Keys' cubic convolution kernel with parameter `a` (numpy, vectorised)."""
    x = np.abs(x)
    x2, x3 = x * x, x * x * x
    near = (a + 2.0) * x3 - (a + 3.0) * x2 + 1.0
    far = a * x3 - 5.0 * a * x2 + 8.0 * a * x - 4.0 * a
    return np.where(x <= 1.0, near, np.where(x < 2.0, far, 0.0))


def bicubic_matrix(in_size, out_size, antialias=True):
    """Returns the (out_size, in_size) float64 matrix of 1-D bicubic resampling.

    Equal to `torch.nn.functional.interpolate(..., mode="bicubic", align_corners=False,
    antialias=antialias)` along one axis. The identity when `in_size == out_size` (both modes).
    """
    in_size, out_size = int(in_size), int(out_size)
    if in_size < 1 or out_size < 1:
        raise ValueError(f"Sizes should be positive. Received in_size={in_size}, out_size={out_size}")
    scale = in_size / out_size
    m = np.zeros((out_size, in_size), np.float64)
    for i in range(out_size):
        if not antialias:
            src = (i + 0.5) * scale - 0.5
            base = math.floor(src)
            t = src - base
            weights = _cubic(np.array([t + 1.0, t, 1.0 - t, 2.0 - t]), -0.75)
            for k, w in zip(range(base - 1, base + 3), weights):
                m[i, min(max(k, 0), in_size - 1)] += w
        else:
            support = 2.0 * scale if scale >= 1.0 else 2.0
            invscale = 1.0 / scale if scale >= 1.0 else 1.0
            center = scale * (i + 0.5)
            lo = max(int(center - support + 0.5), 0)
            hi = min(int(center + support + 0.5), in_size)
            k = np.arange(lo, hi)
            weights = _cubic((k - center + 0.5) * invscale, -0.5)
            total = weights.sum()
            m[i, lo:hi] = weights / total if total != 0.0 else weights
    return m


def resize_grid(grid, new_size, antialias=True):
    """Resizes an (H, W, C) grid to (new_h, new_w, C) with separable bicubic matrices.

    Computed in float64, returned in `grid`'s dtype.
    """
    grid = np.asarray(grid)
    new_h, new_w = _pair(new_size)
    mh = bicubic_matrix(grid.shape[0], new_h, antialias)
    mw = bicubic_matrix(grid.shape[1], new_w, antialias)
    out = np.einsum("ih,jw,hwc->ijc", mh, mw, grid.astype(np.float64), optimize=True)
    return out.astype(grid.dtype)


def resample_pos_embed(table, new_size, old_size=None, num_prefix_tokens=1, antialias=True):
    """Resamples a ViT position-embedding table to a new patch grid, as timm does.

    Args:
      table: `(num_prefix_tokens + H * W, C)` array (a leading axis of 1, timm's `(1, N, C)`
        layout, is accepted and kept), rows of the grid in row-major order after the prefix
        (class token) rows.
      new_size: new grid `(new_h, new_w)` or an int for a square grid.
      old_size: old grid; inferred as square when `None`.
      num_prefix_tokens: leading rows kept as they are (1 for the class token).
      antialias: see the module docstring (`True`: timm's default; `False`: plain bicubic).

    Returns:
      The new table, same dtype and layout. When the grid does not change the table is
      returned unchanged (a copy), bit for bit.
    """
    table = np.asarray(table)
    lead = table.ndim == 3
    if lead:
        if table.shape[0] != 1:
            raise ValueError(f"Expected a table of shape (1, N, C). Received {table.shape}")
        table = table[0]
    if table.ndim != 2:
        raise ValueError(f"Expected a table of shape (N, C) or (1, N, C). Received {table.shape}")
    new_h, new_w = _pair(new_size)
    n = table.shape[0] - num_prefix_tokens
    if old_size is None:
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(
                f"Cannot infer a square grid from {n} position rows (after {num_prefix_tokens} "
                f"prefix rows); pass old_size. Received table shape {table.shape}"
            )
        old_size = (side, side)
    old_h, old_w = _pair(old_size)
    if old_h * old_w != n:
        raise ValueError(
            f"old_size={old_size} does not match the {n} position rows of the table"
        )
    if (old_h, old_w) == (new_h, new_w):
        out = table.copy()
    else:
        prefix, grid = table[:num_prefix_tokens], table[num_prefix_tokens:]
        grid = resize_grid(grid.reshape(old_h, old_w, -1), (new_h, new_w), antialias)
        out = np.concatenate([prefix, grid.reshape(new_h * new_w, -1)], axis=0)
    return out[None] if lead else out


def _pair(size):
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)
