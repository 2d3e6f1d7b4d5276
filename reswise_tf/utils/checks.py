"""Argument checks: each raises ValueError naming the argument and echoing the value (as Keras
applications do), with the valid choices where there is a list of them."""

import math


def check_positive_int(value, name, *, minimum=1, allow_none=False):
    """Raises unless `value` is an int >= `minimum` (None passes with `allow_none`)."""
    if value is None and allow_none:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        if allow_none:
            what += " or None"
        raise ValueError(f"`{name}` should be {what}. Received {name}={value!r}")
    return value


def check_choice(value, choices, name):
    """Raises unless `value` is one of `choices`: "Unknown NAME 'x'. Available: a, b"."""
    if isinstance(value, (list, dict, set)) or value not in choices:
        raise ValueError(f"Unknown {name} {value!r}. Available: {', '.join(map(str, choices))}")
    return value


def check_fraction(value, name, *, low=0.0, high=1.0, include_low=False, include_high=True):
    """Raises unless `value` is a real number in the interval between `low` and `high`
    (open or closed at each end as asked); the message names the interval."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value >= low if include_low else value > low) and (value <= high if include_high else value < high)
    if not ok:
        interval = f"{'[' if include_low else '('}{low:g}, {high:g}{']' if include_high else ')'}"
        raise ValueError(f"`{name}` should be in {interval}. Received {name}={value!r}")
    return value


def check_resolution(resolution, min_resolution=1, *, arg="resolution", arch=None):
    """Raises ValueError unless `resolution` is an int >= `min_resolution` (the smallest size at
    which the architecture's weights fit)."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < min_resolution:
        where = f" for architecture '{arch}'" if arch else ""
        raise ValueError(
            f"`{arg}` should be an integer >= {min_resolution}{where} (the smallest size at which "
            f"its weights fit). Received {arg}={resolution!r}"
        )
    return resolution


def check_multiple(size, multiple, what="resolution", why=""):
    """Raises ValueError unless `size` is a positive multiple of `multiple`, naming the nearest
    valid sizes (`why`: the reason, e.g. "the patch grid must tile the image")."""
    if size >= multiple and size % multiple == 0:
        return size
    below = (size // multiple) * multiple
    nearest = ", ".join(str(s) for s in (below, below + multiple) if s >= multiple)
    reason = f" ({why})" if why else ""
    raise ValueError(f"{what} should be a multiple of {multiple}{reason}. Received {what}={size}. Nearest valid: {nearest}")
