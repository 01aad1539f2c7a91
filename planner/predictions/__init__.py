"""Predictions: a target's loss with an interval from the user's own small runs (form, page, plot, API), as jobs."""
