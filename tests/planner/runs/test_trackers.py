"""Logs uploaded from trackers become a prediction's runs, with every value kept or reported (planner.runs.trackers)."""
import numpy as np
import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from planner.runs.trackers import TrackerInputError, params_csv, thin_runs, tracker_limits, tracker_runs
from tests.planner.runs.logs import LOSS, TOKENS, TOKENS_PER_STEP, curves, logs_zip, params_csv as params_of, tarred
from tests.planner.runs.logs import tensorboard_dir

OPTIONS = {"metric": LOSS, "tokens_per_step": TOKENS_PER_STEP}


def upload(data: bytes, name: str):
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def test_a_zip_of_event_files_gives_the_runs_exactly_and_the_report(tmp_path):
    frame = curves()
    runs, tracker = tracker_runs(logs=upload(logs_zip(tmp_path, frame), "logs.zip"), options=OPTIONS,
                                 params_text=params_of(frame))

    got = pd.DataFrame(runs).sort_values(["model", "tokens"], ignore_index=True)
    want = frame.sort_values(["model", "tokens"], ignore_index=True)
    assert got["model"].tolist() == want["model"].tolist()
    np.testing.assert_array_equal(got["tokens"], want["tokens"])
    np.testing.assert_array_equal(got["step"], want["step"])
    np.testing.assert_allclose(got["value"], want["value"], rtol=1e-6)  # float32 in the event files
    assert set(got["seed"]) == {""} and "run_tokens" not in got

    report = tracker["report"]
    assert (report["source"], report["metric"], report["rows_kept"]) == ("tensorboard", LOSS, len(frame))
    # Nothing lost: the lr and tokens series are counted, run by run.
    assert report["values_read"] == 3 * len(frame) == report["rows_kept"] + report["values_skipped"]
    assert {(s["metric"], s["count"]) for s in report["skipped"]} == {("lr", 40), (TOKENS, 40)}
    assert report["lines"][0].startswith("tensorboard: 4 of 4 runs imported, 160 rows")
    assert tracker["filename"] == "logs.zip" and tracker["thinned"] is None
    assert tracker["options"]["metric"] == LOSS
    assert tracker["params"] == {m: {"params": int(n), "tokens_per_step": TOKENS_PER_STEP}
                                 for m, n in frame.groupby("model")["params"].first().items()}


def test_a_tar_gz_with_a_tokens_series_gives_the_runs_tokens_from_the_series(tmp_path):
    frame = curves(planned_steps=6000)
    data = tarred(tensorboard_dir(frame, tmp_path / "logs"))
    params = tmp_path / "P.csv"
    params.write_text(params_of(frame, run_steps=20000))

    runs, tracker = tracker_runs(logs=upload(data, "logs.tar.gz"), options={"metric": LOSS, "tokens_column": TOKENS},
                                 params_upload=upload(params.read_bytes(), "P.csv"))
    # The tokens series is stored as float32 too.
    np.testing.assert_allclose(sorted(r["tokens"] for r in runs), sorted(frame["tokens"]), rtol=1e-6)
    assert tracker["report"]["tokens"] == f"column {TOKENS!r}"
    # run_steps x tokens per step is unknown with a tokens column: a planned length needs tokens per step.
    assert not any("run_tokens" in r for r in runs)


def test_the_planned_length_comes_from_the_params_run_steps(tmp_path):
    frame = curves(planned_steps=6000)
    runs, _ = tracker_runs(logs=upload(logs_zip(tmp_path, frame), "logs.zip"), options=OPTIONS,
                           params_text=params_of(frame, run_steps=20000))
    assert {r["run_tokens"] for r in runs} == {20000 * TOKENS_PER_STEP}


@pytest.mark.parametrize("options, params, field, message", [
    ({"metric": "loss", "tokens_per_step": 1e6}, True, "metric", "no run logs the metric 'loss'; series found: 'lr', "),
    ({"metric": LOSS}, True, "tokens_per_step", "give tokens per step"),
    ({"metric": LOSS, "tokens_column": "nope"}, True, "tokens_column", "no run logs the tokens series 'nope'"),
    ({"metric": LOSS, "tokens_per_step": 1e6}, False, "params", "3 run(s) no parameter count"),
    ({"metric": " ", "tokens_per_step": 1e6}, True, "metric", "Name the loss metric"),
    ({"metric": LOSS, "tokens_per_step": 1e6, "source": "neptune"}, True, "source", "must be one of auto"),
])
def test_bad_input_names_the_field_and_the_file(tmp_path, options, params, field, message):
    frame = curves(sizes=(1e8, 3e8, 1e9))
    with pytest.raises(TrackerInputError) as caught:
        tracker_runs(logs=upload(logs_zip(tmp_path, frame), "logs.zip"), options=options,
                     params_text=params_of(frame) if params else "")
    assert caught.value.field == field
    assert message in str(caught.value)
    assert "/tmp" not in str(caught.value)


def test_a_bad_params_file_is_the_params_files_fault_and_names_its_line(tmp_path):
    frame = curves(sizes=(1e8, 3e8))
    with pytest.raises(TrackerInputError) as caught:
        tracker_runs(logs=upload(logs_zip(tmp_path, frame), "logs.zip"), options=OPTIONS,
                     params_upload=upload(b"run,params\nrun-1e+08,lots\n", "sizes.csv"))
    assert caught.value.field == "params_file"
    assert str(caught.value) == ("sizes.csv: field 'params': line 2: run 'run-1e+08': 'lots' is not a parameter count "
                                 "(a positive integer, or e.g. 125M, 1.3B)")


@pytest.mark.parametrize("name, data, field", [
    ("logs.zip", b"PK\x03\x04 not really", "logs"),
    ("logs.tar.gz", b"\x1f\x8b nope", "logs"),
    ("export.csv", b"\xff\xfe\x00", "logs"),
    ("logs", bytes(range(256)) * 4, "logs"),
    # An event file with no readable record holds no series: the metric is not there.
    ("events.out.tfevents.1.host", b"\x00" * 40, "metric"),
])
def test_garbage_is_refused_naming_the_field(name, data, field):
    with pytest.raises(TrackerInputError) as caught:
        tracker_runs(logs=upload(data, name), options=OPTIONS, params_text="run,params\na,1\n")
    assert caught.value.field == field, str(caught.value)
    assert str(caught.value).startswith(name + ": ")


def test_an_archive_over_the_extraction_limit_is_refused(tmp_path, settings):
    settings.SCALEPLAN_MAX_DECOMPRESSED_BYTES = 20_000
    assert tracker_limits().max_bytes == 20_000
    frame = curves()
    with pytest.raises(TrackerInputError) as caught:
        tracker_runs(logs=upload(logs_zip(tmp_path, frame), "logs.zip"), options=OPTIONS, params_text=params_of(frame))
    assert caught.value.field == "logs" and "20000" in str(caught.value)


def test_values_over_the_row_limit_are_refused_while_read(tmp_path, settings):
    settings.SCALEPLAN_MAX_IMPORT_ROWS = 100
    frame = curves()
    with pytest.raises(TrackerInputError) as caught:
        tracker_runs(logs=upload(logs_zip(tmp_path, frame), "logs.zip"), options=OPTIONS, params_text=params_of(frame))
    assert caught.value.field == "logs" and "100" in str(caught.value)


def test_runs_over_the_prediction_limit_are_thinned_evenly_in_log_tokens_and_it_says_so():
    frame = curves(steps=np.arange(1, 1001) * 20).assign(metric=LOSS)
    thinned, info = thin_runs(frame, 1000)
    counts = thinned.groupby("model").size()
    assert (counts <= info["per_run"] + 1).all()
    # The largest grid that fits: the row budget is (nearly) used up.
    assert 950 < len(thinned) <= 1000 and info["rows_kept"] == len(thinned)
    assert info["rows_read"] == 4000 and info["n_runs"] == 4
    # Every run keeps its last checkpoint, and the kept ones spread over the whole log-token range.
    for model, part in thinned.groupby("model"):
        original = np.log(frame.loc[frame["model"] == model, "tokens"].to_numpy())
        kept = np.log(part["tokens"].to_numpy())
        assert kept.max() == original.max() and kept.min() == original.min()
        # Fewer than per_run: where checkpoints are further apart than the grid, several grid points take one.
        assert len(part) > 0.5 * info["per_run"]
        # Where the checkpoints are denser than the grid (the top fifth in log tokens), one per grid step.
        span = original.max() - original.min()
        step = span / (info["per_run"] - 1)
        upper = np.sort(kept[kept > original.min() + 0.8 * span])
        assert np.diff(upper).max() < 1.5 * step and len(upper) > 0.18 * info["per_run"]
    assert thin_runs(frame, 5000) == (frame, None)


def test_the_params_mapping_round_trips_through_the_csv_a_user_edits(tmp_path):
    frame = curves(sizes=(1e8, 3e8, 1e9))
    _, tracker = tracker_runs(logs=upload(logs_zip(tmp_path, frame), "logs.zip"), options=OPTIONS,
                              params_text=params_of(frame))
    text = params_csv(tracker["params"])
    assert text.splitlines()[0] == "run,params,tokens_per_step,run_tokens"
    again, _ = tracker_runs(logs=upload(logs_zip(tmp_path, frame, "again"), "logs.zip"),
                            options={"metric": LOSS}, params_text=text)
    assert len(again) == len(frame)


def test_a_wandb_chart_export_gives_the_same_runs(tmp_path):
    from tests.fits.trackers.writers import write_wandb_panel

    frame = curves()
    path = write_wandb_panel(frame, tmp_path / "wandb_export.csv")
    runs, tracker = tracker_runs(logs=upload(path.read_bytes(), "wandb_export.csv"), options=OPTIONS,
                                 params_text=params_of(frame))
    got = pd.DataFrame(runs).sort_values(["model", "tokens"], ignore_index=True)
    want = frame.sort_values(["model", "tokens"], ignore_index=True)
    assert got["model"].tolist() == want["model"].tolist()
    np.testing.assert_array_equal(got["value"], want["value"])  # text formats: exactly
    assert tracker["report"]["source"] == "wandb"
    # The __MIN / __MAX band columns are reported, not read.
    assert tracker["report"]["values_read"] == tracker["report"]["rows_kept"] + tracker["report"]["values_skipped"]


def test_mlflow_histories_in_a_zip_and_a_store_give_the_same_runs(tmp_path):
    import zipfile

    from tests.fits.trackers.writers import write_mlflow_history, write_mlruns

    frame = curves()
    history = write_mlflow_history(frame, tmp_path / "history.csv")
    runs, tracker = tracker_runs(logs=upload(history.read_bytes(), "history.csv"), options=OPTIONS,
                                 params_text=params_of(frame))
    assert len(runs) == len(frame) and tracker["report"]["source"] == "mlflow"

    store = write_mlruns(frame, tmp_path / "mlruns")  # each run's size in its params: no params needed
    archive = tmp_path / "mlruns.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(store.rglob("*")):
            out.write(path, path.relative_to(tmp_path).as_posix())
    runs, tracker = tracker_runs(logs=upload(archive.read_bytes(), "mlruns.zip"),
                                 options={**OPTIONS, "experiment": "scaling"})
    got = pd.DataFrame(runs).sort_values(["model", "tokens"], ignore_index=True)
    np.testing.assert_array_equal(got["value"], frame.sort_values(["model", "tokens"])["value"])
    assert {r["params_from"] for r in tracker["report"]["runs"]} == {"mlflow config: n_params"}


@pytest.mark.parametrize("name, expected", [
    ("../../etc/passwd", "passwd"), ("C:\\logs\\run.zip", "run.zip"), ("..", "logs"), ("a\x00b\u202e.zip", "ab.zip"),
    ("é" * 300 + ".tar.gz", None),
])
def test_uploaded_names_stay_in_the_scratch_directory_and_keep_their_suffixes(name, expected):
    from planner.runs.trackers import upload_name

    got = upload_name(name, "logs")
    if expected is not None:
        assert got == expected
    else:
        assert len(got.encode()) <= 200 and got.endswith(".tar.gz") and "/" not in got


def test_awkward_run_names_become_valid_model_names_for_the_prediction(tmp_path):
    from planner.predictions.services import prediction_check

    frame = curves(sizes=(1e8, 3e8, 1e9))
    names = {"run-1e+08": "=sum(A1) ünïcode", "run-3e+08": "sweep/lr 3e-4 \"q\"", "run-1e+09": "@big, 1B"}
    frame["model"] = frame["model"].map(names)
    params = "run,params\n" + "".join(f'"{names[f"run-{n:.0e}"].replace(chr(34), chr(34) * 2)}",{int(n)}\n'
                                      for n in (1e8, 3e8, 1e9))
    runs, tracker = tracker_runs(logs=upload(logs_zip(tmp_path, frame), "logs.zip"), options=OPTIONS,
                                 params_text=params)
    models = sorted({r["model"] for r in runs})
    assert len(models) == 3 and models == sorted(r["model"] for r in tracker["report"]["runs"])
    assert not any(m.startswith(("=", "+", "-", "@")) or "/" in m for m in models), models
    prediction_check(runs=runs, target_params=3e10, target_tokens=2e11, coverage=0.8)  # the runs' rules hold
