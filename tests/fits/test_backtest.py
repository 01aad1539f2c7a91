"""fits.backtest: the paper's protocol on a tiny hand-made family with answers worked out by hand."""
import numpy as np
import pandas as pd
import pytest

from fits.backtest import (
    are,
    backtest,
    backtest_family,
    best_loss_baseline,
    eligible_families,
    most_compute_baseline,
    split_target,
    summarise,
)


def _rows(family, model, params, tokens, values, seed=""):
    return pd.DataFrame({"family": family, "model": model, "params": float(params), "tokens": tokens,
                         "value": values, "seed": seed, "epochs": np.nan})


TOY = pd.concat([
    _rows("toy", "a", 1e8, [1e9, 2e9, 4e9], [3.0, 2.8, 2.35]),  # smallest, yet the lowest loss seen
    _rows("toy", "b", 2e8, [1e9, 2e9, 4e9], [2.9, 2.6, 2.4]),  # the most compute: 2e8 x 4e9
    _rows("toy", "c", 4e8, [1e9, 2e9, 3e9, 4e9], [2.8, 2.5, 2.3, 2.2]),  # the target size
], ignore_index=True)
TWO_SIZES = pd.concat([_rows("pair", "p", 1e8, [1e9, 2e9], [3.0, 2.9]),
                       _rows("pair", "q", 2e8, [1e9, 2e9], [2.9, 2.7])], ignore_index=True)


def test_split_target_keeps_the_largest_sizes_last_30_percent_as_target():
    train, target = split_target(TOY)
    assert sorted(train["model"].unique()) == ["a", "b"] and len(train) == 6
    # tokens >= 0.7 x 4e9 = 2.8e9
    assert target["tokens"].tolist() == [3e9, 4e9]
    assert target["value"].tolist() == [2.3, 2.2]


def test_are_is_the_mean_relative_error_and_inf_for_a_failed_prediction():
    assert are([2.0, 4.0], [2.2, 3.6]) == pytest.approx((0.1 + 0.1) / 2)
    assert are([2.0], [np.nan]) == float("inf")


def test_the_baselines_take_the_lowest_loss_and_the_most_compute_runs_final_loss():
    train, _ = split_target(TOY)
    assert best_loss_baseline(train, 2).tolist() == [2.35, 2.35]
    assert most_compute_baseline(train, 2).tolist() == [2.4, 2.4]


def test_backtest_family_scores_a_predictor_and_both_baselines():
    row = backtest_family(TOY, lambda train, n, d, e: np.full(len(n), 2.25))
    assert (row.family, row.n_sizes, row.n_train_points, row.n_target_points) == ("toy", 3, 6, 2)
    assert row.scale_up == pytest.approx(2.0)
    assert row.are == pytest.approx((0.05 / 2.3 + 0.05 / 2.2) / 2)
    assert row.are_best_loss == pytest.approx((0.05 / 2.3 + 0.15 / 2.2) / 2)
    assert row.are_most_compute == pytest.approx((0.1 / 2.3 + 0.2 / 2.2) / 2)
    assert row.error == ""


def test_the_predictor_sees_only_smaller_sizes():
    seen = {}

    def spy(train, n, d, e):
        seen["max_params"] = train["params"].max()
        seen["targets"] = (n.tolist(), d.tolist())
        return np.full(len(n), 2.25)

    backtest_family(TOY, spy)
    assert seen == {"max_params": 2e8, "targets": ([4e8, 4e8], [3e9, 4e9])}


def test_a_failing_predictor_is_a_row_with_infinite_are_and_the_error_not_a_crash():
    def broken(train, n, d, e):
        raise ValueError("no fit today")

    row = backtest_family(TOY, broken)
    assert row.are == float("inf")
    assert row.error == "ValueError: no fit today"
    assert np.isfinite(row.are_best_loss)


def test_only_families_with_three_sizes_are_eligible_and_each_gets_a_row():
    frame = pd.concat([TOY, TWO_SIZES], ignore_index=True)
    assert eligible_families(frame) == ["toy"]
    table = backtest(frame, lambda train, n, d, e: np.full(len(n), 2.25))
    assert table["family"].tolist() == ["toy"]


def test_summarise_gives_medians_p90_failures_and_families_worse_than_best_loss():
    table = pd.DataFrame({
        "family": ["f1", "f2", "f3", "f4"],
        "n_sizes": [3, 4, 5, 6],
        "are": [0.01, 0.05, 0.02, float("inf")],
        "are_best_loss": [0.03, 0.04, 0.03, 0.10],
        "are_most_compute": [0.02, 0.06, 0.04, 0.08],
    })
    out = summarise(table)
    assert out["families"] == 4
    assert out["are"]["median"] == pytest.approx(0.02)  # over the three finite values
    assert out["are"]["p90"] == pytest.approx(np.percentile([0.01, 0.02, 0.05], 90))
    assert out["are"]["failed"] == 1
    assert out["are_best_loss"]["median"] == pytest.approx(0.035)
    # f1 has only 3 sizes; f4 failed (inf > best-loss): both the bar's kind of miss.
    assert out["worse_than_best_loss_4plus_sizes"] == ["f2", "f4"]


def test_rows_carry_the_familys_source_when_the_frame_has_one():
    constant = lambda train, n, d, e: np.full(len(n), 2.25)
    assert backtest_family(TOY, constant).source == ""
    assert backtest_family(TOY.assign(source="Toy+24"), constant).source == "Toy+24"


def test_summarise_gives_each_source_its_line_and_weighs_sources_the_same():
    table = pd.DataFrame({
        "family": ["f1", "f2", "f3", "f4", "f5"],
        "source": ["A", "A", "A", "B", "C"],
        "n_sizes": [3, 4, 5, 6, 4],
        "are": [0.01, 0.02, 0.03, float("inf"), 0.10],
        "are_best_loss": [0.05] * 5,
        "are_most_compute": [0.05] * 5,
    })
    out = summarise(table)
    assert out["by_source"] == {
        "A": {"families": 3, "median": pytest.approx(0.02), "max": pytest.approx(0.03)},
        "B": {"families": 1, "median": float("inf"), "max": float("inf")},  # a failed fit: infinitely far off
        "C": {"families": 1, "median": pytest.approx(0.10), "max": pytest.approx(0.10)},
    }
    # Paper A's three families count as one paper: the median of (0.02, 0.10, inf), not of all five families;
    # a paper whose fits all failed is not dropped (that would flatter the figure).
    assert out["median_of_source_medians"] == pytest.approx(0.10)
    assert out["are"]["median"] == pytest.approx(0.025)
    assert "by_source" not in summarise(table.drop(columns=["source"]))
    assert "by_source" not in summarise(table.assign(source=""))


def test_backtest_of_families_from_two_sources_summarises_both():
    frame = pd.concat([TOY.assign(source="Toy+24"), TOY.assign(family="toy2", source="Other+25")], ignore_index=True)
    table = backtest(frame, lambda train, n, d, e: np.full(len(n), 2.25))
    assert table["source"].tolist() == ["Toy+24", "Other+25"]
    assert set(summarise(table)["by_source"]) == {"Toy+24", "Other+25"}
