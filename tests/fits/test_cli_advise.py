"""python -m fits advise / progress: end to end on a runs file (in-process), and bad input as exit 2."""
import json

import numpy as np
import pytest

from fits.cli import main

from .conftest import synthetic_family
from .test_advice import toy_error_model

TARGET = ["--target-params", "6.4e9", "--target-tokens", "1.3e11"]


@pytest.fixture
def runs_csv(tmp_path):
    """Three sizes still training: each planned for 2e10 tokens, logged up to 1.2e10."""
    fam = synthetic_family(0, sizes=np.geomspace(5e7, 8e8, 3), tokens=np.geomspace(1e8, 2e10, 20),
                           point_noise=0.005, run_noise=0.01).assign(run_tokens=2e10, metric="train/loss")
    path = tmp_path / "runs.csv"
    columns = ["model", "params", "tokens", "value", "run_tokens", "metric"]
    fam[fam["tokens"] <= 1.2e10][columns].to_csv(path, index=False)
    return path


@pytest.fixture
def model_json(tmp_path):
    path = tmp_path / "model.json"
    path.write_text(json.dumps(toy_error_model().to_dict()))
    return path


def strict_json(path):
    def reject(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(path.read_text(), parse_constant=reject)


def test_advise_prints_the_run_and_the_expected_are_now_and_after(runs_csv, model_json, tmp_path, capsys):
    out = tmp_path / "advice.json"
    assert main(["advise", str(runs_csv), *TARGET, "--budget-flops", "3e20", "--error-model", str(model_json),
                 "--n-boot", "6", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "expected ARE now:" in text and "expected ARE after:" in text and "advised run 1:" in text
    assert "runner-ups:" in text and "evidence: error model" in text
    data = strict_json(out)
    assert data["ranked_by"] == "error model" and data["runs"][0]["params"] > 8e8


def test_advise_without_an_error_model_ranks_by_the_own_fit(runs_csv, capsys):
    assert main(["advise", str(runs_csv), *TARGET, "--budget-flops", "3e20", "--n-boot", "6"]) == 0
    assert "evidence: own fit" in capsys.readouterr().out


def test_progress_prints_the_history_and_writes_the_plot_and_json(runs_csv, tmp_path, capsys):
    plot, out = tmp_path / "progress.png", tmp_path / "progress.json"
    assert main(["progress", str(runs_csv), *TARGET, "--points", "4", "--n-boot", "6", "--plot", str(plot),
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "as of (% planned)" in text and ("narrowing" in text or "too few" in text)
    assert plot.read_bytes()[:4] == b"\x89PNG"
    data = strict_json(out)
    assert data["axis"] == "share" and len(data["history"]) == 4


@pytest.mark.parametrize("args, message", [
    (["advise", "missing.csv", *TARGET, "--budget-flops", "1e20"], "runs file not found"),
    (["advise", "RUNS", *TARGET, "--budget-flops", "1e10"], "budget_flops"),
    (["advise", "RUNS", *TARGET, "--budget-flops", "1e20", "--error-model", "RUNS"], "not an error model"),
    (["advise", "RUNS", "--target-params", "1e8", "--target-tokens", "1e11", "--budget-flops", "1e20"],
     "target_params"),
    (["progress", "RUNS", *TARGET, "--metric", "val/loss"], "no rows of metric"),
    (["progress", "RUNS", *TARGET, "--plot", "out.txt"], "must end in"),
])
def test_bad_input_is_one_message_and_exit_2(runs_csv, args, message, capsys):
    args = [str(runs_csv) if a == "RUNS" else a for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_file_with_two_metrics_needs_metric(runs_csv, tmp_path, capsys):
    import pandas as pd

    frame = pd.read_csv(runs_csv)
    both = pd.concat([frame, frame.assign(metric="val/loss", value=frame["value"] * 1.01)])
    path = tmp_path / "two.csv"
    both.to_csv(path, index=False)
    assert main(["progress", str(path), *TARGET]) == 2
    assert "--metric" in capsys.readouterr().err
    assert main(["progress", str(path), *TARGET, "--metric", "val/loss", "--points", "2", "--n-boot", "4"]) == 0


def test_a_bad_number_is_refused_by_the_parser():
    with pytest.raises(SystemExit) as exc:
        main(["advise", "x.csv", *TARGET, "--budget-flops", "-1"])
    assert exc.value.code == 2


def test_progress_with_an_error_model_takes_its_intervals_from_it(runs_csv, model_json, tmp_path, capsys):
    out = tmp_path / "progress.json"
    assert main(["progress", str(runs_csv), *TARGET, "--points", "3", "--error-model", str(model_json),
                 "--json", str(out)]) == 0
    assert "intervals from the error model's fit level" in capsys.readouterr().out
    assert strict_json(out)["interval"] == "error model"
