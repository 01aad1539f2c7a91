"""MLflow: stores with deleted runs, several experiments, repeated names; history exports with run ids."""
import pytest

import fits
from fits.trackers import RunsImportError

from .writers import LOSS, write_mlruns


@pytest.fixture
def store(tmp_path, opt_train):
    return write_mlruns(opt_train, tmp_path / "mlruns")


def run_dir(store, name):
    return next(p.parent.parent for p in store.glob("*/*/tags/mlflow.runName") if p.read_text() == name)


def test_a_deleted_run_is_reported_not_imported(store, opt_train):
    meta = run_dir(store, "OPT-125m") / "meta.yaml"
    meta.write_text(meta.read_text().replace("lifecycle_stage: active", "lifecycle_stage: deleted"))
    result = fits.read_runs(store, metric=LOSS, tokens_per_step=1e6)
    assert "OPT-125m" not in set(result.frame["model"])
    assert result.report.runs.set_index("run").loc["OPT-125m", "status"] == "deleted in MLflow"
    deleted = result.report.skipped[result.report.skipped["run"] == "OPT-125m"]
    assert deleted["count"].sum() == 2 * (opt_train["model"] == "OPT-125m").sum()  # loss and lr, all reported


def test_experiment_filter_and_a_single_run_directory(store):
    with pytest.raises(RunsImportError, match="no rows to import"):
        fits.read_runs(store, metric=LOSS, tokens_per_step=1e6, experiment="other")
    result = fits.read_runs(store, metric=LOSS, tokens_per_step=1e6, experiment="scaling")
    assert result.frame["model"].nunique() == 5
    one = fits.read_runs(run_dir(store, "OPT-13b"), metric=LOSS, tokens_per_step=4e6)
    assert one.frame["model"].unique().tolist() == ["OPT-13b"]


def test_params_by_run_id_and_a_bad_params_value(store):
    rid = run_dir(store, "OPT-30b").name
    (run_dir(store, "OPT-30b") / "params" / "n_params").unlink()
    result = fits.read_runs(store, metric=LOSS, tokens_per_step=4e6, params={rid: "30B"}, runs=["OPT-30b"])
    assert result.frame["params"].unique().tolist() == [30_000_000_000]
    (run_dir(store, "OPT-13b") / "params" / "n_params").write_text("big")
    with pytest.raises(RunsImportError, match="'big', not a parameter count") as caught:
        fits.read_runs(store, metric=LOSS, tokens_per_step=4e6, params_key="n_params")
    assert caught.value.field == "n_params" and caught.value.path.endswith(run_dir(store, "OPT-13b").name)


def test_history_export_with_run_ids(tmp_path):
    path = tmp_path / "metrics.csv"  # Metric.to_dictionary() rows as MLflow 3 gives them
    path.write_text("key,value,timestamp,step,model_id,dataset_name,dataset_digest,run_id\n"
                    "train/loss,3.0,1001,1,,,,abc\ntrain/loss,2.5,1002,2,,,,abc\nlr,0.1,1002,2,,,,abc\n")
    result = fits.read_runs(path, metric=LOSS, tokens_per_step=10, params={"abc": 10})
    assert result.frame[["model", "tokens", "value"]].values.tolist() == [["abc", 10.0, 3.0], ["abc", 20.0, 2.5]]
    bad = tmp_path / "nostep.csv"
    bad.write_text("key,value\ntrain/loss,3.0\n")
    with pytest.raises(RunsImportError, match="no 'step' column") as caught:
        fits.read_runs(bad, metric=LOSS, tokens_per_step=10, params={"nostep": 10})
    assert caught.value.path.endswith("nostep.csv") and caught.value.field == "step"


def test_a_tracking_uri_is_read_through_mlflow(tmp_path, opt_train, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from .conftest import assert_same_rows

    # A local backend stands in for a server: the same client calls (search_runs, get_metric_history).
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "store").as_uri()
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("scaling")
    for model, part in opt_train.groupby("model"):
        run = client.create_run(exp, run_name=model)
        client.log_param(run.info.run_id, "num_params", int(part["params"].iloc[0]))
        for i, row in enumerate(part.itertuples()):
            client.log_metric(run.info.run_id, LOSS, row.value, step=int(row.step), timestamp=1_700_000_000_000 + i)
        client.log_metric(run.info.run_id, "lr", 1e-4, step=1)
        client.set_terminated(run.info.run_id)
    per_step = dict(zip(opt_train["model"], opt_train["tokens"] / opt_train["step"]))
    result = fits.read_runs(uri, metric=LOSS, tokens_per_step=per_step, experiment="scaling")
    assert result.report.source == "mlflow"
    assert_same_rows(result.frame, opt_train, rtol=1e-12)
    assert result.report.runs["params_from"].str.endswith("num_params").all()
    with pytest.raises(RunsImportError, match="no experiment named or numbered 'nope'") as caught:
        fits.read_runs(uri, metric=LOSS, tokens_per_step=1, experiment="nope")
    assert caught.value.field == "experiment"
