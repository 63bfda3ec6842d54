"""Numeric guards shared by the estimators: which values a least-squares computation can take.

Fits and summaries form squares and cross-products of the data, so a column whose magnitude is
near the float limits (1e300, 1e-300) would overflow or underflow silently; :func:`check_numeric`
refuses such columns, and infinite values, with a :class:`~analysis.core.errors.ModelError` that
says to rescale (change the unit).
"""

from __future__ import annotations

import numpy as np

from analysis.core.errors import ModelError

# Fits form squares and cross-products of the data, and variance formulas (Welch's df) their
# squares again: numeric columns must have magnitudes within [1 / SCALE_LIMIT, SCALE_LIMIT] (zero
# allowed) for fourth powers to stay finite in double precision.
SCALE_LIMIT = 1e75


def check_numeric(values: np.ndarray, name: str) -> None:
    """Refuse infinite values and magnitudes whose powers would leave the floating-point range.

    Raises
    ------
    ModelError
        ``name`` holds +-inf, or its largest magnitude is above :data:`SCALE_LIMIT` or (while not
        0) below ``1 / SCALE_LIMIT``; the message says to rescale (change the unit).
    """
    values = np.asarray(values, dtype=float)
    infinite = np.isinf(values)
    if infinite.any():
        raise ModelError(f"column '{name}' holds {int(infinite.sum())} infinite value(s)")
    finite = values[np.isfinite(values)]
    top = float(np.abs(finite).max()) if finite.size else 0.0
    if top > SCALE_LIMIT or 0 < top < 1 / SCALE_LIMIT:
        raise ModelError(
            f"column '{name}' has values of magnitude {top:.3g}, outside the range {1 / SCALE_LIMIT:.0e} to "
            f"{SCALE_LIMIT:.0e} that trialkit's estimators handle in double precision; rescale it (change its unit)"
        )
