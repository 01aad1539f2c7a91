"""python -m fits calibrate / evaluate-plans on a three-family, three-paper slice of the reference corpus."""
import pandas as pd
import pytest

from fits.cli import main
from fits.errormodel import ErrorModel

from .conftest import write_corpus_slice
from .test_cli import run_cli, strict_json

SLICE = ["GPT2-c4-1", "overtrain-RedPajama", "lambda"]  # 3, 6 (final losses only) and 5 sizes; three papers


@pytest.fixture(scope="module")
def three_families(tmp_path_factory):
    return write_corpus_slice(tmp_path_factory.mktemp("corpus3"), SLICE, "three.csv")


def test_calibrate_reports_held_out_coverage_and_writes_the_documented_json(three_families, tmp_path, capsys):
    out = tmp_path / "cal.json"
    assert main(["calibrate", "--train", str(three_families), "--test", str(three_families), "--jobs", "1",
                 "--json", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "coverage" in captured.out and "median |log(p50 / realised)|" in captured.out
    # Both levels are reported, and coverage per source (paper).
    assert "fit level (the design's runs known)" in captured.out and "plan level (design only)" in captured.out
    assert "coverage by source" in captured.out
    assert "leave-one-source-out" in captured.err
    data = strict_json(out)
    for figures in (data, data["plan_level"]):
        assert 0.0 <= figures["coverage"] <= 1.0 and figures["median_abs_log_ratio"] >= 0.0
        assert figures["median_p90_over_p10"] >= 1.0
    assert {r["family"] for r in data["rows"]} == set(SLICE)
    assert len({r["source"] for r in data["rows"]}) == 3
    row = data["rows"][0]
    assert set(row) == {"family", "source", "design", "predicted", "predicted_plan", "realized_are"}
    assert set(row["predicted"]) == {"p10", "p50", "p90", "level", "outside"}
    assert set(row["predicted_plan"]) == {"p10", "p50", "p90"}
    assert {r["predicted"]["level"] for r in data["rows"]} <= {"fit", "plan"}


def test_calibrate_without_test_saves_a_model_that_the_library_reads(three_families, tmp_path, capsys):
    saved = tmp_path / "model.json"
    assert main(["calibrate", "--train", str(three_families), "--jobs", "1", "--quiet",
                 "--save-model", str(saved)]) == 0
    captured = capsys.readouterr()
    # No TEST: TRAIN itself, each source held out in turn.
    assert "TRAIN, each source held out in turn" in captured.out
    assert f"error model saved: {saved}" in captured.err
    model = ErrorModel.from_dict(strict_json(saved))
    assert model.trained_on["families"] == 3 and model.trained_on["groups"] == 3
    design = pd.DataFrame({"scale_up": [4.0], "n_models": [3], "train_compute_share": [0.05], "fraction": [1.0],
                           "tokens_per_model": [1e10]})
    pred = model.predict(design)
    assert pred["level"].iloc[0] == "plan"
    assert 0 < pred["p10"].iloc[0] <= pred["p50"].iloc[0] <= pred["p90"].iloc[0]


def test_save_model_into_a_missing_directory_fails_before_the_sweep(three_families, tmp_path, capsys):
    assert main(["calibrate", "--train", str(three_families), "--quiet",
                 "--save-model", str(tmp_path / "no" / "dir" / "m.json")]) == 2
    assert "no directory" in capsys.readouterr().err


def test_evaluate_plans_reports_a_win_rate_and_the_alternatives(three_families, tmp_path, capsys):
    out = tmp_path / "plans.json"
    assert main(["evaluate-plans", "--train", str(three_families), "--test", str(three_families), "--jobs", "1",
                 "--json", str(out), "--quiet", "--budgets", "0.1", "0.3"]) == 0
    assert "win rate" in capsys.readouterr().out
    data = strict_json(out)
    assert 0.0 <= data["win_rate"] <= 1.0
    families = {r["family"] for r in data["rows"]}
    assert families <= {"overtrain-RedPajama", "lambda"}  # >= 4 sizes only
    for row in data["rows"]:
        rec = row["recommended"]
        assert set(rec) == {"design", "predicted_p10", "predicted_p50", "predicted_p90", "realized_are"}
        assert 0 < rec["predicted_p10"] <= rec["predicted_p50"] <= rec["predicted_p90"]
        assert all(set(a) >= {"name", "realized_are"} for a in row["alternatives"])


@pytest.mark.subprocess
def test_a_missing_train_file_exits_2(tmp_path):
    proc = run_cli("calibrate", "--train", tmp_path / "nope.csv", "--test", tmp_path / "nope.csv")
    assert proc.returncode == 2 and "not found" in proc.stderr and "Traceback" not in proc.stderr
