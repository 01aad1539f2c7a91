"""W&B exports: panel CSVs with other x-axes, empty cells, bad cells; history files with a run column."""
import pandas as pd
import pytest

import fits
from fits.trackers import RunsImportError

LOSS = "train/loss"


def test_panel_with_another_x_axis_uses_each_runs_step_column(tmp_path):
    path = tmp_path / "panel.csv"
    pd.DataFrame({
        "trainer/epoch": [0.1, 0.2, 0.3],
        "a - _step": [10, 20, 30], "a - _step__MIN": [10, 20, 30], "a - _step__MAX": [10, 20, 30],
        f"a - {LOSS}": [3.0, 2.5, 2.2],
        "b - _step": [5, 10, None], f"b - {LOSS}": [3.5, 3.0, None],
    }).to_csv(path, index=False)
    result = fits.read_runs(path, metric=LOSS, tokens_per_step=100, params={"a": 1e6, "b": 2e6})
    assert result.frame[["model", "step", "tokens", "value"]].values.tolist() == [
        ["a", 10, 1000.0, 3.0], ["a", 20, 2000.0, 2.5], ["a", 30, 3000.0, 2.2],
        ["b", 5, 500.0, 3.5], ["b", 10, 1000.0, 3.0]]


def test_panel_on_a_time_axis_without_steps_is_an_error(tmp_path):
    path = tmp_path / "panel.csv"
    pd.DataFrame({"Relative Time (Process)": [1.0, 2.0], f"a - {LOSS}": [3.0, 2.5]}).to_csv(path, index=False)
    with pytest.raises(RunsImportError, match="x-axis is 'Relative Time") as caught:
        fits.read_runs(path, metric=LOSS, tokens_per_step=1, params={"a": 1e6})
    assert caught.value.path.endswith("panel.csv")


def test_text_in_a_value_cell_is_reported_not_dropped(tmp_path):
    path = tmp_path / "hist.csv"
    path.write_text(f"_step,{LOSS},name\n1,3.0,a\n2,oops,a\n3,2.0,a\n")
    result = fits.read_runs(path, metric=LOSS, tokens_per_step=1, params={"a": 10})
    assert result.frame["step"].tolist() == [1, 3]
    bad = result.report.skipped[result.report.skipped["reason"] == "value is not a finite number"]
    assert bad["first_step"].tolist() == [2]


def test_history_needs_a_step_column(tmp_path):
    path = tmp_path / "hist.csv"
    path.write_text(f"epoch,{LOSS}\n1,3.0\n")
    with pytest.raises(RunsImportError, match="no step column") as caught:
        fits.read_runs(path, metric=LOSS, tokens_per_step=1, params={"hist": 10})
    assert caught.value.field == "_step"
    result = fits.read_runs(path, metric=LOSS, tokens_per_step=1, params={"hist": 10}, step_column="epoch")
    assert result.frame["step"].tolist() == [1]


def test_runs_table_export_gives_the_params(tmp_path):
    hist = tmp_path / "hist.jsonl"
    hist.write_text('{"_step": 1, "train/loss": 3.0, "name": "a"}\n{"_step": 1, "train/loss": 2.5, "name": "b"}\n'
                    '{"_step": 2, "media": {"_type": "image-file"}, "name": "b"}\n')
    runs_table = tmp_path / "wandb_runs.csv"  # the project table's "Export CSV": Name, State, config, summary
    runs_table.write_text("Name,State,n_params,lr,train/loss\na,finished,125M,3e-4,3.0\nb,finished,350000000,3e-4,2.5\n")
    result = fits.read_runs(hist, metric=LOSS, tokens_per_step=1, params=runs_table)
    assert result.frame.groupby("model")["params"].first().to_dict() == {"a": 125_000_000, "b": 350_000_000}
    assert "media" in set(result.report.skipped["metric"])


def test_unreadable_export_names_the_file(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"_step": 1, "train/loss": 3.0}\n{not json\n')
    with pytest.raises(RunsImportError, match="line 2 is not JSON") as caught:
        fits.read_runs(path, metric=LOSS, tokens_per_step=1, params={"broken": 10})
    assert caught.value.path.endswith("broken.jsonl")


def test_a_params_file_beside_the_exports_is_not_read_as_one(tmp_path):
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "a.csv").write_text(f"_step,{LOSS}\n1,3.0\n2,2.5\n")
    (tmp_path / "exports" / "params.csv").write_text("run,params\na,125M\n")
    result = fits.read_runs(tmp_path / "exports", metric=LOSS, tokens_per_step=1,
                            params=tmp_path / "exports" / "params.csv")
    assert result.frame["params"].tolist() == [125_000_000, 125_000_000]
    assert result.report.ignored_files[0][0] == "params.csv"
