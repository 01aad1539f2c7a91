"""Predictions from the user's runs: input checks, the job's runner on corpus data, its diagnostics, the plot."""
import gzip
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.conf import settings

from fits.canonical import CorpusValidationError
from planner.models import Job
from planner.jobs.services import JobFailure
from planner.predictions.services import (
    PredictionInputError,
    prediction_enqueue,
    prediction_plot_png,
    prediction_run,
    prediction_runs_from_csv,
)

pytestmark = pytest.mark.django_db

CORPUS = Path(settings.SCALEPLAN_SHARED_DIR) / "corpus" / "colpret.csv.gz"
HEADER = "family,model,arch,params,tokens,step,seed,dataset,epochs,flops,metric,value,split,source\n"


@lru_cache(maxsize=1)
def gpt3() -> pd.DataFrame:
    """The gpt3 family's validation-loss rows of the reference corpus."""
    if not CORPUS.exists():
        pytest.skip(f"reference corpus not found at {CORPUS}")
    with gzip.open(CORPUS, "rt") as f:
        lines = [HEADER] + [line for line in f if line.startswith("gpt3,")]
    from io import StringIO

    frame = pd.read_csv(StringIO("".join(lines)), keep_default_na=False, dtype={"seed": str})
    return frame[frame["metric"] == "val_loss"]


def as_runs(frame: pd.DataFrame) -> list[dict]:
    return [
        {"model": m, "params": float(n), "tokens": float(t), "value": float(v), "seed": str(s)}
        for m, n, t, v, s in zip(frame["model"], frame["params"], frame["tokens"], frame["value"], frame["seed"])
    ]


def law(n, d, E=1.7, A=400.0, alpha=0.34, B=410.0, beta=0.28):
    return E + A / np.asarray(n, dtype=float) ** alpha + B / np.asarray(d, dtype=float) ** beta


def synthetic_runs(sizes=(1e8, 3e8, 1e9, 3e9), tokens=np.geomspace(2e9, 2e10, 12), noise=0.002, seed=0, **law_kw):
    rng = np.random.default_rng(seed)
    runs = []
    for n in sizes:
        wiggle = rng.normal(0, noise, size=len(tokens))
        for t, e in zip(tokens, wiggle):
            runs.append({"model": f"m-{n:.0e}", "params": n, "tokens": float(t), "value": float(law(n, t, **law_kw) * (1 + e))})
    return runs


def run_job(runs, target_params, target_tokens, coverage=0.8):
    job = Job.objects.create(kind=Job.Kind.PREDICTION, status=Job.Status.RUNNING, input={
        "runs": runs, "target_params": target_params, "target_tokens": target_tokens, "coverage": coverage,
    })
    seen = []
    result = prediction_run(job=job, progress=lambda fraction, message="": seen.append((fraction, message)))
    return job, result, seen


def codes(result):
    return [d["code"] for d in result["diagnostics"]]


# --- the runner on a corpus slice -------------------------------------------------------------


def test_it_predicts_gpt3_175b_within_5_percent_from_the_smaller_sizes():
    family = gpt3()
    big = family[family["params"] == family["params"].max()]
    small = family[family["params"] < family["params"].max()]
    final_tokens = float(big["tokens"].max())
    actual = float(big.sort_values("tokens")["value"].iloc[-1])

    job, result, _ = run_job(as_runs(small), float(big["params"].iloc[0]), final_tokens)

    assert abs(result["prediction"] - actual) / actual < 0.05
    assert result["lower"] < result["prediction"] < result["upper"]
    assert result["coverage"] == 0.8
    assert result["law"]["law"] == "chinchilla" and result["law"]["success"]
    assert 0.05 < result["law"]["params"]["alpha"] < 1.0
    assert result["data"]["sizes"] == sorted(small["params"].unique().astype(float).tolist())
    # 175B from at most 13B: 13.5x, past the 10x the warning starts at.
    assert codes(result) == ["large_extrapolation"]
    assert "13.5x the largest run" in result["diagnostics"][0]["message"]


def test_it_reports_progress_through_validating_fitting_the_interval_done():
    _, _, seen = run_job(synthetic_runs(), 3e10, 2e11)

    messages = [m for _, m in seen]
    assert messages[0] == "validating" and messages[-1] == "done"
    assert messages.index("fitting") < messages.index("interval") < messages.index("done")
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_the_result_says_which_method_was_chosen_and_why():
    _, result, _ = run_job(synthetic_runs(), 3e10, 2e11)
    assert result["choice"]["method"] in {"curves", "final", "all-points", "curves+cap", "final+cap",
                                          "all-points+cap"}
    assert set(result["choice"]["rollout_mean"]) >= {"curves", "all-points"}
    assert result["method"]["name"] == result["choice"]["method"]
    # No error model yet: the interval is the bootstrap's with the corpus table, and says so.
    assert result["expected_are"] is None and "no error model" in result["interval"]["from"]


def test_with_an_error_model_the_interval_is_what_it_expects_of_this_design():
    from planner.errormodels.services import error_model_store
    from tests.planner.plans.test_plans import small_error_model

    artifact = error_model_store(model=small_error_model())
    _, result, _ = run_job(synthetic_runs(), 3e10, 2e11)
    assert result["interval"]["from"].startswith(f"error model v{artifact.version}")
    expected = result["expected_are"]
    assert 0 < expected["p10"] < expected["p50"] < expected["p90"] and expected["error_model_version"] == artifact.version
    assert result["lower"] < result["prediction"] < result["upper"]
    # Its band is the model's: no bootstrap replicates were fitted.
    assert result["interval"]["n_boot"] == 0


def test_a_list_of_target_tokens_gives_a_curve_with_an_interval_at_each_point():
    tokens = [1e11, 2e11, 4e11]
    _, result, _ = run_job(synthetic_runs(), 3e10, tokens)

    assert result["target_tokens"] == tokens
    assert len(result["prediction"]) == len(result["lower"]) == len(result["upper"]) == 3
    assert result["prediction"] == sorted(result["prediction"], reverse=True)  # more tokens, lower loss
    for p in result["points"]:
        assert p["lower"] < p["prediction"] < p["upper"]
    # On noise-free-ish data the law itself is recovered: the truth is inside the interval.
    truth = law(3e10, np.array(tokens))
    assert np.all((np.array(result["lower"]) < truth) & (truth < np.array(result["upper"])))


def test_clean_data_gets_no_diagnostics():
    _, result, _ = run_job(synthetic_runs(), 1e10, 2e11)
    assert result["diagnostics"] == []


# --- each diagnostic on a crafted input ---------------------------------------------------------


def test_it_warns_about_fewer_than_three_sizes():
    _, result, _ = run_job(synthetic_runs(sizes=(1e8, 1e9)), 5e9, 1e11)
    assert "few_sizes" in codes(result)
    assert "Only 2 model size(s)" in result["diagnostics"][codes(result).index("few_sizes")]["message"]


def test_it_warns_about_an_extrapolation_over_ten_times_the_largest_run():
    _, result, _ = run_job(synthetic_runs(), 3e9 * 11, 1e11)
    assert codes(result) == ["large_extrapolation"]
    assert "11x the largest run" in result["diagnostics"][0]["message"]


def test_it_notes_checkpoints_before_1e9_tokens_dropped_by_the_policy():
    _, result, _ = run_job(synthetic_runs(tokens=np.geomspace(1e8, 2e10, 16)), 1e10, 2e11)
    assert codes(result) == ["early_checkpoints"]
    message = result["diagnostics"][0]["message"]
    assert message.startswith("28 checkpoint(s) before 1e+09 tokens") and "dropped 28." in message  # 7 per run


def test_it_flags_a_run_far_off_the_law_as_an_outlier():
    runs = synthetic_runs(sizes=(1e8, 2e8, 4e8, 8e8, 1.6e9, 3.2e9))
    for r in runs:
        if r["params"] == 4e8:
            r["value"] *= 1.06  # a bad seed: 6% above its size's curve

    _, result, _ = run_job(runs, 1e10, 2e11)

    outliers = [d for d in result["diagnostics"] if d["code"] == "outlier_run"]
    assert len(outliers) == 1 and "'m-4e+08'" in outliers[0]["message"]


def test_it_warns_about_exponents_outside_the_corpus_range():
    _, result, _ = run_job(synthetic_runs(alpha=1.6, A=4e13), 1e10, 2e11)
    unusual = [d for d in result["diagnostics"] if d["code"] == "unusual_exponent"]
    assert unusual and "alpha" in unusual[0]["message"] and "0.05-1" in unusual[0]["message"]


# --- bad input: clear errors, nothing left queued -----------------------------------------------


@pytest.mark.parametrize("change, field, message", [
    (lambda r: r[3].update(value=-1.0), "runs", "runs field 'value' must be positive; row 3 has -1.0"),
    (lambda r: r[5].update(tokens="lots"), "runs", "runs[5].tokens: not a number: 'lots'"),
    (lambda r: r[0].pop("params"), "runs", "runs[0].params: required value is empty"),
    (lambda r: r.clear(), "runs", "at least one run"),
    # The importer's value rules (issue 11 #7): epochs, one params per run, conflicting duplicates, ranges, names.
    (lambda r: r[2].update(epochs=-5), "runs", "runs[2].epochs: must be a finite number >= 0"),
    (lambda r: r[1].update(params=r[1]["params"] * 2), "runs", "runs[1].params: model 'm-1e+08' has params"),
    (lambda r: r.append({**r[0], "value": r[0]["value"] + 0.1}), "runs", "with a different value"),
    (lambda r: r[0].update(params=1e308), "runs", "runs[0].params: is too large"),
    (lambda r: r[0].update(model="=HYPERLINK(1)"), "runs", "runs[0].model: must not start with '='"),
    (lambda r: r[0].update(run_tokens=1.0), "runs", "runs[0].run_tokens: is the run's final tokens"),
])
def test_enqueue_rejects_bad_runs_naming_the_row_and_creates_no_job(change, field, message):
    runs = synthetic_runs()
    change(runs)
    with pytest.raises(PredictionInputError) as caught:
        prediction_enqueue(runs=runs, target_params=1e10, target_tokens=2e11)
    assert caught.value.field == field and message in str(caught.value)
    assert not Job.objects.exists()


@pytest.mark.parametrize("target, field", [
    ({"target_params": 0, "target_tokens": 1e11}, "target_params"),
    ({"target_params": 1e10, "target_tokens": [1e11, -5.0]}, "target_tokens"),
    ({"target_params": 1e10, "target_tokens": [], }, "target_tokens"),
    ({"target_params": 1e10, "target_tokens": 1e11, "coverage": 1.0}, "coverage"),
])
def test_enqueue_rejects_bad_targets_naming_the_field(target, field):
    with pytest.raises(PredictionInputError) as caught:
        prediction_enqueue(runs=synthetic_runs(), **target)
    assert caught.value.field == field
    assert not Job.objects.exists()


def test_a_job_whose_runs_cannot_be_fitted_fails_with_the_reason():
    job = Job.objects.create(kind=Job.Kind.PREDICTION, status=Job.Status.RUNNING, input={
        "runs": [{"model": "a", "params": 1e8, "tokens": 1e9, "value": "x"}], "target_params": 1e9,
        "target_tokens": 1e10, "coverage": 0.8,
    })
    with pytest.raises(JobFailure, match="The runs cannot be fitted: .*'value'"):
        prediction_run(job=job, progress=lambda *a: None)


# --- CSV input ------------------------------------------------------------------------------------


def csv_of(runs, family="mine", metric="val_loss", extra=""):
    rows = "".join(
        f"{family},{r['model']},dec,{int(r['params'])},{r['tokens']!r},,,,,,{metric},{r['value']!r},validation,\n"
        for r in runs
    )
    return (HEADER + rows + extra).encode()


def test_csv_runs_use_the_primary_metric_unless_one_is_named():
    runs = synthetic_runs()
    extra = "mine,m-1e+08,dec,100000000,1e10,,,,,,train_loss,2.5,train,\n"

    parsed, about = prediction_runs_from_csv(source=csv_of(runs, extra=extra))
    # The other metric's row is not fitted, and not dropped silently: it is counted by metric.
    assert about == {"family": "mine", "metric": "val_loss", "other_metrics": {"train_loss": 1}}
    assert len(parsed) == len(runs)
    assert parsed[0] == {"model": runs[0]["model"], "params": int(runs[0]["params"]), "tokens": runs[0]["tokens"],
                         "value": runs[0]["value"], "seed": ""}

    parsed, about = prediction_runs_from_csv(source=csv_of(runs, extra=extra), metric="train_loss")
    assert about["metric"] == "train_loss" and len(parsed) == 1


def test_csv_with_several_families_is_rejected_naming_them():
    beta = [{**r, "model": "b-" + r["model"]} for r in synthetic_runs()[:3]]
    data = csv_of(synthetic_runs()[:3], family="alpha") + csv_of(beta, family="beta")[len(HEADER):]
    with pytest.raises(PredictionInputError, match=r"2 families \(alpha, beta\)") as caught:
        prediction_runs_from_csv(source=data)
    assert caught.value.field == "file"


def test_csv_with_an_unknown_metric_is_rejected_listing_the_metrics():
    with pytest.raises(PredictionInputError, match="no rows of metric 'ppl'; it has val_loss") as caught:
        prediction_runs_from_csv(source=csv_of(synthetic_runs()), metric="ppl")
    assert caught.value.field == "metric"


def test_csv_breaking_the_format_raises_with_line_and_column():
    data = csv_of(synthetic_runs()[:4]).replace(b"val_loss,", b"val_loss,oops,", 1)
    with pytest.raises(CorpusValidationError) as caught:
        prediction_runs_from_csv(source=data)
    assert caught.value.problems[0].line == 2


# --- the plot ------------------------------------------------------------------------------------------


def test_the_plot_is_a_png_drawn_from_the_stored_result():
    job, result, _ = run_job(synthetic_runs(), 1e10, [1e11, 2e11])
    job.status, job.result = Job.Status.SUCCEEDED, result
    png = prediction_plot_png(job=job)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


def test_extreme_targets_get_a_diagnostic_not_a_silent_interval():
    # Issue 11 #7: a target far beyond the runs gave [1e-204, 6.7e204] without a word.
    _, result, _ = run_job(synthetic_runs(), 4e18, [2e11, 1e30])
    assert {"wide_interval", "large_token_extrapolation"} <= set(codes(result))
    wide = next(d for d in result["diagnostics"] if d["code"] == "wide_interval")
    assert "says little" in wide["message"]
    _, nearby, _ = run_job(synthetic_runs(), 1e10, 2e11)
    assert not {"wide_interval", "large_token_extrapolation"} & set(codes(nearby))


def test_a_target_larger_than_any_parameter_count_is_refused():
    with pytest.raises(PredictionInputError) as caught:
        prediction_enqueue(runs=synthetic_runs(), target_params=1e308, target_tokens=2e11)
    assert caught.value.field == "target_params" and "more than any model can have" in str(caught.value)
    assert not Job.objects.exists()
