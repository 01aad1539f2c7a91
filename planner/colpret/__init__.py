"""Convert a ColPret checkout into scaleplan's canonical corpus (pure: pandas/numpy/openpyxl/requests).

    from planner.colpret import convert
    result = convert("../shared/colpret")   # or "https://raw.githubusercontent.com/IBM/ColPret/<commit>/"
    result.rows, result.families, result.missing, result.warnings

Every rule applied is in ../shared/colpret/README.md; each reader module names its section.
"""
from .convert import ConversionResult, MissingFile, READERS, convert, convert_directory, manifest_paths

__all__ = ["ConversionResult", "MissingFile", "READERS", "convert", "convert_directory", "manifest_paths"]
