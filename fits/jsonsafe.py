"""Plain JSON from what the science returns: the one sanitiser for results stored or printed.

numpy scalars and arrays become Python numbers and lists, tuples become lists,
dict keys become strings, and non-finite floats (NaN, +-inf) become None: JSON has
no NaN, PostgreSQL's jsonb refuses it, and None reads as "no value / no bound".
"""
from __future__ import annotations

import math

import numpy as np


def json_safe(value):
    """``value`` with every number a finite Python int/float or None, recursively through dicts and sequences."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value
