"""Docstring sections that several estimators share, written once.

A docstring line that holds only ``%(name)s`` stands for the section
``name`` of :data:`SECTIONS`; :func:`fill_doc` puts the section in its place,
indented like that line, so the rendered docs read as if it were written
there. Imports nothing else of skhier.
"""

from __future__ import annotations

import re

__all__ = ["SECTIONS", "fill_doc"]

#: The shared sections, by name.
SECTIONS = {
    # The emcee settings every MCMC estimator takes (BaseHierarchicalEstimator).
    "emcee_settings": """\
n_walkers : int, default=32
    emcee walkers (raised to ``2 * n_params + 2`` if smaller).
n_steps : int or "auto", default="auto"
    Steps per walker, burn-in included. ``"auto"`` runs until the kept
    chain is longer than 50 autocorrelation times (or ``max_steps``).
n_burn : int or "auto", default="auto"
    Steps discarded as burn-in; ``"auto"`` uses ``max(100, 5 tau)``.
max_steps : int, default=20000
    Upper limit on steps per walker in ``"auto"`` mode.
thin : int, default=1
    Keep every ``thin``-th step.
random_state : int, RandomState instance or None, default=None
    Seeds the sampler (the walkers' start and every draw); a fixed value
    makes ``fit`` reproducible bit for bit.
progress : bool, default=False
    Show a progress bar during sampling (needs ``tqdm``).""",
    # The parallaxes of the distance estimators' fit (1-D and 3-D).
    "parallax_X": """\
X : array-like of shape (n_samples, 1)
    Parallaxes in mas (negative values allowed).
y : None
    Ignored.
X_err : array-like of shape (n_samples, 1) or (n_samples,), default=None
    Parallax standard errors in mas. Required
    unless ``parallax_error`` is set.""",
    # ``fit``'s sample_weight, as the base's PosteriorModel.sum_objects applies it.
    "sample_weight": """\
sample_weight : array-like of shape (n_samples,), default=None
    Non-negative weight of each row: its log-likelihood is multiplied
    by its weight, so an integer weight m counts the row m times and
    0 drops it. None: every weight is 1.""",
    # population_density of the population estimators (_distributions.population_density).
    "density_band": """\
level : float, default=0.9
    Probability content of the pointwise band.
n_grid : int, default=200""",
    "density_bunch": """\
result : sklearn.utils.Bunch
    ``grid``, ``median``, ``lower``, ``upper`` (pointwise posterior
    median and band of p(theta | alpha)), ``level``.""",
}

_PLACEHOLDER = re.compile(r"( *)%\((\w+)\)s")


def fill_doc(obj):
    """Put the shared sections into ``obj``'s docstring (a decorator).

    Examples
    --------
    >>> @fill_doc
    ... def f(X, sample_weight=None):
    ...     '''Parameters
    ...     ----------
    ...     %(sample_weight)s
    ...     '''
    >>> f.__doc__.splitlines()[2].strip()
    'sample_weight : array-like of shape (n_samples,), default=None'
    """
    lines = []
    for line in (obj.__doc__ or "").splitlines():
        m = _PLACEHOLDER.fullmatch(line)
        if m is None:
            lines.append(line)
            continue
        indent, name = m.groups()
        lines += [indent + part if part else part for part in SECTIONS[name].splitlines()]
    obj.__doc__ = "\n".join(lines) + ("\n" if (obj.__doc__ or "").endswith("\n") else "")
    return obj
