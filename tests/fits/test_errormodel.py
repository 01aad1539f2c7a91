"""fits.errormodel (version 2): expected ARE from sweep rows at two levels, validated leaving whole sources out."""
import json

import numpy as np
import pandas as pd
import pytest

from fits.errormodel import (
    DESIGN_FEATURES,
    ERROR_MODEL_VERSION,
    EVIDENCE_FEATURES,
    LEVELS,
    QUANTILES,
    ErrorModel,
    calibrate,
    features,
    fit_error_model,
    groups_of,
    held_out_predictions,
    model_without,
)

SOURCES = ["s0", "s0", "s1", "s1", "s2", "s2", "s3", "s3"]  # two families per paper


def synthetic_sweep(n_families=8, per_family=40, seed=0, *, sources=None, evidence=False):
    """Sweep-like rows whose log ARE follows known design effects plus a family level and noise.

    ``sources``: one paper per family (a ``source`` column). ``evidence``: the fit's statistics, as the
    sweep records them (``rmse_log``, ``rollout_are``), both noisy readings of the family's level - what a
    team learns about how lawful its family is once the design's runs exist.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for f in range(n_families):
        level = rng.normal(-4.0, 0.5)
        for _ in range(per_family):
            scale_up = float(np.exp(rng.uniform(0, 3)))
            n_models = int(rng.integers(1, 7))
            share = float(np.exp(rng.uniform(np.log(1e-3), np.log(0.3))))
            fraction = float(rng.choice([0.1, 0.25, 0.5, 1.0]))
            log_are = level + 0.5 * np.log(scale_up) - 0.3 * np.log(share) / 3 - 0.4 * fraction \
                + (0.8 if n_models == 1 else 0.0) + rng.normal(0, 0.4)
            row = {"family": f"fam{f}", "n_models": n_models, "largest_index": 0, "fraction": fraction,
                   "policy": "auto", "scale_up": scale_up, "train_compute_share": share,
                   "tokens_per_model": 1e10, "max_epochs": 1.0, "has_curves": True,
                   "are": float(np.exp(log_are))}
            if evidence:
                row["rmse_log"] = float(np.exp(level + 1.0 + rng.normal(0, 0.1)))
                row["rollout_are"] = float(np.exp(level + rng.normal(0, 0.1)))
            if sources is not None:
                row["source"] = sources[f]
            rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def sweep():
    return synthetic_sweep()


@pytest.fixture(scope="module")
def model(sweep):
    return fit_error_model(sweep)


@pytest.fixture(scope="module")
def evidence_sweep():
    return synthetic_sweep(sources=SOURCES, evidence=True)


@pytest.fixture(scope="module")
def evidence_model(evidence_sweep):
    return fit_error_model(evidence_sweep)


def _coef(model, level, q="0.5"):
    return dict(zip(LEVELS[level], model.coefficients[level][q]["coef"]))


def test_it_learns_the_design_effects_with_the_right_signs(model):
    for level in LEVELS:
        coef = _coef(model, level)
        assert coef["log_scale_up"] == pytest.approx(0.5, abs=0.15)
        assert coef["single_model"] > 0.4
        assert coef["log_compute_share"] <= 0 and coef["fraction"] <= 0 and coef["n_models"] <= 0


def test_held_out_coverage_is_near_the_target_and_the_median_is_close(model):
    assert model.validation["method"] == "leave-one-source-out"
    for level in LEVELS:
        figures = model.validation[level]
        assert 0.72 <= figures["coverage"] <= 0.88
        assert 0.72 <= figures["coverage_family_weighted"] <= 0.88
        assert figures["median_abs_log_ratio"] < np.log(2)
        # Without a source column every family is its own group.
        assert figures["families"] == figures["groups"] == 8


def test_quantiles_are_ordered_and_positive(model, sweep):
    pred = model.predict(sweep)
    assert (pred["p10"] > 0).all() and (pred["p10"] <= pred["p50"]).all() and (pred["p50"] <= pred["p90"]).all()


def test_a_larger_scale_up_is_expected_to_be_worse(model):
    designs = pd.DataFrame({"scale_up": [2.0, 20.0], "n_models": [5, 5], "train_compute_share": [0.05, 0.05],
                            "fraction": [1.0, 1.0], "tokens_per_model": [1e10, 1e10]})
    p = model.predict(designs)["p50"].to_numpy()
    assert p[1] > p[0]


def test_it_round_trips_through_json(evidence_model, evidence_sweep):
    data = json.loads(json.dumps(evidence_model.to_dict(), allow_nan=False))
    assert data["version"] == ERROR_MODEL_VERSION == 2
    assert data["features"] == {"plan": list(DESIGN_FEATURES), "fit": list(DESIGN_FEATURES + EVIDENCE_FEATURES)}
    assert data["quantiles"] == list(QUANTILES)
    again = ErrorModel.from_dict(data)
    assert again.margin == evidence_model.margin and again.ranges == evidence_model.ranges
    assert again.widen_per_unit == evidence_model.widen_per_unit
    for level in (None, "plan", "fit"):
        pd.testing.assert_frame_equal(again.predict(evidence_sweep, level=level),
                                      evidence_model.predict(evidence_sweep, level=level))


@pytest.mark.parametrize("change", [{"version": 999}, {"version": 1}, {"features": {"plan": list(DESIGN_FEATURES)}}],
                         ids=["unknown-version", "version-1", "other-features"])
def test_it_refuses_a_model_of_another_version_or_feature_set(model, change):
    with pytest.raises(ValueError, match="does not match this library"):
        ErrorModel.from_dict(model.to_dict() | change)


def test_it_needs_three_families():
    with pytest.raises(ValueError, match="at least 3 families"):
        fit_error_model(synthetic_sweep(n_families=2))


def test_it_needs_two_sources_to_validate():
    with pytest.raises(ValueError, match="at least 2 sources"):
        fit_error_model(synthetic_sweep(sources=["one paper"] * 8))


def test_failed_fits_are_left_out_of_the_learning(sweep):
    broken = pd.concat([sweep, sweep.head(5).assign(are=np.inf)], ignore_index=True)
    assert fit_error_model(broken).trained_on["rows"] == len(sweep)


# --- the two levels -----------------------------------------------------------------


def test_the_fit_level_is_used_where_the_fit_statistics_are_known(evidence_model, evidence_sweep):
    rows = evidence_sweep.head(4).copy()
    rows.loc[rows.index[:2], "rmse_log"] = np.nan  # designs whose runs have not been fitted yet
    pred = evidence_model.predict(rows)
    assert pred["level"].tolist() == ["plan", "plan", "fit", "fit"]
    pd.testing.assert_frame_equal(pred.iloc[:2], evidence_model.predict(rows.iloc[:2], level="plan"))
    pd.testing.assert_frame_equal(pred.iloc[2:], evidence_model.predict(rows.iloc[2:], level="fit"))
    # Without the columns at all: the plan level.
    assert set(evidence_model.predict(rows.drop(columns=["rmse_log", "rollout_are"]))["level"]) == {"plan"}
    with pytest.raises(ValueError, match="level must be one of"):
        evidence_model.predict(rows, level="design")


def test_the_fit_level_learns_from_the_fits_own_evidence_and_is_sharper(evidence_model):
    coef = _coef(evidence_model, "fit")
    # A worse rollout or a noisier fit never means a smaller expected error (sign constraints), and here
    # the evidence carries the family's level, so it is used.
    assert coef["log_rollout_are"] + coef["log_fit_rmse"] > 0.5
    fit, plan = evidence_model.validation["fit"], evidence_model.validation["plan"]
    assert fit["median_p90_over_p10"] < 0.5 * plan["median_p90_over_p10"]
    assert fit["median_abs_log_ratio"] < plan["median_abs_log_ratio"]


def test_features_of_a_level_are_its_documented_columns(evidence_sweep):
    assert list(features(evidence_sweep, "plan").columns) == list(DESIGN_FEATURES)
    x = features(evidence_sweep.head(3).assign(rollout_are=[0.01, np.nan, 0.02]), "fit")
    assert list(x.columns) == list(DESIGN_FEATURES + EVIDENCE_FEATURES)
    assert x["no_rollout"].tolist() == [0.0, 1.0, 0.0]
    assert x["log_rollout_are"].tolist() == pytest.approx([np.log(0.01), 0.0, np.log(0.02)])


# --- ranges: designs outside what the sweep covered ---------------------------------


def flat_model(plan=(0.005, 0.01, 0.02), fit=None, **kwargs):
    """An error model with known answers: p10/p50/p90 the same for every design (``fit``: default = ``plan``)."""
    bands = {"plan": plan, "fit": fit or plan}
    coefficients = {level: {str(q): {"intercept": float(np.log(a)), "coef": [0.0] * len(names)}
                            for q, a in zip(QUANTILES, bands[level])} for level, names in LEVELS.items()}
    return ErrorModel(coefficients=coefficients, margin={"plan": 0.0, "fit": 0.0}, **kwargs)


def test_outside_names_the_features_beyond_the_ranges_and_widens_the_band():
    model = flat_model(ranges={"log_scale_up": [0.0, float(np.log(10))], "n_models": [2.0, 6.0]},
                        widen_per_unit=0.5)
    designs = pd.DataFrame({"scale_up": [5.0, 100.0, 100.0], "n_models": [3, 3, 1]})
    pred = model.predict(designs)
    assert pred["outside"].tolist() == [[], ["log_scale_up"], ["log_scale_up", "n_models"]]
    assert pred.loc[0, ["p10", "p50", "p90"]].tolist() == pytest.approx([0.005, 0.01, 0.02])
    # log(100) - log(10) outside in scale-up: each side of the band moves by 0.5 per unit, the median stays.
    widen = np.exp(0.5 * np.log(10))
    assert pred.loc[1, ["p10", "p50", "p90"]].tolist() == pytest.approx([0.005 / widen, 0.01, 0.02 * widen])
    # One model more below the range adds its unit of distance.
    widen2 = np.exp(0.5 * (np.log(10) + 1.0))
    assert pred.loc[2, ["p10", "p90"]].tolist() == pytest.approx([0.005 / widen2, 0.02 * widen2])


def test_a_learned_model_records_the_ranges_its_sweep_covered(model, sweep):
    lo, hi = model.ranges["log_scale_up"]
    assert lo == pytest.approx(np.log(sweep["scale_up"].min())) and hi == pytest.approx(np.log(sweep["scale_up"].max()))
    assert model.ranges["n_models"] == [1.0, 6.0]
    assert model.widen_per_unit > 0
    inside = model.predict(sweep)
    assert inside["outside"].map(len).eq(0).all()


# --- leave one source out -----------------------------------------------------------


def test_groups_are_the_source_where_known_else_the_family():
    rows = pd.DataFrame({"family": ["a", "b", "c"], "source": ["paper", "", None]})
    assert groups_of(rows).tolist() == ["paper", "b", "c"]
    assert groups_of(rows.drop(columns=["source"])).tolist() == ["a", "b", "c"]


def test_validation_holds_out_whole_sources(evidence_model, evidence_sweep):
    assert evidence_model.trained_on["groups"] == 4 and evidence_model.validation["fit"]["groups"] == 4
    held = held_out_predictions(evidence_sweep)
    fam0 = evidence_sweep["family"] == "fam0"
    # fam0 (paper s0) is predicted by a model that saw neither fam0 nor fam1, its sibling from the same paper...
    without_source = model_without(evidence_sweep, "s0", evidence_model)
    expected = without_source.predict_log(evidence_sweep[fam0], level="fit")["p50"].to_numpy()
    np.testing.assert_allclose(held.loc[fam0, "fit_p50"].to_numpy(), expected, rtol=1e-9)
    # ... which is not the same as leaving out fam0 alone.
    without_family = model_without(evidence_sweep, "fam0", evidence_model)
    assert without_family.coefficients != without_source.coefficients


def test_model_without_a_group_differs_from_the_full_model_and_keeps_its_margins(model, sweep):
    without = model_without(sweep, "fam0", model)
    assert without.coefficients != model.coefficients
    assert without.margin == model.margin and without.ranges == model.ranges


# --- calibrate ----------------------------------------------------------------------


def test_calibrate_weighs_every_family_the_same():
    # One family with one design inside its band; another with three, only one of them inside.
    test = pd.DataFrame({"family": ["one", "three", "three", "three"], "source": ["p", "q", "q", "q"],
                         "n_models": 3, "scale_up": 4.0, "are": [0.01, 0.001, 0.01, 0.1]})
    train = pd.DataFrame({"family": ["elsewhere"], "are": [0.01]})  # shares no family or source with TEST
    out = calibrate(train, test, model=flat_model())
    assert out["families"] == 2 and out["cases"] == 4
    assert out["coverage"] == pytest.approx((1 + 1 / 3) / 2)  # each family's share inside, averaged
    assert out["coverage_rows"] == pytest.approx(2 / 4)
    assert out["median_abs_log_ratio"] == pytest.approx((0.0 + np.log(10)) / 2)  # median of family medians
    assert out["median_p90_over_p10"] == pytest.approx(4.0)
    assert out["plan_level"]["coverage"] == pytest.approx(out["coverage"])  # no fit statistics: the same level
    assert [r["source"] for r in out["rows"]] == ["p", "q", "q", "q"]
    assert out["rows"][0]["predicted"] == {"p10": pytest.approx(0.005), "p50": pytest.approx(0.01),
                                           "p90": pytest.approx(0.02), "level": "plan", "outside": []}
    json.dumps(out, allow_nan=False)


def test_calibrate_holds_out_the_source_of_families_seen_in_train(evidence_model, evidence_sweep):
    out = calibrate(evidence_sweep, evidence_sweep, model=evidence_model)
    assert out["cases"] == len(evidence_sweep) and out["families"] == 8
    # Same corpus twice = the leave-one-source-out check: the fit-level figures match the model's validation.
    assert out["coverage"] == pytest.approx(evidence_model.validation["fit"]["coverage_family_weighted"], abs=1e-9)
    assert out["plan_level"]["coverage"] == pytest.approx(
        evidence_model.validation["plan"]["coverage_family_weighted"], abs=1e-9)
    row = out["rows"][0]
    assert set(row) == {"family", "source", "design", "predicted", "predicted_plan", "realized_are"}
    assert row["source"] == "s0" and row["predicted"]["level"] == "fit"
    first = evidence_sweep.iloc[[0]]
    expected = model_without(evidence_sweep, "s0", evidence_model).predict(first)
    assert row["predicted"]["p50"] == pytest.approx(float(expected["p50"].iloc[0]))
    json.dumps(out, allow_nan=False)
