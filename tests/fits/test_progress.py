"""fits.progress: the target's prediction as the runs advanced, and when its interval stops narrowing."""
import io
import json

import numpy as np
import pandas as pd
import pytest

from fits.backtest import split_target
from fits.method import ALL_POINTS
from fits.progress import MAX_POINTS, PredictionHistory, narrowing, prediction_history, runs_as_of
from fits.trainset import FitInputError

from .conftest import synthetic_family

TARGET_N, TARGET_D = 3.2e9, 6e10


def _family(seed=0, sizes=np.geomspace(5e7, 8e8, 4)):
    return synthetic_family(seed, sizes=sizes, tokens=np.geomspace(1e8, 2e10, 40), point_noise=0.01)


def test_runs_as_of_keeps_the_checkpoints_logged_by_then_and_each_run_s_planned_length():
    fam = _family()
    half = runs_as_of(fam, share=0.5)
    assert (half["tokens"] <= 1e10 * (1 + 1e-9)).all() and half["tokens"].max() > 0.8e10
    assert (half["run_tokens"] == 2e10).all()  # a run cut part-way is known to be in progress
    early = runs_as_of(fam, tokens=1e9)
    assert early["tokens"].max() <= 1e9 and early["model"].nunique() == 4
    with pytest.raises(ValueError):
        runs_as_of(fam)


def test_the_share_axis_cuts_each_run_at_its_own_planned_length():
    fam = _family()
    short = fam[fam["params"] == fam["params"].min()]
    short = short[short["tokens"] <= 5e9]  # the smallest run planned (and done) at 5e9 tokens
    frame = pd.concat([short, fam[fam["params"] > fam["params"].min()]])
    cut = runs_as_of(frame, share=0.5)
    per_run = cut.groupby("params")["tokens"].max()
    assert per_run.iloc[0] <= 2.5e9 and per_run.iloc[-1] > 8e9


def test_the_interval_narrows_as_the_runs_advance():
    history = prediction_history(_family(), TARGET_N, TARGET_D, points=8)
    table = history.table
    assert len(table) == 8 and (table["error"] == "").all()
    assert table["share_seen"].is_monotonic_increasing and table["n_checkpoints"].is_monotonic_increasing
    first, last = table["width_log"].iloc[0], table["width_log"].iloc[-1]
    assert last < 0.8 * first
    assert (table["lower"] < table["prediction"]).all() and (table["prediction"] < table["upper"]).all()
    assert set(table["method"]) <= {"curves", "final", "all-points", "curves+cap", "final+cap", "all-points+cap"}


def test_the_flag_fires_on_a_plateau_when_updates_add_little():
    fam = _family().assign(run_tokens=2e10)
    last = np.sort(fam["tokens"].unique())[-4:]  # each update logs one more checkpoint per run, near the end
    snaps = [fam[fam["tokens"] <= t] for t in last]
    # One method throughout (all checkpoints, each weighing the same: the one whose band here reflects
    # the data added): the automatic choice may switch candidates between two snapshots of this noisy
    # family (a different law, a different width), which is not what this test is about.
    history = prediction_history(snaps, TARGET_N, TARGET_D, labels=[1, 2, 3, 4], method=ALL_POINTS)
    widths = history.table["width_log"].to_numpy()
    assert widths[-1] > 0.9 * widths[-3]  # less than the 10% tolerance over the last two updates
    assert history.stopped_narrowing is True and history.plateau_since in (1, 2)
    assert f"stopped narrowing at snapshot {history.plateau_since}" in history.message


def test_the_flag_does_not_fire_while_the_interval_narrows():
    fam = _family()
    snaps = [runs_as_of(fam, share=s) for s in (0.1, 0.2, 0.4)]
    history = prediction_history(snaps, TARGET_N, TARGET_D)
    widths = history.table["width_log"].to_numpy()
    assert widths[2] < 0.9 * widths[0]
    assert history.stopped_narrowing is False and "still narrowing" in history.message


def test_with_an_error_model_the_band_is_its_own_and_narrows_as_more_of_each_run_is_seen():
    from .test_advice import toy_error_model

    model = toy_error_model(fraction=-1.0, compute=-0.2)
    history = prediction_history(_family(), TARGET_N, TARGET_D, points=4, error_model=model)
    table = history.table
    assert history.interval == "error model" and history.n_boot == 0 and (table["boot_sd_log"] == 0).all()
    assert np.all(np.diff(table["width_log"]) < 0)
    again = prediction_history(_family(), TARGET_N, TARGET_D, points=4, error_model=model, seed=5)
    assert again.table["width_log"].tolist() == table["width_log"].tolist()  # no draw


def test_the_rule_fires_only_when_the_last_updates_narrowed_by_less_than_the_tolerance():
    def table(widths):
        return pd.DataFrame({"as_of": np.arange(1, len(widths) + 1) / len(widths), "width_log": widths,
                             "method_sd_log": 0.1})

    stopped, since, _ = narrowing(table([1.0, 0.6, 0.5, 0.49, 0.495, 0.49]), 0.05, 2)
    assert stopped is True and since == pytest.approx(3 / 6)  # from 0.5 on it never fell below 0.475
    stopped, since, _ = narrowing(table([1.0, 0.8, 0.6, 0.45]), 0.05, 2)
    assert stopped is False and since is None
    stopped, since, _ = narrowing(table([1.0, 0.99]), 0.05, 2)
    assert stopped is None  # too few points to say
    # A width that grows again has stopped narrowing too.
    assert narrowing(table([0.5, 0.3, 0.31, 0.4]), 0.05, 2)[0] is True


def test_snapshots_are_fitted_in_order_and_an_unchanged_one_is_skipped():
    fam = _family()
    snaps = [runs_as_of(fam, tokens=t) for t in (2e9, 6e9, 6e9, 2e10)]
    history = prediction_history(snaps, TARGET_N, TARGET_D, labels=["mon", "tue", "wed", "thu"])
    assert history.axis == "snapshot"
    assert list(history.table["as_of"]) == ["mon", "tue", "thu"]


def test_runs_in_progress_are_replayed_up_to_where_they_are_now():
    fam = _family().assign(run_tokens=4e10)  # every run planned twice as long as logged so far
    history = prediction_history(fam, TARGET_N, TARGET_D, points=4)
    assert history.table["as_of"].iloc[-1] == pytest.approx(0.5)
    assert history.table["share_seen"].iloc[-1] == pytest.approx(0.5)


def test_a_point_with_one_size_logged_is_kept_with_its_reason():
    fam = _family()
    staggered = fam[(fam["params"] == fam["params"].min()) | (fam["tokens"] >= 1e10)]
    history = prediction_history(staggered, TARGET_N, TARGET_D, by="tokens", points=4)
    first = history.table.iloc[0]
    assert np.isnan(first["prediction"]) and "one size" in first["error"]
    assert history.table["error"].iloc[-1] == ""


def test_the_history_is_strict_json_and_draws_a_figure():
    history = prediction_history(_family(), TARGET_N, TARGET_D, points=3, n_boot=8)
    data = json.loads(json.dumps(history.to_dict(), allow_nan=False))
    assert data["version"] == 1 and len(data["history"]) == 3
    assert set(data["history"][0]["tokens_seen"]) == set(_family()["model"].unique())
    again = PredictionHistory.from_dict(data)  # a stored history draws its figure without a refit
    assert again.table["upper"].tolist() == pytest.approx(history.table["upper"].tolist())
    assert again.plateau_since == history.plateau_since and again.axis == "share"
    fig = again.figure(actual=2.4)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fig.axes[1].get_xlabel().startswith("as of")


def test_bad_requests_are_refused():
    with pytest.raises(ValueError):
        prediction_history(_family(), TARGET_N, TARGET_D, points=MAX_POINTS + 1)
    with pytest.raises(ValueError):
        prediction_history(_family(), TARGET_N, TARGET_D, by="steps")
    with pytest.raises(FitInputError):
        prediction_history(_family(), -1.0, TARGET_D)


def test_on_a_corpus_family_the_last_interval_holds_the_held_out_size_s_final_loss(family):
    train, target = split_target(family("lambda"))  # 4 smaller sizes with curves; the 1.07B model held out
    history = prediction_history(train, target["params"].iloc[0], target["tokens"].max())
    assert len(history.table) == 8 and (history.table["error"] == "").all()
    assert (history.table["n_sizes"] == 4).all() and history.stopped_narrowing is not None
    last = history.table.iloc[-1]
    actual = target.loc[target["tokens"].idxmax(), "value"]
    assert last["lower"] < actual < last["upper"]
    assert abs(last["prediction"] - actual) / actual < 0.03
