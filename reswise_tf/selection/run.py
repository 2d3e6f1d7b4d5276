"""A selection study of one sweep, or of several models' sweeps of the same images: the
selectors asked for, on the same images, in one call.

When a selector that needs fitting (the cascade) is among them, the images are split into a
calibration part (where it is fitted) and an evaluation part, and every selector is measured on
the evaluation part, so all rows compare on the same images; otherwise on all images. The fixed
stages are always included (the reference among them); the random selector's trials are also
measured on all images (the thesis's Table 6, which had no calibration split).
"""

import dataclasses
import warnings

from reswise_tf.selection.cascade.search import resolve_stage
from reswise_tf.selection.common import Part, split_rows
from reswise_tf.selection.pool import StagePool
from reswise_tf.selection.registry import SELECTORS, option_names
from reswise_tf.selection.targets import DEFAULT_MAX_DROP, RANDOM, Target
from reswise_tf.utils.checks import check_choice
from reswise_tf.utils.progress import Progress


@dataclasses.dataclass
class SelectionReport:
    """What a selection study found (what `report.selection_report.write_reports` writes).

    Attributes:
      results: `SelectionResult`s, fixed rows first.
      curve: the cascade's calibration Pareto front measured on the reported part.
      split: the calibration/evaluation `Split`, or None (rows on all images).
      pool: the `StagePool` (one sweep, or several models' sweeps).
      topk: the k of the top-k columns.
      table6: the random selector on all images, as the thesis's Table 6 (which had no
        calibration split); None when random did not run. Equal to its row in `results`
        when the rows are on all images too.
    """

    results: list
    curve: list
    split: object
    pool: StagePool
    topk: int
    table6: object = None

    @property
    def rows(self):
        """The `selection.csv` rows (one dict per result)."""
        return [r.as_row() for r in self.results]


def run_selection(tables, selectors=tuple(SELECTORS), *, topk=5, max_drops=(), flops_budgets=(),
                  calibration_fraction=0.5, split_seed=0, stratify=True, verbose=0, **options):
    """Runs `selectors` over cached predictions; returns a `SelectionReport`.

    Args:
      tables: {resolution: PredictionTable} of one sweep, its `SweepCache`, or a `StagePool`
        (several models' sweeps of the same images, `StagePool.from_sweeps`).
      selectors: names from `SELECTORS` ("all" = every one).
      topk: the k of the second accuracy column (lowered to the classes kept in the cache).
      max_drops, flops_budgets: one cascade per target; budgets are fractions of native FLOPs
        or "random" (the random selector's expected mean FLOPs). Default: max_drop 0.5, plus
        the random selector's FLOPs when the random selector runs too. The oracle adds the
        perfect-decision cascade bound at each budget.
      calibration_fraction, split_seed, stratify: the calibration/evaluation split.
      verbose: 1 shows the cascade search's progress and time left.
      **options: the selectors' options, each taken by the selectors whose `Options` have it
        (random: choices, trials, seed; cascade: stages, max_stages, confidence, thresholds,
        metric; oracle: max_stages, metric). Every option is checked before any work.
    """
    pool = StagePool.of(tables)
    topk = pool.effective_topk(topk)
    specs = _specs(selectors)
    unknown = sorted(set(options) - set(option_names()))
    if unknown:
        raise ValueError(f"Unknown selection option(s) {', '.join(unknown)}. Available: {', '.join(option_names())}")
    targets = _targets(max_drops, flops_budgets, random_runs="random" in [s.name for s in specs])
    for target in targets:  # a target's own reference must be a stage of the pool (or the committee)
        if target.against is not None:
            resolve_stage(pool, target.against)
    settings = {**options, "targets": targets}
    chosen = {spec.name: spec.make_options(settings) for spec in specs}  # validated before any work
    for opts in chosen.values():
        if hasattr(opts, "check_pool"):  # and against what the cache holds
            opts.check_pool(pool, topk)
    # A budget given as 'random' is the random selector's expected FLOPs (its set is checked too).
    random = SELECTORS["random"]
    fraction = random.expected_fraction(pool, random.make_options(settings))
    chosen = {name: _matched(opts, fraction) for name, opts in chosen.items()}
    part, split = Part.all_images(pool, topk), None
    if any(spec.needs_calibration for spec in specs):
        split = split_rows(len(pool), calibration_fraction=calibration_fraction, seed=split_seed,
                           labels=pool.labels if stratify else None)
        progress = _search_progress() if verbose else None
        part = Part(pool, split.evaluation, "evaluation", topk, split.calibration, progress)
        _warn_if_small(split, pool, calibration_fraction)
    results = []
    for spec in specs:
        results += spec.run(part, chosen[spec.name])
    fitted = [r for r in results if "fit" in r.extra and not r.extra.get("alternative")]
    curve = SELECTORS[fitted[-1].selector].curve(part, fitted[-1]) if fitted else []
    table6 = None
    if "random" in chosen:
        table6 = (next(r for r in results if r.selector == "random") if split is None
                  else random.run(Part.all_images(pool, topk), chosen["random"])[0])
    return SelectionReport(results=results, curve=curve, split=split, pool=pool, topk=topk, table6=table6)


MIN_CALIBRATION = 100  # fewer images than this (or than classes) is too few to fit a cascade on


def _warn_if_small(split, pool, calibration_fraction):
    """Warns when the calibration part is too small for a trustworthy fit."""
    n, classes = len(split.calibration), len(set(pool.labels.tolist()))
    if n < max(MIN_CALIBRATION, classes):
        per = "" if pool.task == "segmentation" else f" for {classes} classes"  # a class map has no one label
        warnings.warn(
            f"The calibration part has {n} image(s){per}: the cascade is fitted on too few "
            f"images to be trusted (aim for at least {max(MIN_CALIBRATION, classes)}). Give it more with a larger "
            f"--calibration_fraction (now {calibration_fraction}) or a sweep over more images.",
            stacklevel=3,
        )


def _search_progress():
    """`fn(done, total)` printing the cascade search's progress line (stage sets searched)."""
    state = {}

    def report(done, total):
        if "bar" not in state:
            state["bar"] = Progress(total, unit="stage set")
        state["bar"].update(done)
        if done == total:
            state["bar"].close()

    return report


def _specs(selectors):
    """The specs of `selectors` in report order, "fixed" always included."""
    names = [selectors] if isinstance(selectors, str) else list(selectors)
    for name in names:
        check_choice(name, (*sorted(SELECTORS), "all"), "selector")
    return [spec for name, spec in SELECTORS.items() if "all" in names or name in names or name == "fixed"]


def _targets(max_drops, flops_budgets, *, random_runs):
    """The cascade targets; the default is max_drop 0.5 plus random's FLOPs when random runs."""
    targets = [Target.max_drop(d) for d in max_drops] + [Target.flops_budget(b) for b in flops_budgets]
    if not targets:
        targets = [Target.max_drop(DEFAULT_MAX_DROP)] + ([Target.flops_budget(RANDOM)] if random_runs else [])
    return tuple(targets)


def _matched(options, fraction):
    """`options` with every budget taken from the random selector set to `fraction`."""
    targets = getattr(options, "targets", None)
    if not targets:
        return options
    return dataclasses.replace(options, targets=tuple(t.matched(fraction) for t in targets))
