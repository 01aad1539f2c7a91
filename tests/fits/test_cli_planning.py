"""python -m fits calibrate / evaluate-plans on a three-family slice of the reference corpus."""
import pytest

from .conftest import write_corpus_slice
from .test_cli import run_cli, strict_json

SLICE = ["GPT2-c4-1", "overtrain-RedPajama", "lambda"]  # 3, 6 (final losses only) and 5 sizes


@pytest.fixture(scope="module")
def three_families(tmp_path_factory):
    return write_corpus_slice(tmp_path_factory.mktemp("corpus3"), SLICE, "three.csv")


@pytest.mark.subprocess
def test_calibrate_reports_held_out_coverage_and_writes_the_documented_json(three_families, tmp_path):
    out = tmp_path / "cal.json"
    proc = run_cli("calibrate", "--train", three_families, "--test", three_families, "--jobs", "1",
                   "--json", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "coverage" in proc.stdout and "median |log(p50 / realised)|" in proc.stdout
    data = strict_json(out)
    assert 0.0 <= data["coverage"] <= 1.0 and data["median_abs_log_ratio"] >= 0.0
    assert {r["family"] for r in data["rows"]} == set(SLICE)
    row = data["rows"][0]
    assert set(row["predicted"]) == {"p10", "p50", "p90"} and "realized_are" in row and "design" in row


@pytest.mark.subprocess
def test_evaluate_plans_reports_a_win_rate_and_the_alternatives(three_families, tmp_path):
    out = tmp_path / "plans.json"
    proc = run_cli("evaluate-plans", "--train", three_families, "--test", three_families, "--jobs", "1",
                   "--json", out, "--quiet", "--budgets", "0.1", "0.3")
    assert proc.returncode == 0, proc.stderr
    assert "win rate" in proc.stdout
    data = strict_json(out)
    assert 0.0 <= data["win_rate"] <= 1.0
    families = {r["family"] for r in data["rows"]}
    assert families <= {"overtrain-RedPajama", "lambda"}  # >= 4 sizes only
    for row in data["rows"]:
        assert set(row["recommended"]) == {"design", "predicted_p50", "realized_are"}
        assert all(set(a) >= {"name", "realized_are"} for a in row["alternatives"])


@pytest.mark.subprocess
def test_a_missing_train_file_exits_2(tmp_path):
    proc = run_cli("calibrate", "--train", tmp_path / "nope.csv", "--test", tmp_path / "nope.csv")
    assert proc.returncode == 2 and "not found" in proc.stderr and "Traceback" not in proc.stderr
