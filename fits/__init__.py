"""scaleplan's scaling-law engine: a pure library (numpy, scipy, pandas; never Django)."""
from .api import predict_interval, predict_loss
from .fitting import fit_law
from .posterior import DEFAULT_PRIOR, ExponentPrior
from .result import FitResult
from .trainset import FitInputError
from .trackers import ImportLimits, ImportReport, RunsImport, RunsImportError, read_runs

__all__ = ["DEFAULT_PRIOR", "ExponentPrior", "FitInputError", "FitResult", "ImportLimits", "ImportReport",
           "RunsImport", "RunsImportError", "fit_law", "predict_interval", "predict_loss", "read_runs"]
