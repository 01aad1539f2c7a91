"""fits.designs: the candidates a plan chooses among (searched and naive), their ranking and the explanation."""
import numpy as np
import pandas as pd
import pytest

from fits.designs import (
    NAIVE_DESIGNS,
    SEARCHED,
    all_designs,
    at_budget,
    candidate_designs,
    compare,
    naive_designs,
    p90_factors,
    rank,
    runners_up,
    score,
)
from fits.errormodel import LEVELS, QUANTILES, ErrorModel
from fits.plan import PlanRequest


def resolved(**kwargs):
    return PlanRequest(**{"target_params": 7e9, "target_tokens": 1.4e11, "budget_fraction": 0.05, **kwargs}).resolved()


def linear_model(p90_coef: dict, **kwargs) -> ErrorModel:
    """A plan-level model whose log quantiles are intercept + the given coefficients (the same for all three,
    shifted), so the p90 is known in closed form."""
    names = LEVELS["plan"]
    coef = [float(p90_coef.get(n, 0.0)) for n in names]
    coefficients = {level: {str(q): {"intercept": float(np.log(0.01)) + shift, "coef": coef if level == "plan"
                                     else [0.0] * len(LEVELS[level])}
                            for q, shift in zip(QUANTILES, (-1.0, 0.0, 1.0))} for level in LEVELS}
    return ErrorModel(coefficients=coefficients, margin={"plan": 0.0, "fit": 0.0}, **kwargs)


def test_every_design_spends_the_budget_within_the_size_bounds():
    r = resolved(min_size=1e8, max_size=2e9, max_models=6)
    pool, _ = all_designs(r, 1.0)
    assert len(pool) > 100
    for _, row in pool.iterrows():
        assert np.sum(row["flops"]) == pytest.approx(r["budget"], rel=1e-9)
        assert np.all(row["sizes"] >= 1e8 * (1 - 1e-9)) and np.all(row["sizes"] <= 2e9 * (1 + 1e-9))
        assert row["n_models"] <= 6 and row["tokens_per_param"] >= 1.0


def test_the_search_reaches_down_to_the_smallest_allowed_size():
    r = resolved(budget_fraction=0.5)  # enough for the widest five sizes to train on the minimum tokens per parameter
    pool = candidate_designs(r, 5, 1.0)
    widest = pool[pool["n_models"] == 5].apply(lambda row: row["sizes"][-1] / row["sizes"][0], axis=1).max()
    assert widest == pytest.approx(r["hi"] / r["lo"])


def test_the_naive_designs_are_in_the_candidates_once_and_named():
    pool, notes = all_designs(resolved(), 1.0)
    assert notes == []
    named = pool[pool["name"] != SEARCHED]
    assert sorted(named["name"]) == sorted(NAIVE_DESIGNS)
    # five-log-spaced is also a searched design (5 sizes from the smallest to the largest allowed): kept once.
    keys = pool["sizes"].map(lambda s: tuple(np.round(np.log(s), 6)))
    assert not keys.duplicated().any()


def test_naive_designs_with_more_sizes_than_allowed_are_left_out_with_the_reason():
    naive, notes = naive_designs(resolved(max_models=3), 1.0)
    assert list(naive["name"]) == ["one-large-model"]
    assert any("five-log-spaced trains 5 sizes; max_models is 3" in n for n in notes)


def test_naive_designs_train_like_the_target_on_at_least_its_tokens_per_parameter():
    # 1% of a 1B model on 20 tokens per parameter cannot train a 500M model on 20: the naive designs shrink.
    r = resolved(target_params=1e9, target_tokens=2e10, budget_fraction=0.01)
    naive, notes = naive_designs(r, 1.0)
    assert sorted(naive["name"]) == sorted(NAIVE_DESIGNS) and notes == []
    for _, row in naive.iterrows():
        assert row["tokens_per_param"] >= 20 * (1 - 1e-9)
        assert np.sum(row["flops"]) == pytest.approx(r["budget"])
    one = naive[naive["name"] == "one-large-model"].iloc[0]
    assert one["sizes"][0] == pytest.approx(np.sqrt(r["budget"] / (6 * 20)))
    five = naive[naive["name"] == "five-log-spaced"].iloc[0]
    assert five["sizes"][0] == pytest.approx(r["lo"]) and five["tokens_per_param"] == pytest.approx(20, rel=1e-6)


def test_a_naive_design_the_budget_cannot_train_is_left_out_with_the_reason():
    naive, notes = naive_designs(resolved(target_tokens=1.4e13, budget_fraction=1e-6, min_size=1e8), 1.0)
    assert "one-large-model" not in set(naive.get("name", []))
    assert any(n.startswith("one-large-model: the budget cannot train") for n in notes)


def test_ranking_is_by_p90_then_p50_then_cost_and_a_named_design_wins_a_tie():
    scored = pd.DataFrame({
        "name": [SEARCHED, "five-log-spaced", SEARCHED, SEARCHED],
        "p90": [0.05, 0.05, 0.05, 0.04], "p50": [0.02, 0.02, 0.01, 0.03],
        "train_compute_share": [0.05, 0.05, 0.05, 0.06],
    })
    assert list(rank(scored).index) == [3, 2, 1, 0]


def test_the_best_design_has_no_higher_p90_than_any_naive_design():
    model = linear_model({"log_scale_up": 0.7, "n_models": -0.1, "log_tokens_per_model": -0.1})
    ranked = rank(score(model, all_designs(resolved(), 1.0)[0]))
    naive = ranked[ranked["name"] != SEARCHED]
    assert ranked.iloc[0]["p90"] <= naive["p90"].min()


def test_the_p90_factors_add_up_to_the_difference_in_p90():
    model = linear_model({"log_scale_up": 0.7, "n_models": -0.1, "log_tokens_per_model": -0.1},
                         ranges={"n_models": [1.0, 6.0]}, widen_per_unit=0.5)
    scored = score(model, all_designs(resolved(max_models=8), 1.0)[0])
    parts = p90_factors(model, scored)
    total = parts.sum(axis=1)
    log_p90 = np.log(scored["p90"].to_numpy())
    assert log_p90 - log_p90[0] == pytest.approx((total - total.iloc[0]).to_numpy())
    # 7 or 8 sizes lie outside the sweep's 1-6: their widening is the "outside the corpus" factor.
    assert (parts.loc[scored["n_models"] > 6, "outside the corpus"] > 0).all()


def test_compare_names_the_factor_that_made_the_other_design_worse():
    model = linear_model({"log_scale_up": 0.7})
    designs = pd.DataFrame({"scale_up": [2.0, 8.0], "n_models": [5, 5], "train_compute_share": [0.05, 0.05],
                            "tokens_per_model": [1e10, 1e10], "fraction": [1.0, 1.0], "max_epochs": [1.0, 1.0],
                            "has_curves": [1.0, 1.0], "sizes": [[1.0], [1.0]], "outside": [[], []]})
    lost = compare(model, designs.iloc[0], designs.iloc[1])
    assert [f["factor"] for f in lost] == ["scale-up"]
    assert lost[0]["p90_ratio"] == pytest.approx(4 ** 0.7)


def test_runners_up_are_distinct_kinds_each_with_why_it_lost():
    model = linear_model({"log_scale_up": 0.7, "n_models": -0.1, "log_tokens_per_model": -0.1})
    ranked = rank(score(model, all_designs(resolved(), 1.0)[0]))
    out = runners_up(model, ranked)
    assert len(out) == 4
    kinds = {(a["n_models"], int(np.floor(4 * np.log10(max(a["sizes"]))))) for a in out if a["name"] == SEARCHED}
    assert len(kinds) == sum(a["name"] == SEARCHED for a in out)
    for a in out:
        assert a["p90"] >= ranked.iloc[0]["p90"] and a["p90_over_recommended"] >= 1.0
        assert 0 < a["p10"] <= a["p50"] <= a["p90"] and a["why"]


def test_rescaling_the_pool_to_another_budget_finds_what_a_fresh_search_finds():
    model = linear_model({"log_scale_up": 0.7, "n_models": -0.1, "log_tokens_per_model": -0.1})
    r = resolved()
    pool, _ = all_designs(r, 1.0)
    for factor in (1 / 30, 1 / 3, 3.0):
        budget = r["budget"] * factor
        fresh, _ = all_designs({**r, "budget": budget}, 1.0)
        a, b = rank(score(model, at_budget(pool, r, 1.0, budget))).iloc[0], rank(score(model, fresh)).iloc[0]
        assert (a["name"], a["p90"], a["p50"]) == (b["name"], pytest.approx(b["p90"]), pytest.approx(b["p50"]))
        assert np.allclose(a["sizes"], b["sizes"]) and np.sum(a["flops"]) == pytest.approx(budget)
