"""import_canonical (planner.corpus.importing): atomic, idempotent, replace, skip-invalid, conflicts, primary metric."""
import io
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction

from fits import choose_primary_metric, is_loss_metric
from fits.canonical import CANONICAL_COLUMNS, CorpusValidationError, read_canonical, read_families
from planner.corpus.importing import ImportReport, import_canonical
from planner.models import Family, Observation, Run

HEADER = ",".join(CANONICAL_COLUMNS)
ROWS = [
    "tiny,tiny-10m,dec,10000000,1e9,100,0,pile,0.1,,val_loss,4.0,validation,paper",
    "tiny,tiny-10m,dec,10000000,2e9,200,0,pile,0.2,,val_loss,3.5,validation,paper",
    "tiny,tiny-10m,dec,10000000,2e9,200,0,pile,0.2,,train_loss,3.4,train,paper",
    "tiny,tiny-50m,dec,50000000,1e9,100,0,pile,0.1,3e17,val_loss,3.6,validation,paper",
    "tiny,tiny-50m,dec,50000000,1e9,100,1,pile,0.1,,val_loss,3.61,validation,paper",
    "big,big-1b,moe,1000000000,2e10,,,c4,,,loss,2.5,,other",
]


def csv_file(*rows):
    return io.StringIO("\n".join([HEADER, *rows]) + "\n")


def corpus_state():
    return sorted(
        Observation.objects.values_list("run__family__name", "run__name", "run__seed", "metric", "tokens", "value",
                                        "step", "epochs", "flops", "split", "dataset", "source")
    )


@pytest.fixture
def imported(db):
    return import_canonical(csv_file(*ROWS))


def test_it_creates_families_runs_and_observations(imported):
    assert isinstance(imported, ImportReport)
    assert (imported.rows_read, imported.rows_inserted, imported.families_created, imported.runs_created) == (6, 6, 2, 4)
    assert imported.families == ["big", "tiny"]
    run = Run.objects.get(name="tiny-50m", seed="0")
    assert (run.family.name, run.arch, run.params) == ("tiny", "dec", 50_000_000)
    obs = Observation.objects.get(run=run)
    assert (obs.tokens, obs.value, obs.step, obs.epochs, obs.flops, obs.split, obs.dataset, obs.source) == (
        1e9, 3.6, 100, 0.1, 3e17, "validation", "pile", "paper")
    big = Observation.objects.get(run__name="big-1b")
    assert big.step is None and big.epochs is None and big.flops is None and big.split == ""
    assert Family.objects.get(name="big").arch == "moe"


def test_it_is_idempotent(imported):
    before = corpus_state()
    again = import_canonical(csv_file(*ROWS))
    assert (again.rows_inserted, again.rows_unchanged, again.rows_replaced) == (0, 6, 0)
    assert (again.families_created, again.runs_created) == (0, 0)
    assert corpus_state() == before


def test_it_writes_nothing_when_one_row_is_bad(db):
    with pytest.raises(CorpusValidationError) as info:
        import_canonical(csv_file(*ROWS, "tiny,tiny-1m,dec,1000000,-1,,,,,,val_loss,5,validation,x"))
    assert [(p.line, p.column) for p in info.value.problems] == [(8, "tokens")]
    assert not Family.objects.exists() and not Run.objects.exists() and not Observation.objects.exists()


def test_it_leaves_the_corpus_unchanged_when_a_later_import_fails(imported):
    before = corpus_state()
    with pytest.raises(CorpusValidationError):
        import_canonical(csv_file("new,new-1m,dec,1000000,1e9,,,,,,loss,3,,x", "new,new-2m,dec,0,1e9,,,,,,loss,3,,x"))
    assert corpus_state() == before and not Family.objects.filter(name="new").exists()


def test_it_rejects_a_different_value_for_a_stored_observation(imported):
    before = corpus_state()
    with pytest.raises(CorpusValidationError) as info:
        import_canonical(csv_file(ROWS[0].replace(",4.0,", ",4.1,")))
    problem = info.value.problems[0]
    assert (problem.line, problem.column) == (2, "value")
    assert "4.0" in problem.reason and "4.1" in problem.reason and "replace" in problem.reason
    assert corpus_state() == before


def test_replace_overwrites_value_and_metadata(imported):
    report = import_canonical(csv_file(ROWS[0].replace(",4.0,", ",4.1,").replace(",100,", ",101,"), ROWS[1]),
                              replace=True)
    assert (report.rows_replaced, report.rows_unchanged, report.rows_inserted) == (1, 1, 0)
    obs = Observation.objects.get(run__name="tiny-10m", metric="val_loss", tokens=1e9)
    assert (obs.value, obs.step) == (4.1, 101)
    assert Observation.objects.count() == 6


def test_without_replace_a_matching_value_keeps_stored_metadata(imported):
    report = import_canonical(csv_file(ROWS[0].replace(",pile,", ",other-data,")))
    assert report.rows_unchanged == 1
    assert Observation.objects.get(run__name="tiny-10m", metric="val_loss", tokens=1e9).dataset == "pile"


@pytest.mark.parametrize("column,change", [
    ("family", ("tiny,tiny-10m", "big,tiny-10m")),
    ("params", (",10000000,", ",20000000,")),
    ("arch", (",dec,", ",moe,")),
])
def test_it_rejects_a_row_that_changes_a_stored_run(imported, column, change):
    row = ROWS[0].replace("1e9", "8e9").replace(*change)
    with pytest.raises(CorpusValidationError) as info:
        import_canonical(csv_file(row), replace=True)
    assert [(p.line, p.column) for p in info.value.problems] == [(2, column)]
    assert "tiny-10m" in info.value.problems[0].reason
    assert not Observation.objects.filter(tokens=8e9).exists()


def test_skip_invalid_writes_good_rows_and_reports_the_rest(imported):
    report = import_canonical(
        csv_file(
            "tiny,tiny-10m,dec,10000000,4e9,400,0,pile,0.4,,val_loss,3.2,validation,paper",  # new, good
            ROWS[0].replace(",4.0,", ",9.9,"),  # conflicts with the database
            "tiny,tiny-2m,dec,2.5,1e9,,0,,,,val_loss,5,validation,x",  # params not an integer
            ROWS[1],  # unchanged
        ),
        skip_invalid=True,
    )
    assert (report.rows_read, report.rows_inserted, report.rows_unchanged, report.rows_skipped) == (4, 1, 1, 2)
    assert [(p.line, p.column) for p in report.problems] == [(3, "value"), (4, "params")]
    assert Observation.objects.filter(run__name="tiny-10m", tokens=4e9).exists()
    assert Observation.objects.get(run__name="tiny-10m", metric="val_loss", tokens=1e9).value == 4.0
    assert not Run.objects.filter(name="tiny-2m").exists()
    data = report.to_dict()
    assert data["problems"][0] == {"line": 3, "column": "value", "reason": report.problems[0].reason}


def test_it_accepts_a_dataframe(db):
    frame, _ = read_canonical(csv_file(*ROWS))
    report = import_canonical(frame.drop(columns="line"))
    assert report.rows_inserted == 6
    assert Observation.objects.get(run__name="big-1b").value == 2.5


def test_it_reports_progress(db):
    calls = []
    import_canonical(csv_file(*ROWS), progress=lambda fraction, message: calls.append((fraction, message)))
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[0] == 0 and fractions[-1] == 1


def test_it_chooses_validation_loss_over_training_loss(imported):
    assert Family.objects.get(name="tiny").primary_metric == "val_loss"
    assert Family.objects.get(name="big").primary_metric == "loss"


def _rows(*specs):
    return pd.DataFrame([{"model": m, "metric": metric, "split": split, "value": 1.0} for m, metric, split in specs])


def test_primary_metric_is_never_an_accuracy_when_a_loss_exists():
    rows = _rows(*[("a", "accuracy", "validation")] * 5, *[("b", "acc", "validation")] * 5,
                 ("a", "train_loss", "train"), ("a", "val_bpb", "validation"), ("a", "lambada_err", "validation"))
    assert choose_primary_metric(rows) == "train_loss"
    assert [is_loss_metric(m) for m in ("val_loss", "val_loss_acc", "bpb", "CrossEntropyLoss", "log_perplexity")] == [
        True, False, False, True, True]


def test_primary_metric_prefers_the_metric_shared_by_most_runs():
    rows = _rows(("a", "a_val_loss", "validation"), ("a", "a_val_loss", "validation"),
                 ("a", "train_loss", "train"), ("b", "train_loss", "train"))
    assert choose_primary_metric(rows) == "train_loss"


def test_primary_metric_is_empty_without_any_loss():
    assert choose_primary_metric(_rows(("a", "accuracy", "validation"))) == ""


def test_the_families_file_sets_family_fields(db):
    families = read_families(io.StringIO(
        "family,arch,dataset,primary_metric,source,notes\ntiny,dec,The Pile,train_loss,Someone+24,curated\n"))
    import_canonical(csv_file(*ROWS), families=families)
    tiny = Family.objects.get(name="tiny")
    assert (tiny.primary_metric, tiny.dataset, tiny.source, tiny.notes) == ("train_loss", "The Pile", "Someone+24",
                                                                           "curated")


def test_a_reimport_keeps_a_curated_primary_metric(imported):
    Family.objects.filter(name="tiny").update(primary_metric="train_loss")
    import_canonical(csv_file(*ROWS))
    assert Family.objects.get(name="tiny").primary_metric == "train_loss"


def test_the_command_imports_and_prints_the_report(db, tmp_path, capsys):
    path = tmp_path / "c.csv"
    path.write_text(csv_file(*ROWS).getvalue())
    call_command("import_corpus", str(path))
    out = capsys.readouterr().out
    assert "6 rows read: 6 inserted" in out
    assert Family.objects.get(name="tiny").stats["n_runs"] == 3


def test_the_command_fails_with_the_problems_and_writes_nothing(db, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(csv_file(ROWS[0], ROWS[1].replace("val_loss", "")).getvalue())
    with pytest.raises(CommandError) as info:
        call_command("import_corpus", str(path))
    assert "line 3, column 'metric'" in str(info.value)
    assert not Observation.objects.exists()


def test_the_command_skips_invalid_rows_when_asked(db, tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text(csv_file(ROWS[0], ROWS[1].replace("val_loss", "")).getvalue())
    call_command("import_corpus", str(path), "--skip-invalid")
    out = capsys.readouterr().out
    assert "skipped: line 3, column 'metric'" in out and Observation.objects.count() == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_reference_corpus_imports_with_the_expected_counts():
    path = Path(settings.SCALEPLAN_SHARED_DIR) / "corpus" / "colpret.csv.gz"
    families = read_families(Path(settings.SCALEPLAN_SHARED_DIR) / "corpus" / "families.csv")
    report = import_canonical(path, families=families)
    assert (report.rows_read, report.rows_inserted, report.runs_created, report.families_created) == (
        199_499, 199_499, 817, 88)
    assert (Observation.objects.count(), Run.objects.count(), Family.objects.count()) == (199_499, 817, 88)
    expected = families.set_index("family")["primary_metric"].to_dict()
    assert dict(Family.objects.values_list("name", "primary_metric")) == expected
    again = import_canonical(path)
    assert (again.rows_inserted, again.rows_unchanged) == (0, 199_499)


def test_a_failure_while_writing_rolls_back_families_and_runs(db, monkeypatch):
    import planner.corpus.importing as importing

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(importing, "_write_postgresql", fail)
    monkeypatch.setattr(importing, "_write_other", fail)
    with pytest.raises(RuntimeError):
        import_canonical(csv_file(*ROWS))
    assert not Family.objects.exists() and not Run.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the bulk path is PostgreSQL's")
def test_a_bulk_load_keeps_the_run_foreign_key(db, monkeypatch):
    import planner.corpus.importing as importing

    monkeypatch.setattr(importing, "_BULK_MIN_ROWS", 1)
    monkeypatch.setattr(importing, "_BULK_MIN_SHARE", 0.0)
    report = import_canonical(csv_file(*ROWS))
    assert report.rows_inserted == 6 and Observation.objects.count() == 6
    with connection.cursor() as cursor:
        assert importing._run_foreign_key(cursor) is not None
    # The restored constraint still guards the table.
    with pytest.raises(IntegrityError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(
                f"INSERT INTO {Observation._meta.db_table} (run_id, tokens, metric, value, split, dataset, source) "
                "VALUES (999999999, 1, 'x', 1, '', '', '')"
            )


# --- the database connection lost mid-import (a real worker, a real PostgreSQL backend killed) ---------------

APP_NAME = "scaleplan-test-import-fault"


def terminate_copy_backend(timeout=60):
    """pg_terminate_backend on the worker's backend of this test database while it COPYs observations.

    Only backends of the test database under this test's application_name are candidates, never
    this process's own, so nobody else's connection is touched.
    """
    import time

    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = %s AND pid <> pg_backend_pid() AND state = 'active' "
                "AND query ILIKE 'COPY planner_observation%%'", [APP_NAME])
            if cursor.fetchall():
                return
            time.sleep(0.02)
    raise AssertionError(f"no COPY into planner_observation by {APP_NAME} within {timeout} s")


@pytest.mark.worker
@pytest.mark.slow
def test_an_import_whose_database_connection_is_killed_writes_nothing_fails_clearly_and_can_be_run_again(
        celery_workers, settings):
    import gzip
    import shutil

    from planner.models import Job
    from planner.corpus.services import corpus_import_run  # noqa: F401 (the job under test)
    from planner.jobs.tasks import run_job
    from tests.conftest import _database_url, wait_for_job

    source = settings.SCALEPLAN_SHARED_DIR / "corpus" / "colpret.csv.gz"
    if not source.is_file():
        pytest.skip(f"reference corpus not found at {source}")
    with gzip.open(source, "rt") as f:
        rows_in_file = sum(1 for _ in f) - 1

    def import_job():
        upload = settings.DATA_DIR / "uploads" / f"colpret-{Job.objects.count()}.csv.gz"
        upload.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, upload)  # a copy in the test's own directory: the corpus is never changed
        return Job.objects.create(kind=Job.Kind.CORPUS_IMPORT, input={"path": str(upload), "filename": "colpret.csv.gz",
                                                                       "size": upload.stat().st_size})

    worker = celery_workers("worker1", DATABASE_URL=f"{_database_url()}?application_name={APP_NAME}")
    first = import_job()
    run_job.apply_async(args=[first.pk])
    terminate_copy_backend()
    first = wait_for_job(first.pk, timeout=60)

    assert first.status == "failed", (first.status, worker.log())
    assert first.error.startswith("The database connection was lost during the import"), first.error + worker.log()
    assert "nothing of this file was written" in first.error and "Upload it again" in first.error
    assert (Family.objects.count(), Run.objects.count(), Observation.objects.count()) == (0, 0, 0)

    again = import_job()
    run_job.apply_async(args=[again.pk])
    again = wait_for_job(again.pk, timeout=120)
    assert again.status == "succeeded", (again.error, worker.log())
    report = again.result["import"]
    assert report["rows_read"] == rows_in_file
    assert Observation.objects.count() == report["rows_inserted"] == rows_in_file - report["rows_unchanged"]
    assert Family.objects.count() == len(report["families"]) > 30


@pytest.mark.parametrize(("error", "lost"), [
    (psycopg.OperationalError("server closed the connection unexpectedly"), True),  # no SQLSTATE: the socket
    (psycopg.errors.AdminShutdown("terminating connection due to administrator command"), True),  # 57P01
    (psycopg.errors.ConnectionFailure("connection failure"), True),  # class 08
    (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), False),  # 57014
    (psycopg.errors.LockNotAvailable("could not obtain lock"), False),  # 55P03
])
def test_only_a_lost_connection_is_reported_as_one(error, lost):
    from django.db import OperationalError

    from planner.corpus.importing import _is_connection_loss

    assert _is_connection_loss(error) is lost
    wrapped = OperationalError(str(error))
    wrapped.__cause__ = error  # as Django's wrap_database_errors raises it
    assert _is_connection_loss(wrapped) is lost
