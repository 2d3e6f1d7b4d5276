"""Number formatting shared by every table."""


def signed(x):
    """A change as the thesis prints it: "+1.25", "-29.26", and "0.00" for |x| < 0.005."""
    x = 0.0 if abs(x) < 5e-3 else x
    return f"{x:+.2f}" if x else "0.00"
