"""Figures of a prediction's stored histories (fits.PredictionHistory.figure), drawn without refitting."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display on servers and workers
from fits import PredictionHistory  # noqa: E402  (after choosing the backend)

# The histories a prediction's result may hold, by the name of their figure.
HISTORIES = {"history": "history", "uploads": "uploads_history"}


def stored_history(result: dict | None, name: str) -> dict | None:
    """The stored history behind figure ``name``, if the result has one that could be made."""
    key = HISTORIES.get(name)
    data = (result or {}).get(key) if key else None
    return data if data and "history" in data else None


def history_png(data: dict, *, title: str | None = None) -> bytes:
    """PNG of a stored history: predicted loss and its band over the as-of axis, the band's width below."""
    figure = PredictionHistory.from_dict(data).figure(title=title)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=100)
    return out.getvalue()
