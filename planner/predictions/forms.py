"""The prediction form: the runs as a canonical CSV (pasted or uploaded) and the target."""
from django import forms

from fits import CorpusValidationError

from .services import DEFAULT_COVERAGE, PredictionInputError, prediction_runs_from_csv

# A form shows this many of a file's problems; the rest are counted.
MAX_PROBLEMS_SHOWN = 20


class PredictionForm(forms.Form):
    csv_text = forms.CharField(
        label="Paste CSV", required=False, widget=forms.Textarea(attrs={"rows": 8, "cols": 80, "spellcheck": "false"}),
        help_text="CSV with its header line, one family's runs: model, params, tokens, value (the other "
                  "canonical columns and run_tokens optional).",
    )
    file = forms.FileField(label="or upload a CSV(.gz)", required=False)
    metric = forms.CharField(
        required=False, max_length=200,
        help_text="Metric to fit; empty: the family's primary metric (a validation loss first).",
    )
    target_params = forms.FloatField(label="Target parameters", min_value=1, help_text="e.g. 7e9")
    target_tokens = forms.CharField(
        label="Target tokens", max_length=4000,
        help_text="One number (e.g. 3e11), or several separated by commas for the predicted curve.",
    )
    coverage = forms.FloatField(initial=DEFAULT_COVERAGE, min_value=0.5, max_value=0.99,
                                help_text="Probability the interval should cover (0.5-0.99).")

    def clean_target_tokens(self):
        text = self.cleaned_data["target_tokens"]
        values = []
        for part in text.split(","):
            try:
                value = float(part.strip())
            except ValueError:
                raise forms.ValidationError(f"{part.strip()!r} is not a number.") from None
            if not value > 0 or value == float("inf"):
                raise forms.ValidationError(f"{part.strip()!r} is not a positive number.")
            values.append(value)
        return values[0] if len(values) == 1 else values

    def clean(self):
        cleaned = super().clean()
        text, upload = cleaned.get("csv_text", "").strip(), cleaned.get("file")
        if bool(text) == bool(upload):
            raise forms.ValidationError("Paste the CSV or upload a file (one of the two).")
        source_field = "csv_text" if text else "file"
        try:
            runs, source = prediction_runs_from_csv(source=text.encode() if text else upload,
                                                    metric=cleaned.get("metric") or None)
        except CorpusValidationError as exc:
            shown = [str(p) for p in exc.problems[:MAX_PROBLEMS_SHOWN]]
            if len(exc.problems) > MAX_PROBLEMS_SHOWN:
                shown.append(f"... and {len(exc.problems) - MAX_PROBLEMS_SHOWN} more problem(s).")
            self.add_error(source_field, shown or [str(exc)])
            return cleaned
        except PredictionInputError as exc:
            self.add_error("metric" if exc.field == "metric" else source_field, str(exc))
            return cleaned
        if upload:
            source["filename"] = upload.name
        cleaned["runs"], cleaned["source"] = runs, source
        return cleaned
