"""python -m fits plan: a plan from a saved error model as JSON, CSV, a prediction template and a figure."""
import io
import json

import pandas as pd
import pytest

from fits.cli import main
from fits.errormodel import ErrorModel, fit_error_model
from fits.jsonsafe import json_safe
from fits.plan import PlanRequest, recommend

from .test_cli import run_cli, strict_json
from .test_errormodel import synthetic_sweep

REQUEST = ["--target-params", "7e9", "--target-tokens", "1.4e11", "--budget-fraction", "0.05"]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "M.json"
    path.write_text(json.dumps(fit_error_model(synthetic_sweep()).to_dict()))
    return path


def plan_cli(saved_model, *args):
    return main(["plan", "--error-model", str(saved_model), *args])


def test_plan_writes_the_documented_json_csv_template_and_figure(saved_model, tmp_path, capsys):
    out, runs, template, plot = (tmp_path / n for n in ("plan.json", "runs.csv", "template.csv", "iso.png"))
    assert plan_cli(saved_model, *REQUEST, "--json", str(out), "--csv", str(runs), "--template", str(template),
                    "--plot", str(plot)) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("recommended: ") and "naive five-log-spaced" in printed
    data = strict_json(out)
    rec = data["recommended"]
    assert {"p10", "p50", "p90", "models"} <= set(rec)
    for m in rec["models"]:
        assert {"params", "tokens", "flops", "eval_every_tokens"} <= set(m)
        assert m["eval_every_tokens"] <= m["tokens"] / 2
    assert [n["name"] for n in data["naive"]] == ["one-large-model", "k-smallest", "five-log-spaced"]
    assert all({"name", "p10", "p50", "p90"} <= set(n) and n["p90"] >= rec["p90"] for n in data["naive"])
    assert data["alternatives"] and all({"code", "message"} <= set(w) for w in data["warnings"])
    table = pd.read_csv(runs)
    assert list(table["model"]) == [m["model"] for m in rec["models"]]
    filled = pd.read_csv(template)
    assert list(filled.columns) == ["model", "params", "tokens", "value"] and filled["value"].isna().all()
    assert len(filled) == sum(m["evaluations"] for m in rec["models"])
    assert plot.stat().st_size > 10_000


def test_the_json_is_the_plan_the_library_makes(saved_model, tmp_path):
    out = tmp_path / "plan.json"
    assert plan_cli(saved_model, *REQUEST, "--max-models", "5", "--json", str(out)) == 0
    model = ErrorModel.from_dict(json.loads(saved_model.read_text()))
    expected = json_safe(recommend(model, PlanRequest(target_params=7e9, target_tokens=1.4e11, budget_fraction=0.05,
                                                      max_models=5)).to_dict())
    assert strict_json(out) == json.loads(json.dumps(expected))


def test_a_target_far_outside_the_corpus_is_planned_with_an_outside_corpus_warning(saved_model, tmp_path, capsys):
    out = tmp_path / "big.json"
    assert plan_cli(saved_model, "--target-params", "1e13", "--target-tokens", "2e14", "--budget-fraction", "0.01",
                    "--json", str(out)) == 0
    assert "outside_corpus" in [w["code"] for w in strict_json(out)["warnings"]]
    assert "warning [outside_corpus]" in capsys.readouterr().out


@pytest.mark.parametrize("extra", [["--budget-flops", "1e20"], ["--target-compute", "5.9e21"]])
def test_both_ways_of_giving_one_quantity_is_exit_2_naming_both(saved_model, capsys, extra):
    with pytest.raises(SystemExit) as exc:
        plan_cli(saved_model, *REQUEST, *extra)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "not allowed with argument" in err and extra[0] in err


def test_a_bad_request_is_reported_before_the_error_model_is_read(tmp_path, capsys):
    assert main(["plan", "--error-model", str(tmp_path / "missing.json"), "--target-params", "7e9",
                 "--target-tokens", "1.4e11", "--budget-fraction", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --budget-fraction:") and "missing.json" not in err


def test_input_the_library_refuses_is_one_message_naming_the_flag(saved_model, capsys):
    # --max-epochs below 1 is the library's to refuse: one message, exit 2.
    assert plan_cli(saved_model, *REQUEST, "--max-epochs", "0.5") == 2
    assert capsys.readouterr().err.startswith("error: --max-epochs:")


@pytest.mark.parametrize("content, says", [(None, "error model not found"), ("[1, 2]", "is not an error model"),
                                           ("{not json", "cannot read the error model"),
                                           ('{"version": 1}', "is not an error model this library reads")])
def test_a_missing_or_bad_error_model_is_exit_2(tmp_path, capsys, content, says):
    path = tmp_path / "M.json"
    if content is not None:
        path.write_text(content)
    assert main(["plan", "--error-model", str(path), *REQUEST]) == 2
    assert says in capsys.readouterr().err


def test_an_output_in_a_missing_directory_is_exit_2_before_planning(saved_model, tmp_path, capsys):
    assert plan_cli(saved_model, *REQUEST, "--csv", str(tmp_path / "no" / "runs.csv")) == 2
    assert "no directory" in capsys.readouterr().err


@pytest.mark.subprocess
def test_python_m_fits_plan_runs_and_bad_input_shows_no_traceback(saved_model, tmp_path):
    out = tmp_path / "plan.json"
    proc = run_cli("plan", "--error-model", saved_model, *REQUEST, "--json", out)
    assert proc.returncode == 0, proc.stderr
    assert strict_json(out)["recommended"]["models"]
    proc = run_cli("plan", "--error-model", saved_model, "--target-params", "-7e9", "--target-tokens", "1e11",
                   "--budget-fraction", "0.1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_the_template_from_the_cli_reads_as_runs(saved_model, tmp_path):
    template = tmp_path / "t.csv"
    assert plan_cli(saved_model, *REQUEST, "--template", str(template)) == 0
    rows = pd.read_csv(io.StringIO(template.read_text()))
    assert (rows.groupby("model")["params"].nunique() == 1).all()
    assert (rows.groupby("model")["tokens"].apply(lambda t: t.is_monotonic_increasing)).all()
