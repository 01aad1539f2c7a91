"""fits.plots.iso_flop_figure: a plan's iso-FLOP curves, drawn from the stored plan alone."""
import json

import pytest
from matplotlib.figure import Figure

from fits.jsonsafe import json_safe
from fits.plan import PlanRequest, recommend
from fits.plots import iso_flop_figure

from .test_errormodel import flat_model


@pytest.fixture(scope="module")
def stored_plan():
    plan = recommend(flat_model(), PlanRequest(target_params=7e9, target_tokens=1.4e11, budget_fraction=0.05,
                                               max_models=5))
    return json.loads(json.dumps(json_safe(plan.to_dict())))  # as the service stores it


def test_the_iso_flop_figure_marks_the_target_the_runs_and_the_optimum_and_says_which_is_which(stored_plan, tmp_path):
    fig = iso_flop_figure(stored_plan)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(lab.startswith("iso-FLOP at the target's compute") for lab in labels)
    assert any(lab.startswith("iso-FLOP at the whole budget") for lab in labels)
    assert any(lab.startswith("planned runs") for lab in labels)
    assert any(lab.startswith("target (7B") for lab in labels)
    assert any(lab.startswith("compute-optimal split") for lab in labels)
    assert ax.get_xscale() == "log"
    fig.savefig(tmp_path / "iso.png")
    assert (tmp_path / "iso.png").stat().st_size > 10_000


def test_a_version_1_plan_without_recommended_still_draws(stored_plan):
    old = {k: v for k, v in stored_plan.items() if k != "recommended"}
    assert isinstance(iso_flop_figure(old), Figure)
