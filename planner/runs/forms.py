"""Forms: runs from a tracker's logs for a prediction, a prediction's update with newer runs, next-run advice.

Each form checks everything a request can be refused for before a job exists, and shows each error under its
field: the logs are read here (planner.runs.trackers), a runs CSV by planner.predictions' reader.
"""
from django import forms

from fits import CorpusValidationError

from ..predictions.services import DEFAULT_COVERAGE, PredictionInputError, prediction_runs_from_csv
from .advice import MAX_RUNS
from .trackers import SOURCES, TrackerInputError, tracker_runs

# A form shows this many of a file's problems; the rest are counted.
MAX_PROBLEMS_SHOWN = 20


def _number(label, help_text, required=False, **kwargs):
    # Text inputs: people type 7e9, which <input type=number> step rules would reject in the browser.
    return forms.FloatField(label=label, help_text=help_text, required=required, min_value=0,
                            widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 14}), **kwargs)


def _text(label, help_text, **kwargs):
    return forms.CharField(label=label, help_text=help_text, required=False, max_length=200, **kwargs)


class TokensField(forms.CharField):
    """One token count (3e11), or several separated by commas (a curve)."""

    def clean(self, value):
        text = super().clean(value)
        values = []
        for part in text.split(","):
            try:
                number = float(part.strip())
            except ValueError:
                raise forms.ValidationError(f"{part.strip()!r} is not a number.") from None
            if not 0 < number < float("inf"):
                raise forms.ValidationError(f"{part.strip()!r} is not a positive number.")
            values.append(number)
        return values[0] if len(values) == 1 else values


def _problems(exc: CorpusValidationError) -> list[str]:
    shown = [str(p) for p in exc.problems[:MAX_PROBLEMS_SHOWN]]
    if len(exc.problems) > MAX_PROBLEMS_SHOWN:
        shown.append(f"... and {len(exc.problems) - MAX_PROBLEMS_SHOWN} more problem(s).")
    return shown or [str(exc)]


class TrackerFieldsForm(forms.Form):
    """The logs and how to read them (fits.read_runs' options)."""

    logs = forms.FileField(
        label="Logs", required=False,
        help_text="TensorBoard: a .zip or .tar(.gz) of the log directory (one sub-directory per run) or one event "
                  "file. W&B: a chart's Export CSV or run histories (CSV, JSONL, JSON; several in a .zip). MLflow: "
                  "a metric history CSV, or a .zip of an mlruns store.")
    source = forms.ChoiceField(choices=[(s, s) for s in SOURCES], initial="auto",
                               help_text="auto: recognised from the files.")
    metric = _text("Loss metric", "The TensorBoard tag, W&B column or MLflow key of the loss, e.g. train/loss.")
    tokens_per_step = _number("Tokens per step", "Tokens = step x this (batch size x sequence length), e.g. 524288; "
                                                 "per run in the params below if the runs differ.")
    tokens_column = _text("or a tokens series", "A series logged at the same steps, e.g. train/tokens_seen.")
    params = forms.CharField(
        label="Parameters of each run", required=False, max_length=200_000,
        widget=forms.Textarea(attrs={"rows": 5, "cols": 60, "spellcheck": "false"}),
        help_text="CSV with a header: run,params (optional columns tokens_per_step, run_tokens or run_steps: a run's "
                  "planned length, for runs still training); or JSON {\"run\": params}. Runs it does not list take "
                  "the count from their tracker config (n_params, num_params, ...).")
    params_file = forms.FileField(label="or a params file", required=False,
                                  help_text="The same as a .csv or .json file.")
    params_key = _text("Params key", "The config key or column holding the count, if not a usual one.")
    only_runs = _text("Only these runs", "Run names separated by commas; empty: every run.")
    experiment = _text("MLflow experiment", "Name or id, for a store holding several.")

    def tracker_options(self) -> dict:
        return {k: self.cleaned_data.get(k) for k in ("source", "metric", "tokens_per_step", "tokens_column",
                                                      "params_key", "only_runs", "experiment")}

    def read_logs(self, *, params_mapping: dict | None = None) -> bool:
        """Read the logs into cleaned_data["runs"] and ["tracker"]; False (with the error on its field) if not."""
        try:
            runs, tracker = tracker_runs(logs=self.cleaned_data["logs"], options=self.tracker_options(),
                                         params_upload=self.cleaned_data.get("params_file"),
                                         params_text=self.cleaned_data.get("params") or "",
                                         params_mapping=params_mapping)
        except TrackerInputError as exc:
            self.add_error(exc.field if exc.field in self.fields else "logs", str(exc))
            return False
        self.cleaned_data["runs"], self.cleaned_data["tracker"] = runs, tracker
        return True


class TrackerImportForm(TrackerFieldsForm):
    """Logs for a prediction of the target."""

    target_params = _number("Target parameters", "e.g. 7e9", required=True)
    target_tokens = TokensField(label="Target tokens", max_length=4000,
                                help_text="One number (e.g. 3e11), or several separated by commas for a curve.")
    coverage = forms.FloatField(initial=DEFAULT_COVERAGE, min_value=0.5, max_value=0.99,
                                help_text="Probability the interval should cover (0.5-0.99).")

    field_order = ["logs", "source", "metric", "tokens_per_step", "tokens_column", "params", "params_file",
                   "params_key", "only_runs", "experiment", "target_params", "target_tokens", "coverage"]

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("logs") and "logs" not in self.errors:
            self.add_error("logs", "Upload the logs.")
        if not self.errors:
            self.read_logs()
        return cleaned


class PredictionUpdateForm(TrackerFieldsForm):
    """Newer checkpoints for a prediction: a runs CSV (pasted or uploaded) or the tracker's logs again."""

    csv_text = forms.CharField(
        label="Paste CSV", required=False, max_length=10_000_000,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80, "spellcheck": "false"}),
        help_text="Runs as for a prediction: model, params, tokens, value (run_tokens and the other canonical "
                  "columns optional). Only the new checkpoints, or all of them again.")
    file = forms.FileField(label="or upload a runs CSV(.gz)", required=False)

    field_order = ["csv_text", "file", "logs"]

    def __init__(self, *args, params_mapping: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.params_mapping = params_mapping
        self.fields["logs"].label = "or the tracker's logs"

    def clean(self):
        cleaned = super().clean()
        text = (cleaned.get("csv_text") or "").strip()
        given = [name for name, value in (("csv_text", text), ("file", cleaned.get("file")),
                                          ("logs", cleaned.get("logs"))) if value]
        if len(given) != 1:
            raise forms.ValidationError("Paste runs, upload a runs CSV or upload the logs (one of the three).")
        if self.errors:
            return cleaned
        cleaned["field"] = given[0]
        if given[0] == "logs":
            given_params = cleaned.get("params") or cleaned.get("params_file")
            self.read_logs(params_mapping=None if given_params else self.params_mapping)
            return cleaned
        try:
            runs, source = prediction_runs_from_csv(source=text.encode() if text else cleaned["file"])
        except CorpusValidationError as exc:
            self.add_error(given[0], _problems(exc))
            return cleaned
        except PredictionInputError as exc:
            self.add_error(given[0], str(exc))
            return cleaned
        if cleaned.get("file"):
            source["filename"] = cleaned["file"].name
        cleaned["runs"], cleaned["source"] = runs, source
        return cleaned


class AdviceForm(forms.Form):
    """The runs so far (one of the user's predictions, or a runs CSV), the target and the budget left."""

    prediction = forms.TypedChoiceField(
        label="Runs of prediction", coerce=int, required=False, empty_value=None,
        help_text="One of your predictions: its runs (and, unless given below, its target).")
    file = forms.FileField(label="or upload a runs CSV(.gz)", required=False,
                           help_text="model, params, tokens, value (run_tokens optional).")
    target_params = _number("Target parameters", "e.g. 7e9; empty: the plan's or the prediction's.")
    target_tokens = _number("Target tokens", "e.g. 1.4e11; empty: the plan's or the prediction's.")
    budget_flops = _number("FLOPs left for new runs", "e.g. 2e21; or leave empty and start from a plan.")
    plan = forms.TypedChoiceField(
        label="or the budget of plan", coerce=int, required=False, empty_value=None,
        help_text="One of your plans: its budget for the small models less what the runs take (6 N D of each "
                  "run's planned tokens); its target unless given.")
    max_runs = forms.IntegerField(label="Runs to advise", initial=1, min_value=1, max_value=MAX_RUNS,
                                  help_text=f"1-{MAX_RUNS}: each further run as if the earlier ones were done.")

    def __init__(self, *args, predictions=(), plans=(), **kwargs):
        """``predictions``, ``plans``: the user's, as (id, label) choices (planner.runs.views)."""
        super().__init__(*args, **kwargs)
        self.fields["prediction"].choices = [("", "-"), *predictions]
        self.fields["plan"].choices = [("", "-"), *plans]

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("file")
        if bool(upload) == (cleaned.get("prediction") is not None):
            raise forms.ValidationError("Choose one of your predictions or upload a runs CSV (one of the two).")
        if upload and not self.errors:
            try:
                cleaned["runs"], _ = prediction_runs_from_csv(source=upload)
            except CorpusValidationError as exc:
                self.add_error("file", _problems(exc))
            except PredictionInputError as exc:
                self.add_error("file", str(exc))
        return cleaned

