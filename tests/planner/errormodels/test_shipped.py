"""The error model shipped in the repository, its corpus fingerprint, and what a starting server does with them
(planner.errormodels.shipped, manage.py ensure_error_model and ship_error_model)."""
import json

import pytest
from django.conf import settings
from django.core.management import call_command

from fits import ErrorModel, PlanRequest, recommend
from planner.corpus.selectors import primary_frame
from planner.errormodels import shipped as shipped_module
from planner.errormodels.fingerprint import corpus_fingerprint
from planner.errormodels.services import error_model_active, error_model_store, sweep_run
from planner.errormodels.shipped import (SHIPPED_MODEL, database_fingerprint, error_model_ensure,
                                         files_fingerprint, shipped)
from planner.jobs.services import JobHandedOff
from planner.models import Job
from tests.planner.errormodels.test_sweeps import import_small_families

SHARED_CORPUS = [settings.SCALEPLAN_SHARED_DIR / "corpus" / "colpret.csv.gz",
                 settings.SCALEPLAN_SHARED_DIR / "corpus" / "extra" / "observations.csv.gz"]


def _require_shared_corpus():
    missing = [p for p in SHARED_CORPUS if not p.exists()]
    if missing:
        pytest.skip(f"shipped corpus not found: {missing}")


# --- the shipped files -------------------------------------------------------------------------


def test_the_shipped_error_model_is_read_by_this_library_and_plans():
    """A model of a format the library no longer reads fails here: remake it with manage.py ship_error_model."""
    model, about = shipped()
    parsed = ErrorModel.from_dict(model)
    plan = recommend(parsed, PlanRequest(target_params=7e9, target_tokens=1.4e11, budget_fraction=0.05)).to_dict()
    assert plan["recommended"]["models"] and plan["naive"] and plan["alternatives"]
    assert SHIPPED_MODEL.stat().st_size < 100_000  # a model, not corpus data
    assert set(about["fingerprint"]) == {"version", "families", "runs", "observations", "sha256"}


@pytest.mark.slow
def test_the_shipped_fingerprint_is_the_shipped_corpus():
    """The corpus under ../shared/corpus changed: remake the shipped model (manage.py ship_error_model)."""
    _require_shared_corpus()
    _, about = shipped()
    assert files_fingerprint(SHARED_CORPUS) == about["fingerprint"]


# --- the fingerprint ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_database_and_the_files_it_was_imported_from_have_one_fingerprint(small_corpus_csv, tmp_path):
    from fits import load_primary
    from planner.corpus.importing import import_canonical

    import_canonical(small_corpus_csv)
    from_db = database_fingerprint()
    assert from_db["observations"] > 0
    assert from_db == corpus_fingerprint(load_primary(small_corpus_csv)) == files_fingerprint([small_corpus_csv])


def test_the_fingerprint_ignores_row_order_but_not_a_value():
    frame = primary_frame_like()
    shuffled = frame.sample(frac=1, random_state=0)
    assert corpus_fingerprint(shuffled) == corpus_fingerprint(frame)
    changed = frame.copy()
    changed.loc[changed.index[0], "value"] += 1e-6
    assert corpus_fingerprint(changed)["sha256"] != corpus_fingerprint(frame)["sha256"]
    assert corpus_fingerprint(frame.iloc[1:])["observations"] == len(frame) - 1


def primary_frame_like():
    import pandas as pd

    return pd.DataFrame({"family": ["a", "a", "b"], "model": ["a1", "a1", "b1"], "seed": ["", "", "0"],
                         "params": [1e8, 1e8, 2e8], "tokens": [1e9, 2e9, 1e9], "value": [3.1, 2.9, 3.0],
                         "epochs": [float("nan")] * 3})


# --- at start ----------------------------------------------------------------------------------


@pytest.fixture
def no_enqueue(monkeypatch):
    from planner.jobs import services as jobs

    sent = []
    monkeypatch.setattr(jobs, "_enqueue", sent.append)
    return sent


@pytest.mark.django_db
def test_with_no_corpus_it_does_nothing():
    assert error_model_ensure() == "error model: no corpus loaded, nothing to build one from"
    assert not Job.objects.exists() and error_model_active() is None


@pytest.mark.django_db(transaction=True)
def test_the_shipped_corpus_without_a_model_gets_the_shipped_model_at_once(no_enqueue, monkeypatch):
    import_small_families()
    fingerprint = database_fingerprint()
    monkeypatch.setattr(shipped_module, "shipped", lambda: (json.loads(SHIPPED_MODEL.read_text()),
                                                             {"fingerprint": fingerprint}))
    said = error_model_ensure()
    assert said.startswith("error model: loaded the shipped one as v1"), said
    active = error_model_active()
    assert active.model == json.loads(SHIPPED_MODEL.read_text()) and active.corpus_fingerprint == fingerprint
    assert not Job.objects.exists()
    # The next start finds it active and built from this corpus: nothing to do.
    assert error_model_ensure() == "error model: v1 is active, built from this corpus"


@pytest.mark.django_db(transaction=True)
def test_another_corpus_without_a_model_queues_a_rebuild_once(no_enqueue, django_capture_on_commit_callbacks):
    import_small_families()  # not the shipped corpus
    with django_capture_on_commit_callbacks(execute=True):
        said = error_model_ensure()
    job = Job.objects.get()
    assert (job.kind, job.status, job.input) == ("sweep", "queued", {"families": None}) and no_enqueue == [job.pk]
    assert "not the one the shipped model was built from" in said and f"queued a rebuild (sweep job {job.pk})" in said
    assert error_model_active() is None
    assert error_model_ensure().endswith(f"a rebuild is already queued (job {job.pk})")
    assert Job.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_active_model_of_a_changed_corpus_is_rebuilt_one_of_this_corpus_is_kept(no_enqueue):
    import_small_families()
    model = json.loads(SHIPPED_MODEL.read_text())
    error_model_store(model=model, corpus_fingerprint={**database_fingerprint(), "sha256": "0" * 64})
    said = error_model_ensure()
    assert "the corpus has changed since v1 was built; queued a rebuild" in said
    Job.objects.all().delete()
    error_model_store(model=model, corpus_fingerprint=database_fingerprint())
    assert error_model_ensure() == "error model: v2 is active, built from this corpus"
    error_model_store(model=model)  # loaded by hand (load_error_model): its corpus is not known, it is kept
    assert error_model_ensure() == "error model: v3 is active, built elsewhere (its corpus is not recorded)"
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_too_small_a_corpus_is_not_rebuilt(corpus, no_enqueue):
    said = error_model_ensure()
    assert "not rebuilding: an error model needs 3 families with 3 or more sizes, the corpus has 0" in said
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_sweep_over_the_whole_corpus_records_its_fingerprint_on_the_job(no_enqueue, monkeypatch):
    from planner.jobs import dispatch

    monkeypatch.setattr(dispatch, "sweep_family_send", lambda *a, **kw: None)
    monkeypatch.setattr(dispatch, "sweep_finalise_send", lambda *a, **kw: None)
    import_small_families()
    job = Job.objects.create(kind=Job.Kind.SWEEP, status=Job.Status.RUNNING, input={"families": None})
    with pytest.raises(JobHandedOff):
        sweep_run(job=job, progress=lambda *a: None)
    job.refresh_from_db()
    assert job.result["corpus_fingerprint"] == corpus_fingerprint(primary_frame())


@pytest.mark.django_db
def test_the_command_says_what_it_did(capsys):
    call_command("ensure_error_model")
    assert "no corpus loaded" in capsys.readouterr().out
