"""The registry of selectors: each is one module with an `Options` dataclass (which validates
itself) and `run(part, options) -> [SelectionResult]`; everything dispatches through here."""

import dataclasses
from collections.abc import Callable

from reswise_tf.selection import cascade, committee, fixed, oracle, random_choice


@dataclasses.dataclass(frozen=True)
class SelectorSpec:
    """A registered selector.

    Attributes:
      name: registry key.
      options: its options dataclass (`options(**kwargs)` validates them).
      run: `run(part, options) -> [SelectionResult]`.
      needs_calibration: it is fitted on a calibration part (`part.calibration`).
      deployable: it can run without labels.
      expected_fraction: `fn(pool, options) -> float`, the mean FLOPs it is expected to spend
        as a fraction of the reference's (a budget other selectors can be matched to), or None.
      curve: `fn(part, result) -> [SelectionResult]`, its accuracy/FLOPs curve around a fitted
        result (reported beside the rows), or None.
    """

    name: str
    options: type
    run: Callable
    needs_calibration: bool = False
    deployable: bool = True
    expected_fraction: Callable | None = None
    curve: Callable | None = None

    def make_options(self, settings):
        """Its `Options` from the entries of `settings` that it has (others are left out)."""
        names = {f.name for f in dataclasses.fields(self.options)}
        return self.options(**{k: v for k, v in settings.items() if k in names})


# In the order the reports list them.
SELECTORS = {
    spec.name: spec
    for spec in (
        SelectorSpec("fixed", fixed.Options, fixed.run),
        SelectorSpec("random", random_choice.Options, random_choice.run,
                     expected_fraction=random_choice.expected_fraction),
        SelectorSpec("committee", committee.Options, committee.run),
        SelectorSpec("cascade", cascade.Options, cascade.run, needs_calibration=True,
                     curve=lambda part, result: cascade.curve(part, result.extra["fit"])),
        SelectorSpec("oracle", oracle.Options, oracle.run, deployable=False),
    )
}


def get_selector(name):
    """The `SelectorSpec` registered as `name`; the error lists the valid names."""
    try:
        return SELECTORS[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown selector {name!r}. Available: {', '.join(sorted(SELECTORS))}") from None


def option_names():
    """Every option any registered selector takes."""
    return sorted({f.name for spec in SELECTORS.values() for f in dataclasses.fields(spec.options)})
