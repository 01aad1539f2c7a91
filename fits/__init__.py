"""scaleplan's scaling-law engine: a pure library (numpy, scipy, pandas; never Django)."""
from .api import predict_interval, predict_loss
from .fitting import DEFAULT_PRIOR, ExponentPrior, FitInputError, FitResult, fit_law

__all__ = ["DEFAULT_PRIOR", "ExponentPrior", "FitInputError", "FitResult", "fit_law", "predict_interval", "predict_loss"]
