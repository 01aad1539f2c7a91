"""fits.fitting: parameter recovery with stated tolerances, law variants, every bad-input error, the result object."""
import json

import numpy as np
import pytest

from fits.fitting import RESULT_VERSION, FitInputError, fit_law
from fits.laws import DATA_CONSTRAINED, TOKENS_ONLY, effective_tokens

from .conftest import TRUTH, synthetic_family, true_loss

# 10x the largest synthetic size, at ~20 tokens per parameter (Chinchilla-optimal).
FAR_N, FAR_D = 8e9, 1.6e11


def _fit(frame, **kwargs):
    return fit_law(frame["params"], frame["tokens"], frame["value"], **kwargs)


@pytest.mark.parametrize("refine", ["irls", "lbfgs"])
def test_it_recovers_known_parameters_from_noisy_synthetic_data(refine):
    # 5 sizes x 30 checkpoints, 0.5% log-normal noise per checkpoint, seeded.
    frame = synthetic_family(seed=1)
    result = _fit(frame, refine=refine)
    p = result.params
    assert result.success, result.message
    assert p["alpha"] == pytest.approx(TRUTH["alpha"], abs=0.05)
    assert p["beta"] == pytest.approx(TRUTH["beta"], abs=0.05)
    assert p["E"] == pytest.approx(TRUTH["E"], rel=0.05)
    assert result.predict(FAR_N, FAR_D) == pytest.approx(true_loss(FAR_N, FAR_D), rel=0.01)


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_least_squares_loss_recovers_known_parameters(seed):
    frame = synthetic_family(seed=seed)
    result = _fit(frame, loss="ls")
    assert result.success, result.message
    assert result.params["alpha"] == pytest.approx(TRUTH["alpha"], abs=0.05)
    assert result.params["beta"] == pytest.approx(TRUTH["beta"], abs=0.05)
    assert result.predict(FAR_N, FAR_D) == pytest.approx(true_loss(FAR_N, FAR_D), rel=0.01)


def test_the_huber_fit_shrugs_off_a_few_spiky_checkpoints():
    frame = synthetic_family(seed=5)
    spikes = np.random.default_rng(5).choice(len(frame), size=6, replace=False)
    frame.loc[spikes, "value"] *= 1.3  # loss spikes: +30% on 4% of the checkpoints
    robust = _fit(frame)
    plain = _fit(frame, loss="ls")
    truth = true_loss(FAR_N, FAR_D)
    assert robust.predict(FAR_N, FAR_D) == pytest.approx(truth, rel=0.01)
    assert abs(robust.predict(FAR_N, FAR_D) - truth) < abs(plain.predict(FAR_N, FAR_D) - truth)


def test_it_keeps_fixed_exponents_and_fits_the_rest():
    frame = synthetic_family(seed=6)
    only_alpha = _fit(frame, fixed_exponents=(0.3, None))
    assert only_alpha.params["alpha"] == 0.3
    assert only_alpha.params["beta"] == pytest.approx(TRUTH["beta"], abs=0.05)
    both = _fit(frame, fixed_exponents=(0.3, 0.25), refine="lbfgs")
    assert (both.params["alpha"], both.params["beta"]) == (0.3, 0.25)


def test_tokens_only_law_extrapolates_one_partly_trained_run():
    frame = synthetic_family(seed=7, sizes=np.array([4e8]), tokens=np.geomspace(1e9, 1e10, 40), point_noise=0.002)
    result = _fit(frame, form="tokens")
    assert result.form is TOKENS_ONLY
    assert set(result.params) == {"E", "B", "beta"}
    # The run's own loss at 3x the tokens it has seen.
    assert result.predict(4e8, 3e10) == pytest.approx(true_loss(4e8, 3e10), rel=0.01)


def test_data_constrained_law_uses_effective_tokens_when_epochs_exceed_one():
    rng = np.random.default_rng(8)
    unique = 5e8
    n = np.repeat([1e8, 2e8, 4e8, 8e8], 20)
    d = np.tile(np.geomspace(5e8, 6e10, 20), 4)
    epochs = np.maximum(d / unique, 1.0)  # beyond 0.5B tokens the data repeats, up to 120 times
    d_eff = effective_tokens(d, epochs)
    y = true_loss(n, d_eff) * np.exp(rng.normal(0, 0.002, n.size))
    result = fit_law(n, d, y, form=DATA_CONSTRAINED, epochs=epochs)
    assert result.success, result.message
    # It predicts through D', not D: the same answer as feeding effective tokens directly.
    target_eff = effective_tokens(np.array([5e10]), np.array([25.0]))[0]
    assert result.predict(1.6e9, 5e10, epochs=25.0) == pytest.approx(result.predict(1.6e9, target_eff), rel=1e-12)
    assert result.predict(1.6e9, 5e10, epochs=25.0) == pytest.approx(true_loss(1.6e9, target_eff), rel=0.01)
    # The plain law, blind to repetition, fits these curves clearly worse.
    plain = fit_law(n, d, y)
    assert result.stats["rmse_log"] < 0.5 * plain.stats["rmse_log"]


def test_data_constrained_law_equals_the_plain_law_when_nothing_repeats():
    frame = synthetic_family(seed=9)
    plain = _fit(frame)
    constrained = fit_law(frame["params"], frame["tokens"], frame["value"], form=DATA_CONSTRAINED,
                          epochs=np.ones(len(frame)))
    assert constrained.params == pytest.approx(plain.params, rel=1e-9)


GOOD = synthetic_family(seed=10)


def _bad(**changes):
    args = {"params": GOOD["params"].to_numpy(), "tokens": GOOD["tokens"].to_numpy(),
            "values": GOOD["value"].to_numpy()}
    kwargs = {}
    for key, value in changes.items():
        (args if key in args else kwargs)[key] = value
    return args, kwargs


def _with(column, index, value):
    arr = GOOD[column].to_numpy().copy()
    arr[index] = value
    return arr


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"params": _with("params", 3, 0.0)}, r"params must be positive; row 3 has 0\.0"),
        ({"params": _with("params", 4, -1e8)}, r"params must be positive; row 4"),
        ({"tokens": _with("tokens", 5, 0.0)}, r"tokens must be positive; row 5"),
        ({"values": _with("value", 6, -2.0)}, r"value must be positive; row 6"),
        ({"tokens": _with("tokens", 7, np.nan)}, r"tokens has a NaN or infinite entry \(row 7\)"),
        ({"values": _with("value", 8, np.inf)}, r"value has a NaN or infinite entry \(row 8\)"),
        ({"params": GOOD["params"].to_numpy()[:-1]}, r"params must be a 1-d array as long as the values \(150\)"),
        ({"weights": np.ones(3)}, r"weights must be a 1-d array as long as the values"),
        ({"weights": -np.ones(len(GOOD))}, r"weights must be non-negative and not all zero"),
        ({"params": np.full(len(GOOD), 1e8)}, r"needs at least 2 distinct model sizes; got 1"),
        ({"tokens": np.full(len(GOOD), 1e10)}, r"needs at least 2 distinct token counts"),
        ({"loss": "l2"}, r"loss must be 'huber' or 'ls', not 'l2'"),
        ({"refine": "newton"}, r"refine must be 'irls' or 'lbfgs', not 'newton'"),
        ({"params": [], "tokens": [], "values": []}, r"no observations to fit"),
    ],
    ids=["zero-N", "negative-N", "zero-D", "negative-loss", "nan-D", "inf-loss", "short-N", "short-weights",
         "negative-weights", "one-size", "one-token-count", "bad-loss", "bad-refine", "empty"],
)
def test_it_rejects_bad_input_naming_the_problem(changes, message):
    args, kwargs = _bad(**changes)
    with pytest.raises(FitInputError, match=message):
        fit_law(args["params"], args["tokens"], args["values"], **kwargs)


def test_a_single_size_is_fine_for_the_tokens_only_law():
    one = GOOD[GOOD["params"] == GOOD["params"].min()]
    assert _fit(one, form="tokens").success


def test_non_convergence_is_reported_in_the_result_not_raised():
    result = _fit(GOOD, max_iter=1)
    assert result.success is False
    assert "after 1 iterations" in result.message
    assert np.isfinite(result.predict(FAR_N, FAR_D))  # still a usable (if unpolished) law


def test_standard_errors_are_finite_and_shrink_with_more_data():
    small = _fit(synthetic_family(seed=11, tokens=np.geomspace(2e8, 3e10, 8)))
    large = _fit(synthetic_family(seed=11, tokens=np.geomspace(2e8, 3e10, 120)))
    assert set(small.stderr) == set(small.params)
    assert all(np.isfinite(v) and v > 0 for v in small.stderr.values())
    assert large.stderr["beta"] < small.stderr["beta"]


def test_to_dict_is_json_serialisable_and_versioned():
    result = _fit(GOOD)
    out = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert out["version"] == RESULT_VERSION
    assert out["law"] == "chinchilla"
    assert out["success"] is True
    assert out["params"] == pytest.approx(result.params)
    assert set(out["stderr"]) == set(out["params"])
    assert out["stats"]["n_points"] == len(GOOD) and out["stats"]["n_sizes"] == 5
    assert out["seconds"] > 0 and out["nfev"] > 0
