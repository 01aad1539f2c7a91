"""Per-family summary statistics (planner.corpus.stats)."""
import pytest

from planner.models import Family, Observation, Run
from planner.corpus.stats import FAMILY_STATS_VERSION, families_refresh_stats, family_stats_compute

pytestmark = pytest.mark.django_db


def test_it_computes_the_summary_the_admin_and_api_show(corpus):
    stats = family_stats_compute(corpus["tiny"])
    assert stats == {
        "version": FAMILY_STATS_VERSION,
        "n_runs": 3,
        "n_sizes": 2,
        "sizes": [10_000_000, 50_000_000],
        "min_params": 10_000_000,
        "max_params": 50_000_000,
        "n_observations": 7,
        "n_primary_observations": 6,
        "tokens_min": 1e9,
        "tokens_max": 4e9,
        # val_loss checkpoints: tiny-10m 3, tiny-50m 2, tiny-50m seed 1: 1
        "checkpoints_per_run": {"min": 1, "median": 2.0, "max": 3},
        "primary_metric": "val_loss",
        "primary_min": 2.9,
        "primary_max": 4.0,
        "metrics": ["train_loss", "val_loss"],
    }


def test_it_counts_runs_without_primary_observations_as_zero_checkpoints(corpus):
    run = Run.objects.create(family=corpus["tiny"], name="tiny-90m", arch="dec", params=90_000_000)
    Observation.objects.create(run=run, tokens=1e9, metric="train_loss", value=3.0)
    stats = family_stats_compute(corpus["tiny"])
    assert stats["checkpoints_per_run"] == {"min": 0, "median": 1.5, "max": 3}
    assert stats["n_sizes"] == 3


def test_it_reports_no_primary_range_without_a_primary_metric(corpus):
    family = corpus["tiny"]
    family.primary_metric = ""
    stats = family_stats_compute(family)
    assert stats["n_primary_observations"] == 0
    assert stats["primary_min"] is None and stats["primary_max"] is None
    assert stats["n_observations"] == 7


def test_it_summarises_an_empty_family_without_failing(db):
    stats = family_stats_compute(Family.objects.create(name="empty"))
    assert stats["n_runs"] == 0 and stats["sizes"] == [] and stats["min_params"] is None
    assert stats["checkpoints_per_run"] == {"min": None, "median": None, "max": None}


def test_refresh_writes_stats_and_timestamp_for_the_chosen_families_only(corpus):
    result = families_refresh_stats(family_ids=[corpus["other"].pk])
    assert result == {"families_refreshed": 1, "families": ["other"]}
    other, tiny = Family.objects.get(name="other"), Family.objects.get(name="tiny")
    assert other.stats["n_runs"] == 1 and other.stats_updated_at is not None
    assert tiny.stats == {} and tiny.stats_updated_at is None


def test_refresh_reports_progress_up_to_one_and_can_be_stopped(corpus):
    seen = []
    families_refresh_stats(progress=lambda f, m: seen.append((f, m)))
    assert [f for f, _ in seen] == [0.0, 0.5, 1.0]
    assert "other" in seen[0][1]

    def stop(fraction, message):
        if fraction > 0:
            raise KeyboardInterrupt

    Family.objects.update(stats={})
    with pytest.raises(KeyboardInterrupt):
        families_refresh_stats(progress=stop)
    # The first family was saved before the stop; the second was not.
    assert Family.objects.get(name="other").stats["n_runs"] == 1
    assert Family.objects.get(name="tiny").stats == {}
