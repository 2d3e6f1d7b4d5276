"""The units every table uses, defined once (no TensorFlow: the selection stage reads it too).

MACs are multiply-accumulates per image; FLOPs = 2 x MACs (one multiply and one add each), as
papers that count MACs and call them FLOPs do. A FLOPs drop is the percent of the native FLOPs
saved; an accuracy drop is the points lost against native (both positive for a loss).
"""

FLOPS_PER_MAC = 2


def flops_drop_pct(macs, native_macs):
    """The percent of the native FLOPs saved by a pass (or a mean per image) of `macs` MACs:
    `100 * (1 - macs / native_macs)` (negative when it costs more than native)."""
    return 100.0 * (1.0 - macs / native_macs)
