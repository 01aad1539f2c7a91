"""The user's runs where they live and as they train.

- trackers: an upload of TensorBoard logs (a .zip or .tar(.gz) of event files), a W&B or MLflow export,
  read by ``fits.read_runs`` into the canonical runs table with its import report, for a prediction;
- following: a prediction updated with newer checkpoints is a new prediction linked to the previous one;
  the prediction job's runner adds how the prediction moved as the runs advanced (``fits.prediction_history``);
- advice: which run to train next (``fits.advise``), as a job of its own kind;
- forms, views, api, serializers, plots: their pages (under /predictions/ and /advice/) and API.
"""
