"""Flag parsing helpers shared by the experiment scripts (flags live only in experiments/)."""

import sys
import warnings

from absl import app

from experiments.quiet import quiet_absl_info


def parse_resolutions(text, flag="--resolutions"):
    """'224,210,196' -> [224, 210, 196]; a clear error naming the flag otherwise."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except (AttributeError, ValueError):
        raise ValueError(
            f"{flag} should be comma-separated positive integers, e.g. 224,210,196. Received {text!r}"
        ) from None
    if not values or any(v < 1 for v in values):
        raise ValueError(
            f"{flag} should be comma-separated positive integers, e.g. 224,210,196. Received {text!r}"
        )
    return values


def _one_line_warning(message, category, filename, lineno, line=None):
    return f"{category.__name__}: {message}\n"


def run_main(main, errors):
    """Runs an absl `main`; the expected `errors` end the program with a one-line message and
    exit status 2 instead of a traceback. Warnings print as `Category: message`, without the
    library's file and source line."""
    warnings.formatwarning = _one_line_warning

    def wrapped(argv):
        quiet_absl_info()
        if len(argv) > 1:
            sys.exit(f"error: unexpected arguments: {' '.join(argv[1:])}")
        try:
            return main(argv)
        except errors as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)

    app.run(wrapped)
