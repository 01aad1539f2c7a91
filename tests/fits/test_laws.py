"""fits.laws: the one law evaluator (single and batched exponents), law forms by name, the optional terms."""
import numpy as np
import pytest

from fits.laws import (
    CHINCHILLA,
    CONSTANT,
    DATA_CONSTRAINED,
    FORMS,
    SIZE_ONLY,
    TOKENS_ONLY,
    evaluate,
    extra_columns,
    form_named,
    law_columns,
    overfit_feature,
    schedule_remaining,
)

RNG = np.random.default_rng(0)
LN, LD = RNG.normal(0, 1, 7), RNG.normal(0, 1.5, 7)
EXTRA = RNG.uniform(0, 1, (7, 2))
ALL_TERMS = CHINCHILLA.with_terms(schedule=True, overfit=True)


@pytest.mark.parametrize("form", [CHINCHILLA, TOKENS_ONLY, SIZE_ONLY, CONSTANT, ALL_TERMS], ids=lambda f: f.name)
def test_the_columns_are_one_then_the_power_terms_then_the_extra_terms(form):
    extra = EXTRA[:, :len(form.extra_names)] if form.extra_names else None
    cols = law_columns(form, LN, LD, 0.3, 0.2, extra)
    assert cols.shape == (7, len(form.coefficient_names))
    expected = [np.ones(7)]
    if form.size_term:
        expected.append(np.exp(-0.3 * LN))
    if form.data_term:
        expected.append(np.exp(-0.2 * LD))
    if extra is not None:
        expected.extend(extra.T)
    np.testing.assert_allclose(cols, np.column_stack(expected), rtol=1e-15)


@pytest.mark.parametrize("form", [CHINCHILLA, TOKENS_ONLY, SIZE_ONLY, ALL_TERMS], ids=lambda f: f.name)
def test_batched_exponents_give_the_single_evaluations_stacked(form):
    extra = EXTRA[:, :len(form.extra_names)] if form.extra_names else None
    alphas, betas = np.array([0.1, 0.34, 1.2, 2.0]), np.array([0.05, 0.28, 0.9, 1.5])
    k = len(form.coefficient_names)
    coefs = RNG.uniform(0.1, 3, (4, k))
    batch = law_columns(form, LN, LD, alphas, betas, extra)
    assert batch.shape == (4, 7, k)
    pred = evaluate(form, coefs, LN, LD, alphas, betas, extra)
    assert pred.shape == (4, 7)
    for i in range(4):
        np.testing.assert_allclose(batch[i], law_columns(form, LN, LD, alphas[i], betas[i], extra), rtol=1e-15)
        single = evaluate(form, coefs[i], LN, LD, alphas[i], betas[i], extra)
        np.testing.assert_allclose(pred[i], single, rtol=1e-14)
        np.testing.assert_allclose(single, law_columns(form, LN, LD, alphas[i], betas[i], extra) @ coefs[i],
                                   rtol=1e-14)


def test_evaluate_takes_normalised_logs():
    # E + A (N/N0)^-alpha + B (D/D0)^-beta, with ln = log(N/N0) and ld = log(D/D0).
    n, d, n0, d0 = np.array([1e8, 1e9]), np.array([2e9, 2e10]), 3e8, 6e9
    pred = evaluate(CHINCHILLA, [1.8, 0.5, 0.4], np.log(n / n0), np.log(d / d0), 0.34, 0.28)
    np.testing.assert_allclose(pred, 1.8 + 0.5 * (n / n0) ** -0.34 + 0.4 * (d / d0) ** -0.28, rtol=1e-14)


def test_forms_are_found_by_name_with_their_optional_terms():
    for name, form in FORMS.items():
        assert form_named(name) is form
    both = form_named("data-constrained+schedule+overfit")
    assert both == DATA_CONSTRAINED.with_terms(schedule=True, overfit=True)
    assert both.coefficient_names == ("E", "A", "B", "C_schedule", "C_overfit")
    assert form_named(CHINCHILLA.with_terms(schedule=True).name).schedule
    with pytest.raises(KeyError, match="unknown law 'chinchilla\\+warmup'"):
        form_named("chinchilla+warmup")


def test_extra_columns_are_the_schedule_then_the_overfitting_term():
    n, d, epochs, run = np.array([1e8, 1e8]), np.array([1e9, 4e9]), np.array([2.0, 8.0]), np.array([4e9, 4e9])
    cols = extra_columns(ALL_TERMS, n, d, epochs, run, (1.0, 0.5), 2.0)
    np.testing.assert_allclose(cols[:, 0], schedule_remaining(d, run))
    np.testing.assert_allclose(cols[:, 1], overfit_feature(n, d, epochs, (1.0, 0.5), 2.0))
    assert cols[1, 0] == 0.0  # the run's last checkpoint is on the plain law
    assert extra_columns(CHINCHILLA, n, d, epochs, run, None, 1.0) is None
    # No run length known: every checkpoint taken to end its run.
    np.testing.assert_array_equal(extra_columns(CHINCHILLA.with_terms(schedule=True), n, d, None, None, None, 1.0),
                                  [[0.0], [0.0]])
    with pytest.raises(ValueError, match="needs its shape"):
        extra_columns(ALL_TERMS, n, d, epochs, run, None, 1.0)
