"""manage.py refresh_stats."""
import pytest
from django.core.management import CommandError, call_command

from planner.models import Family, Job

pytestmark = pytest.mark.django_db


def test_it_refreshes_every_family_by_default(corpus, capsys):
    call_command("refresh_stats")
    assert "refreshed statistics of 2 families" in capsys.readouterr().out
    assert all(f.stats["version"] == 1 and f.stats_updated_at for f in Family.objects.all())


def test_it_refreshes_only_the_named_families(corpus):
    call_command("refresh_stats", "--family", "tiny")
    assert Family.objects.get(name="tiny").stats["n_runs"] == 3
    assert Family.objects.get(name="other").stats == {}


def test_it_rejects_unknown_family_names(corpus):
    with pytest.raises(CommandError, match="unknown families: nope"):
        call_command("refresh_stats", "--family", "tiny", "--family", "nope")
    assert Family.objects.get(name="tiny").stats == {}


def test_async_queues_a_stats_job_instead(corpus, capsys, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        call_command("refresh_stats", "--async", "--family", "tiny")
    job = Job.objects.get()
    assert (job.kind, job.status, job.input) == ("corpus_stats", "queued", {"families": ["tiny"]})
    assert len(callbacks) == 1
    assert f"queued job {job.pk}" in capsys.readouterr().out
    assert Family.objects.get(name="tiny").stats == {}
