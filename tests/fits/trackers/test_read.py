"""read_runs end to end: a real family written out as each tracker writes it imports back to the same
canonical rows and predicts the same target loss as those rows do."""
import numpy as np
import pytest

import fits
from fits.trackers import RunsImportError

from .conftest import TARGET, assert_same_rows
from .writers import (LOSS, TOKENS, write_mlflow_history, write_mlruns, write_tensorboard, write_wandb_history,
                      write_wandb_panel)

# TensorBoard keeps a scalar as float32 (simple_value): 2^-24 relative rounding, so values compare at 1e-6
# relative. CSV, JSON and MLflow's text files keep the float64 digits: 1e-12.
FLOAT32_RTOL = 1e-6
TEXT_RTOL = 1e-12


def target_point(runs):
    target = runs[runs["model"] == TARGET]
    return float(target["params"].iloc[0]), float(target["tokens"].max())


def canonical_prediction(opt_runs, opt_train):
    n, d = target_point(opt_runs)
    return fits.predict_loss(opt_train[["model", "params", "tokens", "value"]], [n], [d])


def check_prediction(imported, opt_runs, opt_train, rtol):
    n, d = target_point(opt_runs)
    want = canonical_prediction(opt_runs, opt_train)
    got = fits.predict_loss(imported.frame, [n], [d])
    np.testing.assert_allclose(got, want, rtol=rtol)


def test_tensorboard_directory_imports_back_and_predicts_the_same(tmp_path, opt_runs, opt_train, params_file):
    write_tensorboard(opt_train, tmp_path / "logs")
    result = fits.read_runs(tmp_path / "logs", metric=LOSS, params=params_file)
    assert result.report.source == "tensorboard"
    assert_same_rows(result.frame, opt_train, rtol=FLOAT32_RTOL)
    assert list(result.frame.columns) == ["model", "params", "tokens", "value", "step", "metric"]
    assert (result.frame["metric"] == LOSS).all()
    # Float32 rounding of the losses moves the prediction by far less than 1e-6.
    check_prediction(result, opt_runs, opt_train, rtol=1e-6)
    report = result.report
    assert report.unknown_params == [TARGET]  # listed in the params file, not among the runs
    assert set(report.runs["status"]) == {"imported"}
    # Every value read is a row, or reported: here the lr and tokens series, per run.
    assert report.values_read == report.rows_kept + report.skipped["count"].sum()
    assert set(report.skipped["metric"]) == {"lr", TOKENS}


def test_tf2_tensor_scalars_are_read_exactly(tmp_path, opt_train, params_file):
    write_tensorboard(opt_train, tmp_path / "logs", tensors=True)
    result = fits.read_runs(tmp_path / "logs", metric=LOSS, params=params_file)
    assert_same_rows(result.frame, opt_train, rtol=TEXT_RTOL)


def test_tokens_column_instead_of_tokens_per_step(tmp_path, opt_train, opt_runs):
    write_tensorboard(opt_train, tmp_path / "logs", tensors=True)
    params = opt_runs.groupby("model")["params"].first().to_dict()
    result = fits.read_runs(tmp_path / "logs", metric=LOSS, tokens_column=TOKENS, params=params)
    assert_same_rows(result.frame, opt_train, rtol=TEXT_RTOL)
    assert result.report.tokens_values_used == len(opt_train)
    assert result.report.values_read == (result.report.rows_kept + result.report.tokens_values_used
                                         + result.report.skipped["count"].sum())


def test_wandb_panel_export_imports_back_and_predicts_the_same(tmp_path, opt_runs, opt_train, params_file):
    path = write_wandb_panel(opt_train, tmp_path / "wandb_export.csv")
    result = fits.read_runs(path, metric=LOSS, params=params_file)
    assert result.report.source == "wandb"
    assert_same_rows(result.frame, opt_train, rtol=TEXT_RTOL)
    check_prediction(result, opt_runs, opt_train, rtol=1e-9)
    bands = result.report.skipped[result.report.skipped["metric"].str.endswith(("__MIN", "__MAX"))]
    assert len(bands) == 2 * opt_train["model"].nunique()
    assert bands["reason"].str.contains("band").all()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_wandb_run_histories_import_back(tmp_path, opt_train, params_file, suffix):
    files = write_wandb_history(opt_train, tmp_path / "hist", suffix=suffix)
    result = fits.read_runs(files, metric=LOSS, params=params_file)
    assert result.report.source == "wandb"
    assert_same_rows(result.frame, opt_train, rtol=TEXT_RTOL)
    # ... and the folder holding them, with tokens from the logged series.
    params = {m: int(p) for m, p in opt_train.groupby("model")["params"].first().items()}
    result = fits.read_runs(tmp_path / "hist", metric=LOSS, tokens_column=TOKENS, params=params)
    assert_same_rows(result.frame, opt_train, rtol=TEXT_RTOL)


def test_mlflow_metric_history_imports_back_and_predicts_the_same(tmp_path, opt_runs, opt_train, params_file):
    path = write_mlflow_history(opt_train, tmp_path / "history.csv")
    result = fits.read_runs(path, metric=LOSS, params=params_file)
    assert result.report.source == "mlflow"
    assert_same_rows(result.frame, opt_train, rtol=TEXT_RTOL)
    check_prediction(result, opt_runs, opt_train, rtol=1e-9)


def test_mlruns_store_takes_params_from_the_runs(tmp_path, opt_runs, opt_train):
    store = write_mlruns(opt_train, tmp_path / "mlruns")
    per_step = {m: k for m, k in zip(opt_train["model"], opt_train["tokens"] / opt_train["step"])}
    result = fits.read_runs(store, metric=LOSS, tokens_per_step=per_step)
    assert result.report.source == "mlflow"
    assert_same_rows(result.frame, opt_train, rtol=TEXT_RTOL)
    assert result.report.runs["params_from"].str.contains("n_params").all()
    check_prediction(result, opt_runs, opt_train, rtol=1e-9)


def test_params_file_overrides_the_tracker_config(tmp_path, opt_train, params_file):
    store = write_mlruns(opt_train, tmp_path / "mlruns")
    for f in store.glob("*/*/params/n_params"):
        f.write_text("1")  # wrong in the tracker; the file given wins
    result = fits.read_runs(store, metric=LOSS, params=params_file)
    assert_same_rows(result.frame, opt_train, rtol=TEXT_RTOL)


def test_run_selection_reports_the_others(tmp_path, opt_runs, params_file):
    write_tensorboard(opt_runs, tmp_path / "logs")
    keep = ["OPT-125m", "OPT-1.3b"]
    result = fits.read_runs(tmp_path / "logs", metric=LOSS, params=params_file, runs=keep)
    assert sorted(result.frame["model"].unique()) == sorted(keep)
    runs = result.report.runs.set_index("run")["status"]
    assert (runs.drop(keep) == "not selected").all()
    assert result.report.unknown_params == []  # the params file names runs that are there, if not selected


def test_runs_without_params_are_reported_and_the_rest_imported(tmp_path, opt_train, opt_runs):
    write_tensorboard(opt_train, tmp_path / "logs")
    params = {"OPT-125m": 125_000_000, "OPT-1.3b": "1.3B", "no-such-run": 7}
    per_step = dict(zip(opt_runs["model"], opt_runs["tokens"] / opt_runs["step"]))
    result = fits.read_runs(tmp_path / "logs", metric=LOSS, params=params, tokens_per_step=per_step)
    assert sorted(result.frame["model"].unique()) == ["OPT-1.3b", "OPT-125m"]
    assert result.frame.groupby("model")["params"].first().to_dict() == {"OPT-1.3b": 1_300_000_000,
                                                                          "OPT-125m": 125_000_000}
    runs = result.report.runs.set_index("run")
    assert (runs.loc[["OPT-6.7b", "OPT-13b", "OPT-30b"], "status"] == "no parameter count").all()
    assert result.report.unknown_params == ["no-such-run"]
    lost = result.report.skipped[result.report.skipped["reason"].str.startswith("no parameter count")]
    assert lost.loc[lost["metric"] == LOSS, "count"].sum() == (~opt_train["model"].isin(params)).sum()
    assert any("not imported: no parameter count" in line for line in result.report.lines())


def test_no_params_at_all_is_an_error_naming_the_field(tmp_path, opt_train):
    write_tensorboard(opt_train, tmp_path / "logs")
    with pytest.raises(RunsImportError, match="parameter count") as caught:
        fits.read_runs(tmp_path / "logs", metric=LOSS, tokens_per_step=1e6)
    assert caught.value.field == "params" and caught.value.path == "logs"


def test_missing_metric_names_the_series_found(tmp_path, opt_train, params_file):
    write_tensorboard(opt_train, tmp_path / "logs")
    with pytest.raises(RunsImportError, match="'val/loss'.*'lr'.*'train/loss'") as caught:
        fits.read_runs(tmp_path / "logs", metric="val/loss", params=params_file)
    assert caught.value.field == "metric"


def test_tokens_are_required_once(tmp_path, opt_train, opt_runs):
    write_tensorboard(opt_train.head(3), tmp_path / "logs")
    params = {"OPT-125m": 125_000_000}
    with pytest.raises(RunsImportError, match="tokens per step") as caught:
        fits.read_runs(tmp_path / "logs", metric=LOSS, params=params)
    assert caught.value.field == "tokens_per_step"
    with pytest.raises(RunsImportError, match="not both"):
        fits.read_runs(tmp_path / "logs", metric=LOSS, params=params, tokens_per_step=1, tokens_column=TOKENS)
    with pytest.raises(RunsImportError, match="positive number"):
        fits.read_runs(tmp_path / "logs", metric=LOSS, params=params, tokens_per_step=-5)


def test_report_is_json_safe_and_versioned(tmp_path, opt_train, params_file):
    import json

    write_tensorboard(opt_train, tmp_path / "logs")
    result = fits.read_runs(tmp_path / "logs", metric=LOSS, params=params_file)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["version"] == 1 and len(data["rows"]) == len(opt_train)
    assert data["report"]["rows_kept"] == len(opt_train)
    assert {r["run"] for r in data["report"]["runs"]} == set(opt_train["model"])


def test_planned_length_becomes_run_tokens(tmp_path, opt_train, opt_runs):
    write_tensorboard(opt_train, tmp_path / "logs")
    table = opt_runs.groupby("model").agg(params=("params", "first"), last=("step", "max")).reset_index()
    table["run_steps"] = table["last"] * 2  # half way through
    table["tokens_per_step"] = table["model"].map(dict(zip(opt_runs["model"], opt_runs["tokens"] / opt_runs["step"])))
    table.rename(columns={"model": "run"}).drop(columns="last").to_csv(tmp_path / "p.csv", index=False)
    result = fits.read_runs(tmp_path / "logs", metric=LOSS, params=tmp_path / "p.csv")
    last = result.frame.groupby("model")["tokens"].max()
    np.testing.assert_allclose(result.frame.groupby("model")["run_tokens"].first(), 2 * last)
