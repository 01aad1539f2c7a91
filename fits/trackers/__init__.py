"""Runs from where they are logged: TensorBoard event files, W&B exports, MLflow histories and stores.

``read_runs(...)`` returns the canonical runs table (../shared/CORPUS_FORMAT.md, "Runs for a
prediction") and a report of every value it did not keep, with the reason; bad input raises
:class:`RunsImportError` naming the file and the field.
"""
from .assemble import ImportReport, RunsImport
from .core import ImportLimits, RunsImportError
from .read import read_runs

__all__ = ["ImportLimits", "ImportReport", "RunsImport", "RunsImportError", "read_runs"]
