"""Warnings that point at the user's line, not at library internals."""

from __future__ import annotations

import os
import sys
import warnings

__all__ = ["warn"]


def _package_dirs() -> tuple[str, ...]:
    dirs = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]  # skhier/
    for name in ("sklearn", "joblib", "emcee", "numpy", "scipy"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None):
            dirs.append(os.path.dirname(os.path.abspath(module.__file__)))
    return tuple(d + os.sep for d in dirs)


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the first caller outside skhier's stack.

    The warning's file and line are those of the innermost frame that is not
    in skhier, scikit-learn, joblib, emcee, NumPy or SciPy, i.e. the user's
    call (``est.fit(...)``, ``cross_validate(...)``), whatever the depth of the
    internal calls in between.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn("look here")
    >>> caught[0].filename.endswith("_warnings.py")
    False
    """
    internal = _package_dirs()
    frame = sys._getframe(1)
    level = 2  # stacklevel 2 names warn()'s caller
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(internal):
        if frame.f_back is None:
            break
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
