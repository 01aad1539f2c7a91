"""TensorBoard specifics: restarts, nested run directories, partly written files, non-scalar tags."""
import numpy as np
import pytest

import fits
from fits.trackers import RunsImportError

from .writers import LOSS


def write(folder, points, *, tag=LOSS, wall0=1.7e9, image=False, suffix=""):
    """Event file in ``folder`` with (step, value) points, as a training script writes them."""
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(folder), flush_secs=3600, filename_suffix=suffix)
    for i, (step, value) in enumerate(points):
        writer.add_scalar(tag, value, step, walltime=wall0 + i)
    if image:
        writer.add_image("samples", np.zeros((3, 4, 4)), 1, walltime=wall0)
    writer.close()


def test_a_restart_keeps_the_later_write_and_reports_the_earlier(tmp_path):
    run = tmp_path / "logs" / "m-125m"
    write(run, [(s, 4.0 - s / 100) for s in range(1, 11)], wall0=1.7e9)
    # Resumed from the step-6 checkpoint: steps 6..10 written again (new file, later wall time).
    write(run, [(s, 3.0 - s / 100) for s in range(6, 13)], wall0=1.7e9 + 3600, suffix=".resumed")
    result = fits.read_runs(tmp_path / "logs", metric=LOSS, tokens_per_step=1000, params={"m-125m": 125e6})
    frame = result.frame
    assert frame["step"].tolist() == list(range(1, 13))
    np.testing.assert_allclose(frame["value"], [4.0 - s / 100 for s in range(1, 6)]
                               + [3.0 - s / 100 for s in range(6, 13)], rtol=1e-6)
    again = result.report.skipped[result.report.skipped["reason"].str.contains("written again")]
    assert again["first_step"].tolist() == [6, 7, 8, 9, 10] and (again["count"] == 1).all()


def test_nested_run_directories_are_named_by_their_path(tmp_path):
    write(tmp_path / "logs" / "sweep-a" / "m-125m", [(1, 4.0), (2, 3.5)])
    write(tmp_path / "logs" / "sweep-a" / "m-350m", [(1, 3.9), (2, 3.4)])
    write(tmp_path / "logs" / "m-760m", [(1, 3.8), (2, 3.3)])
    params = {"sweep-a/m-125m": 125e6, "sweep-a-m-350m": 350e6, "m-760m": "760M"}  # the path, or the model name
    result = fits.read_runs(tmp_path / "logs", metric=LOSS, tokens_per_step=1, params=params)
    assert sorted(result.frame["model"].unique()) == ["m-760m", "sweep-a-m-125m", "sweep-a-m-350m"]
    assert result.frame.groupby("model")["params"].first().to_dict() == {
        "m-760m": 760_000_000, "sweep-a-m-125m": 125_000_000, "sweep-a-m-350m": 350_000_000}


def test_an_event_file_still_being_written_is_read_up_to_its_last_whole_record(tmp_path):
    run = tmp_path / "logs" / "m"
    write(run, [(s, 4.0 - s / 100) for s in range(1, 21)])
    event = next(run.iterdir())
    event.write_bytes(event.read_bytes()[:-7])  # the last record cut short
    result = fits.read_runs(tmp_path / "logs", metric=LOSS, tokens_per_step=1, params={"m": 10})
    assert result.frame["step"].tolist() == list(range(1, 20))
    assert any("partly written record" in note for note in result.report.notes)


def test_a_corrupt_record_is_reported(tmp_path):
    run = tmp_path / "logs" / "m"
    write(run, [(s, 4.0 - s / 100) for s in range(1, 21)])
    event = next(run.iterdir())
    data = bytearray(event.read_bytes())
    data[len(data) // 2] ^= 0xFF
    event.write_bytes(bytes(data))
    result = fits.read_runs(tmp_path / "logs", metric=LOSS, tokens_per_step=1, params={"m": 10})
    assert 0 < len(result.frame) < 20
    assert any("corrupt" in note for note in result.report.notes)


def test_images_and_other_tags_are_counted_not_imported(tmp_path):
    write(tmp_path / "logs" / "m", [(1, 4.0), (2, 3.5)], image=True)
    result = fits.read_runs(tmp_path / "logs", metric=LOSS, tokens_per_step=1, params={"m": 10})
    reasons = dict(zip(result.report.skipped["metric"], result.report.skipped["reason"]))
    assert reasons["samples"] == "not a scalar (image)"


def test_nan_loss_and_step_zero_are_reported_per_value(tmp_path):
    write(tmp_path / "logs" / "m", [(0, 9.0), (1, 4.0), (2, float("nan")), (3, 3.0)])
    result = fits.read_runs(tmp_path / "logs", metric=LOSS, tokens_per_step=1, params={"m": 10})
    assert result.frame["step"].tolist() == [1, 3]
    skipped = result.report.skipped.set_index("first_step")["reason"]
    assert skipped[0] == "step 0: no tokens seen yet"
    assert skipped[2] == "value is not a finite number"


def test_one_event_file_or_a_folder_without_any(tmp_path):
    write(tmp_path / "logs" / "m-125m", [(1, 4.0), (2, 3.5)])
    event = next((tmp_path / "logs" / "m-125m").iterdir())
    result = fits.read_runs(event, metric=LOSS, tokens_per_step=1, params={"m-125m": 10})
    assert result.frame["model"].unique().tolist() == ["m-125m"]
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(RunsImportError, match="no .*files") as caught:
        fits.read_runs(tmp_path / "empty", metric=LOSS, tokens_per_step=1, source="tensorboard")
    assert caught.value.path.endswith("empty")
