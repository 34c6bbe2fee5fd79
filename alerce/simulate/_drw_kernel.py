"""Compiled Ornstein-Uhlenbeck recursion (imported lazily: numba is only loaded when needed)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def ou_path(t, first, tau, sigma, z):  # pragma: no cover - compiled
    """Exact OU (damped random walk) sample; see :func:`alerce.simulate.models.drw`."""
    x = np.empty_like(t)
    for k in range(t.shape[0]):
        if first[k]:
            x[k] = sigma[k] * z[k]
        else:
            a = np.exp(-(t[k] - t[k - 1]) / tau[k])
            x[k] = a * x[k - 1] + sigma[k] * np.sqrt(1.0 - a * a) * z[k]
    return x
