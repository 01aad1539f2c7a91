"""The plan form: the target, the small models' budget and optional bounds; checked by fits.plan before queueing."""
from django import forms

from fits import PlanInputError

from .services import plan_request


def _number(label, help_text, required=False, **kwargs):
    # Text inputs: people type 7e9, which <input type=number> step rules would reject in the browser.
    return forms.FloatField(label=label, help_text=help_text, required=required, min_value=0,
                            widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 14}), **kwargs)


class PlanForm(forms.Form):
    target_params = _number("Target parameters", "The big model's size N, e.g. 7e9.", required=True)
    target_tokens = _number("Target tokens", "Tokens it will be trained on, e.g. 1.4e11 (or give its compute).")
    target_compute = _number("or target compute (FLOPs)", "Its training compute; tokens = compute / 6N.")
    budget_flops = _number("Budget for the small models (FLOPs)", "All small models together, e.g. 3e20.")
    budget_fraction = _number("or budget as a share of the target's compute", "Between 0 and 1, e.g. 0.05.")
    min_size = _number("Smallest small model (optional)", "Parameters; default max(1e6, target / 3000).")
    max_size = _number("Largest small model (optional)", "Parameters, below the target; default target / 2.")
    max_models = forms.IntegerField(label="At most this many small models", initial=8, min_value=1, max_value=20)

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            plan_request(cleaned)
        except PlanInputError as exc:
            # A conflicting pair (both budgets, tokens and compute) is shown under each of its fields.
            for name in exc.fields:
                self.add_error(name if name in self.fields else None, exc.reason)
        return cleaned
