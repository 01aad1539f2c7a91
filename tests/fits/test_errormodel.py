"""fits.errormodel: learning expected ARE from sweep rows, validated leave one family out."""
import json

import numpy as np
import pandas as pd
import pytest

from fits.errormodel import ErrorModel, calibrate, design_features, fit_error_model, model_without


def synthetic_sweep(n_families=8, per_family=40, seed=0):
    """Sweep-like rows whose log ARE follows known design effects plus a family level and noise."""
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
            rows.append({"family": f"fam{f}", "n_models": n_models, "largest_index": 0, "fraction": fraction,
                         "policy": "default", "scale_up": scale_up, "train_compute_share": share,
                         "tokens_per_model": 1e10, "max_epochs": 1.0, "has_curves": True,
                         "are": float(np.exp(log_are))})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def sweep():
    return synthetic_sweep()


@pytest.fixture(scope="module")
def model(sweep):
    return fit_error_model(sweep)


def test_it_learns_the_design_effects_with_the_right_signs(model):
    coef = dict(zip(design_features(pd.DataFrame({"scale_up": [1.0]})).columns, model.coefficients["0.5"]["coef"]))
    assert coef["log_scale_up"] == pytest.approx(0.5, abs=0.15)
    assert coef["single_model"] > 0.4
    assert coef["log_compute_share"] <= 0 and coef["fraction"] <= 0 and coef["n_models"] <= 0


def test_held_out_coverage_is_near_the_target_and_the_median_is_close(model):
    assert 0.72 <= model.validation["coverage"] <= 0.88
    assert model.validation["median_abs_log_ratio"] < np.log(2)
    assert model.validation["families"] == 8


def test_quantiles_are_ordered_and_positive(model, sweep):
    pred = model.predict(sweep)
    assert (pred["p10"] > 0).all() and (pred["p10"] <= pred["p50"]).all() and (pred["p50"] <= pred["p90"]).all()


def test_a_larger_scale_up_is_expected_to_be_worse(model):
    designs = pd.DataFrame({"scale_up": [2.0, 20.0], "n_models": [5, 5], "train_compute_share": [0.05, 0.05],
                            "fraction": [1.0, 1.0], "tokens_per_model": [1e10, 1e10]})
    p = model.predict(designs)["p50"].to_numpy()
    assert p[1] > p[0]


def test_it_round_trips_through_json(model, sweep):
    again = ErrorModel.from_dict(json.loads(json.dumps(model.to_dict())))
    pd.testing.assert_frame_equal(again.predict(sweep), model.predict(sweep))


def test_it_refuses_a_model_of_another_version(model):
    data = model.to_dict() | {"version": 999}
    with pytest.raises(ValueError, match="does not match this library"):
        ErrorModel.from_dict(data)


def test_it_needs_three_families():
    with pytest.raises(ValueError, match="at least 3 families"):
        fit_error_model(synthetic_sweep(n_families=2))


def test_failed_fits_are_left_out_of_the_learning(sweep):
    broken = pd.concat([sweep, sweep.head(5).assign(are=np.inf)], ignore_index=True)
    assert fit_error_model(broken).trained_on["rows"] == len(sweep)


def test_calibrate_holds_out_families_seen_in_train(model, sweep):
    out = calibrate(sweep, sweep, model=model)
    assert out["cases"] == len(sweep) and out["families"] == 8
    assert out["coverage"] == pytest.approx(model.validation["coverage"], abs=1e-9)
    row = out["rows"][0]
    assert set(row) == {"family", "design", "predicted", "realized_are"}
    assert set(row["predicted"]) == {"p10", "p50", "p90"}
    json.dumps(out)


def test_model_without_a_family_differs_from_the_full_model(model, sweep):
    without = model_without(sweep, "fam0", model.margin)
    assert without.coefficients != model.coefficients
