"""Load pickled pandas objects without letting the file run arbitrary code.

Unpickling calls whatever global a pickle names. This unpickler resolves only the
classes and functions needed to rebuild DataFrames, Series, Index and ndarrays
(as written by pandas 1.x/2.x with numpy 1.x/2.x) and refuses anything else.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path

ALLOWED_GLOBALS = frozenset({
    ("builtins", "slice"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("pandas._libs.internals", "_unpickle_block"),
    ("pandas.core.frame", "DataFrame"),
    ("pandas.core.series", "Series"),
    ("pandas.core.indexes.base", "Index"),
    ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.indexes.range", "RangeIndex"),
    ("pandas.core.internals.managers", "BlockManager"),
    ("pandas.core.internals.managers", "SingleBlockManager"),
    ("pandas.core.internals.blocks", "Block"),
    ("pandas.core.internals.blocks", "new_block"),
})


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the pandas/numpy allow-list."""


class RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, *, origin: str = "pickle"):
        super().__init__(file)
        self.origin = origin

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"{self.origin}: refuses to load global {module}.{name}: only pandas/numpy data objects are allowed"
            )
        return super().find_class(module, name)


def load(path: Path):
    with open(path, "rb") as handle:
        return RestrictedUnpickler(handle, origin=str(path)).load()


def loads(data: bytes, *, origin: str = "pickle"):
    return RestrictedUnpickler(io.BytesIO(data), origin=origin).load()
