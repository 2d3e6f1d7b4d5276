"""Number formatting shared by every table."""


def signed(x):
    """A difference with its sign: "+1.25", "-0.08", and "0.00" for |x| < 0.005 (e.g. bfloat16's
    accuracy minus float32's)."""
    x = 0.0 if abs(x) < 5e-3 else x
    return f"{x:+.2f}" if x else "0.00"


def drop(x):
    """A drop as the thesis prints it: positive for a loss ("29.26" percent of the FLOPs saved,
    "2.70" points of accuracy lost), negative for a gain ("-0.28"), "0.00" for |x| < 0.005."""
    x = 0.0 if abs(x) < 5e-3 else x
    return f"{x:.2f}"
