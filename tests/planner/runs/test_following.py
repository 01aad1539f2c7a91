"""Predictions that follow training: updates as linked predictions, and the histories the runner stores."""
import pytest

from planner.jobs.models import Job
from planner.predictions.services import PredictionInputError, prediction_enqueue, prediction_run
from planner.runs.following import (
    follows_training,
    merged_runs,
    prediction_followed_run,
    prediction_update_enqueue,
    tracker_defaults,
)
from tests.planner.plans.test_plans import error_model  # noqa: F401 (fixture)
from tests.planner.predictions.test_predictions import synthetic_runs
from tests.planner.runs.conftest import PLANNED, TARGET, in_progress

pytestmark = pytest.mark.django_db


def finished(job: Job, runner=prediction_followed_run) -> dict:
    seen = []
    result = runner(job=job, progress=lambda fraction, message="": seen.append((fraction, message)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and seen[-1][1] == "done"
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, result=result, progress=1.0)
    job.refresh_from_db()
    return result


# --- merging an update ---------------------------------------------------------------------


def test_posted_rows_are_added_or_replace_the_same_checkpoint_and_the_newest_plan_wins():
    previous = [{"model": "a", "params": 1e8, "tokens": 1e9, "value": 3.0, "seed": ""},
                {"model": "a", "params": 1e8, "tokens": 2e9, "value": 2.9, "seed": "", "run_tokens": 4e9}]
    posted = [{"model": "a", "params": 1e8, "tokens": 2e9, "value": 2.8, "seed": "", "run_tokens": 8e9},
              {"model": "a", "params": 1e8, "tokens": 1e9, "value": 3.0, "seed": ""},
              {"model": "b", "params": 3e8, "tokens": 1e9, "value": 2.7, "seed": "1"}]

    runs, change = merged_runs(previous, posted)

    assert [(r["model"], r["tokens"], r["value"], r.get("run_tokens")) for r in runs] == [
        ("a", 1e9, 3.0, 8e9), ("a", 2e9, 2.8, 8e9), ("b", 1e9, 2.7, None)]
    assert change == {"rows_posted": 3, "rows_added": 1, "rows_replaced": 1, "rows_unchanged": 1,
                      "runs_new": ["b seed 1"], "runs_replanned": 1}
    assert previous[1]["value"] == 2.9  # the previous prediction's runs are not touched


def test_an_update_is_a_new_prediction_linked_to_the_previous_with_its_target(owner):
    first = prediction_enqueue(runs=in_progress(6e9), coverage=0.9, created_by=owner, **TARGET)
    second = prediction_update_enqueue(previous=first, runs=in_progress(1.2e10), created_by=owner)
    third = prediction_update_enqueue(previous=second, runs=in_progress(2e10), created_by=owner)

    assert (third.kind, third.status, third.created_by) == ("prediction", "queued", owner)
    assert third.input["follows"] == second.pk and third.input["snapshots"] == [first.pk, second.pk]
    assert (third.input["target_params"], third.input["target_tokens"], third.input["coverage"]) == (3e10, 2e11, 0.9)
    assert len(third.input["runs"]) == len(in_progress(2e10))
    assert third.input["update"]["rows_added"] == len(in_progress(2e10)) - len(in_progress(1.2e10))
    first.refresh_from_db()
    assert len(first.input["runs"]) == len(in_progress(6e9))


def test_an_update_with_nothing_new_is_refused_and_creates_nothing(owner):
    first = prediction_enqueue(runs=in_progress(6e9), coverage=0.8, created_by=owner, **TARGET)
    with pytest.raises(PredictionInputError) as caught:
        prediction_update_enqueue(previous=first, runs=in_progress(4e9), field="file", created_by=owner)
    assert caught.value.field == "file"
    assert str(caught.value).startswith(f"Nothing new: all {len(in_progress(4e9))} posted checkpoints are already "
                                        f"in prediction {first.pk}")
    assert Job.objects.count() == 1


def test_an_update_that_changes_a_runs_size_is_refused_by_the_runs_rules(owner):
    first = prediction_enqueue(runs=in_progress(6e9), coverage=0.8, created_by=owner, **TARGET)
    bad = [{**r, "params": 2e8} for r in in_progress(1.2e10) if r["tokens"] > 6e9][:1]
    with pytest.raises(PredictionInputError, match="params"):
        prediction_update_enqueue(previous=first, runs=bad, created_by=owner)
    assert Job.objects.count() == 1


def test_the_chain_keeps_at_most_eleven_earlier_predictions(owner):
    job = prediction_enqueue(runs=in_progress(2e9), coverage=0.8, created_by=owner, **TARGET)
    ids = [job.pk]
    for i in range(12):
        job = prediction_update_enqueue(previous=job, runs=[{**in_progress(2e9)[0], "value": 3.5 + i / 100}])
        ids.append(job.pk)
    assert job.input["snapshots"] == ids[-12:-1]


# --- the runner --------------------------------------------------------------------------------


def test_a_prediction_of_finished_runs_is_planner_predictions_own():
    runs = synthetic_runs()
    assert not follows_training({"runs": runs})
    job = prediction_enqueue(runs=runs, coverage=0.8, **TARGET)
    result = finished(job)
    assert "history" not in result and result.keys() == prediction_run(job=job, progress=lambda *a: None).keys()


def test_runs_in_progress_get_the_prediction_replayed_as_they_advanced():
    job = prediction_enqueue(runs=in_progress(1.2e10), coverage=0.8, **TARGET)
    result = finished(job)

    history = result["history"]
    assert history["axis"] == "share" and history["interval"] == "bootstrap"
    assert history["target"] == {"params": 3e10, "tokens": 2e11}
    table = history["history"]
    seen = max(r["tokens"] for r in in_progress(1.2e10))
    assert 3 <= len(table) <= 8 and table[-1]["share_seen"] == pytest.approx(seen / PLANNED)
    assert table[-1]["prediction"] == pytest.approx(result["prediction"], rel=0.02)
    assert all(row["lower"] < row["prediction"] < row["upper"] for row in table if not row["error"])
    assert history["message"] and history["error_model_version"] is None
    assert "uploads_history" not in result


def test_with_an_error_model_the_history_takes_its_intervals_from_it(error_model):
    job = prediction_enqueue(runs=in_progress(1.2e10), coverage=0.8, **TARGET)
    history = finished(job)["history"]
    assert history["interval"] == "error model" and history["error_model_version"] == error_model.version
    assert history["n_boot"] == 0


def test_an_update_gets_the_history_of_the_chain_from_each_predictions_runs(owner):
    first = prediction_enqueue(runs=in_progress(6e9), coverage=0.8, created_by=owner, **TARGET)
    second = prediction_update_enqueue(previous=first, runs=in_progress(1.2e10))
    third = prediction_update_enqueue(previous=second, runs=in_progress(2e10))

    uploads = finished(third)["uploads_history"]

    assert uploads["axis"] == "snapshot" and uploads["jobs"] == [first.pk, second.pk, third.pk]
    assert [row["as_of"] for row in uploads["history"]] == [f"#{first.pk}", f"#{second.pk}", f"#{third.pk}"]
    assert [row["n_checkpoints"] for row in uploads["history"]] == [
        len(in_progress(6e9)), len(in_progress(1.2e10)), len(in_progress(2e10))]
    assert uploads["missing"] == [] and uploads["stopped_narrowing"] in (True, False)


def test_a_deleted_prediction_of_the_chain_is_left_out_and_named(owner):
    first = prediction_enqueue(runs=in_progress(6e9), coverage=0.8, created_by=owner, **TARGET)
    second = prediction_update_enqueue(previous=first, runs=in_progress(1.2e10))
    first_pk = first.pk
    first.delete()
    uploads = finished(second)["uploads_history"]
    assert uploads["missing"] == [first_pk] and uploads["jobs"] == [second.pk]


def test_the_update_defaults_come_from_the_newest_import_of_the_chain(owner):
    tracker = {"options": {"metric": "train/loss"}, "params": {"a": {"params": 100}}, "report": {}}
    first = prediction_enqueue(runs=in_progress(6e9), coverage=0.8, source={"tracker": tracker}, **TARGET)
    second = prediction_update_enqueue(previous=first, runs=in_progress(1.2e10))
    assert tracker_defaults(second) == {"options": tracker["options"], "params": tracker["params"], "job": first.pk}
    assert tracker_defaults(first)["job"] == first.pk
    plain = prediction_enqueue(runs=in_progress(6e9), coverage=0.8, **TARGET)
    assert tracker_defaults(plain) is None
