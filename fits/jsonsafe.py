"""Plain JSON types from numpy-laden results: the one sanitiser the library and the service use."""
from __future__ import annotations

import math

import numpy as np


def json_safe(value, *, nan: bool = False):
    """``value`` with numpy scalars and arrays unwrapped, tuples as lists and keys as strings.

    Non-finite floats become None (strict JSON, as PostgreSQL's jsonb requires), unless ``nan``
    keeps them as floats.
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v, nan=nan) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v, nan=nan) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if nan or math.isfinite(value) else None
    return value
