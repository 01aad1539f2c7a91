"""Convert a ColPret checkout into scaleplan's canonical corpus (pure: pandas/numpy/openpyxl/requests).

    from planner.corpus.colpret.convert import convert
    result = convert("../shared/colpret")   # or "https://raw.githubusercontent.com/IBM/ColPret/<commit>/"
    result.rows, result.families, result.missing, result.warnings

Every rule applied is in ../shared/colpret/README.md; each reader module names its section.
The entry points live in planner.corpus.colpret.convert (ConversionResult, MissingFile, READERS, convert,
convert_directory, manifest_paths); this package imports nothing, so its readers never loop back through it.
"""
