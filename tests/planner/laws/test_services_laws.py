"""The laws selector: a family's law, backtest and interval from the database, and its cache."""
import uuid
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from django.conf import settings
from django.core.cache import caches

from fits.api import make_predictor
from fits.backtest import backtest_family
from fits.canonical import CANONICAL_COLUMNS
from fits.laws import TOKENS_ONLY
from planner.corpus.importing import import_canonical
from planner.models import Family
from planner.laws.services import family_fit_frame, family_law, family_law_and_plot_compute
from planner.corpus.stats import families_refresh_stats

pytestmark = pytest.mark.django_db

# The synthetic family's true law: L = E + A/N^alpha + B/D^beta.
TRUE = {"E": 1.7, "A": 400.0, "alpha": 0.34, "B": 410.0, "beta": 0.28}
SIZES = (2e7, 5e7, 1e8, 3e8, 1e9)


@pytest.fixture(autouse=True)
def own_cache(settings):
    """A fresh in-memory cache per test: no entry of another test (or the dev server's file cache) is seen."""
    settings.CACHES = {alias: {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                               "LOCATION": uuid.uuid4().hex} for alias in ("default", "laws")}
    yield
    caches["laws"].clear()


def law_loss(n, d):
    return TRUE["E"] + TRUE["A"] / n ** TRUE["alpha"] + TRUE["B"] / d ** TRUE["beta"]


def canonical_rows(family, sizes, *, arch="dec", noise=0.002, seed=0):
    """Canonical rows of a family that follows TRUE with a little multiplicative noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        for d in np.geomspace(1e8, 100 * n, 10):
            rows.append({"family": family, "model": f"{family}-{n:.0e}", "arch": arch, "params": int(n),
                         "tokens": float(f"{d:.6g}"), "metric": "val_loss",
                         "value": law_loss(n, d) * float(np.exp(rng.normal(0, noise))), "split": "validation",
                         "source": "synthetic"})
    frame = pd.DataFrame(rows)
    for col in CANONICAL_COLUMNS:
        if col not in frame:
            frame[col] = ""
    return frame[list(CANONICAL_COLUMNS)]


def import_families(*frames):
    """Import as the import commands do: the rows, then the statistics of the families touched."""
    import_canonical(pd.concat(frames, ignore_index=True))
    families_refresh_stats()


@pytest.fixture
def synthetic(db):
    import_families(canonical_rows("synthetic", SIZES), canonical_rows("single", (1e8,), seed=1),
                    canonical_rows("pair", (5e7, 2e8), seed=2, arch="ssm"))
    return Family.objects.get(name="synthetic")


def test_the_fit_frame_holds_the_primary_metric_of_every_run(synthetic):
    frame = family_fit_frame(synthetic)

    assert list(frame.columns) == ["family", "model", "params", "tokens", "value", "seed", "epochs"]
    assert len(frame) == 10 * len(SIZES)
    assert sorted(frame["params"].unique()) == list(SIZES)
    assert (frame["family"] == "synthetic").all()


def test_it_recovers_the_true_law_of_a_synthetic_family(synthetic):
    law = family_law(synthetic)["law"]

    assert law["available"] and law["success"]
    assert law["params"]["E"] == pytest.approx(TRUE["E"], rel=0.05)
    assert law["params"]["alpha"] == pytest.approx(TRUE["alpha"], abs=0.03)
    assert law["params"]["beta"] == pytest.approx(TRUE["beta"], abs=0.03)
    assert set(law["stderr"]) >= {"E", "A", "alpha", "B", "beta"}


def test_it_backtests_a_family_with_three_or_more_sizes(synthetic):
    result = family_law(synthetic)
    backtest = result["backtest"]

    # The law is the truth here, so it beats both naive baselines by far.
    assert backtest["available"]
    assert backtest["are"] < 0.01
    assert backtest["are"] < backtest["are_best_loss"] and backtest["are"] < backtest["are_most_compute"]
    assert backtest["scale_up"] == pytest.approx(1e9 / 3e8)
    # The same numbers as the library's protocol on the same frame.
    assert backtest["are"] == pytest.approx(backtest_family(family_fit_frame(synthetic), make_predictor()).are)


def test_the_interval_for_the_largest_size_covers_its_observed_loss(synthetic):
    interval = family_law(synthetic)["interval"]

    assert interval["available"]
    assert interval["coverage"] == 0.8
    assert interval["target_params"] == 1e9
    assert interval["target_tokens"] == pytest.approx(1e11)
    assert interval["lower"] < interval["prediction"] < interval["upper"]
    assert interval["actual_inside"]
    assert interval["relative_error"] < 0.02


def test_it_gives_a_reason_instead_of_a_backtest_for_one_size(synthetic):
    result = family_law(Family.objects.get(name="single"))

    # One size still gets a law (in tokens only), but nothing to extrapolate from.
    assert result["law"]["available"]
    assert result["law"]["law"] == TOKENS_ONLY.name and "alpha" not in result["law"]["params"]
    assert result["backtest"] == {"available": False, "reason": result["backtest"]["reason"]}
    assert "at least 3 sizes" in result["backtest"]["reason"] and "has 1" in result["backtest"]["reason"]
    assert not result["interval"]["available"] and "at least 2 sizes" in result["interval"]["reason"]


def test_two_sizes_get_an_interval_but_no_backtest(synthetic):
    result = family_law(Family.objects.get(name="pair"))

    assert not result["backtest"]["available"]
    assert result["interval"]["available"] and result["interval"]["target_params"] == 2e8


def test_a_family_without_its_primary_metric_is_unavailable_not_an_error(synthetic):
    family = Family.objects.create(name="empty", arch="dec", primary_metric="val_loss")

    result = family_law(family)

    for part in ("law", "backtest", "interval"):
        assert result[part]["available"] is False
        assert "no observations of its primary metric 'val_loss'" in result[part]["reason"]


def test_it_caches_the_law_until_the_family_statistics_change(synthetic, monkeypatch):
    first = family_law(synthetic)
    calls = []
    monkeypatch.setattr("planner.laws.services.family_law_and_plot_compute",
                        lambda family: calls.append(family) or family_law_and_plot_compute(family))

    assert family_law(Family.objects.get(pk=synthetic.pk)) == first
    assert calls == []

    # An import refreshes the statistics: the next read recomputes.
    Family.objects.filter(pk=synthetic.pk).update(stats_updated_at=synthetic.stats_updated_at + timedelta(seconds=1))
    second = family_law(Family.objects.get(pk=synthetic.pk))

    assert len(calls) == 1
    assert second["computed_at"] > first["computed_at"]


def test_changing_the_primary_metric_recomputes_the_law(synthetic):
    assert family_law(synthetic)["law"]["available"]
    synthetic.primary_metric = "train_loss"  # a curator's change, saved through the admin
    synthetic.save()

    result = family_law(Family.objects.get(pk=synthetic.pk))

    assert result["primary_metric"] == "train_loss"
    assert not result["law"]["available"]


def test_laws_are_cached_in_files_under_the_data_directory_by_default():
    from planner import settings as project_settings

    assert project_settings.CACHES["laws"]["BACKEND"] == "django.core.cache.backends.filebased.FileBasedCache"
    assert project_settings.CACHES["laws"]["LOCATION"] == str(project_settings.DATA_DIR / "cache")
    assert settings.CACHES["laws"]["BACKEND"].endswith("LocMemCache")  # this module's own, see own_cache


@pytest.mark.slow
def test_on_a_reference_family_it_matches_the_library_on_the_corpus_file(db):
    """OPT imported from ../shared: the database path gives the numbers fits gives on the CSV itself."""
    from fits.canonical import read_canonical, read_families
    from fits.data import load_primary

    corpus = settings.SCALEPLAN_SHARED_DIR / "corpus"
    rows, _ = read_canonical(corpus / "colpret.csv.gz")
    families = read_families(corpus / "families.csv")
    import_canonical(rows[rows["family"] == "OPT"].reset_index(drop=True),
                     families=families[families["family"] == "OPT"].reset_index(drop=True))
    families_refresh_stats()
    expected = load_primary(corpus / "colpret.csv.gz", corpus / "families.csv")
    expected = expected[expected["family"] == "OPT"]

    result = family_law(Family.objects.get(name="OPT"))

    assert result["data"]["n_rows"] == len(expected)
    assert result["backtest"]["are"] == pytest.approx(backtest_family(expected, make_predictor()).are, rel=1e-9)
    # The paper's point: a law fitted on the smaller sizes beats both naive baselines on OPT.
    assert result["backtest"]["are"] < min(result["backtest"]["are_best_loss"], result["backtest"]["are_most_compute"])
    assert result["interval"]["actual_inside"]


def test_the_plot_is_drawn_with_the_law_and_cached_with_it(synthetic, monkeypatch):
    from planner.laws import services

    family_law(synthetic)
    png = services.family_plot_png(synthetic)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

    def no_fit(*args, **kwargs):
        raise AssertionError("the cached plot must not be drawn again")

    monkeypatch.setattr(services, "fit", no_fit)
    monkeypatch.setattr(services, "fit_figure", no_fit)
    assert services.family_plot_png(Family.objects.get(pk=synthetic.pk)) == png
    # Evicted (or never computed): drawn again with the law, from one fit.
    monkeypatch.undo()
    caches["laws"].clear()
    assert services.family_plot_png(Family.objects.get(pk=synthetic.pk))[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_plot_legend_says_which_marks_are_data_and_which_the_law(synthetic):
    from fits import fit, fit_figure
    from planner.laws.services import _say_what_marks_are

    frame = family_fit_frame(synthetic)
    fitted = fit(frame)
    figure = fit_figure(frame, fitted.result, used=fitted.used_frame())
    _say_what_marks_are(figure)
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert labels[:2] == ["points = data (faded: not fitted)", "lines = law (fitted)"]
    assert "N=100M" in labels  # the sizes are still named


def test_a_law_that_misses_its_own_sizes_says_which(db):
    good = canonical_rows("good", SIZES)
    bad = canonical_rows("bad", SIZES)
    # The smallest size 30% above the law: no law of this form fits it with the other four.
    smallest = bad["params"] == int(SIZES[0])
    bad.loc[smallest, "value"] = bad.loc[smallest, "value"] * 1.3
    import_families(good, bad)
    law = family_law(Family.objects.get(name="good"))["law"]
    assert law["misfit"] == {"threshold": 0.05, "sizes": []}
    assert [round(s["params"]) for s in law["fit_by_size"]] == [int(n) for n in SIZES]
    missed = family_law(Family.objects.get(name="bad"))["law"]["misfit"]["sizes"]
    assert missed and all(s["mean_abs_log_residual"] > 0.05 for s in missed)


def test_the_stats_job_computes_the_laws_of_the_families_it_refreshed(synthetic):
    from planner.jobs.models import Job
    from planner.laws.services import cached_laws, laws_warm, stats_and_laws_run

    assert cached_laws(Family.objects.all()) == {}
    job = Job.objects.create(kind=Job.Kind.CORPUS_STATS, input={"families": ["synthetic", "pair"]})
    result = stats_and_laws_run(job=job, progress=lambda *a: None)
    assert result["families_refreshed"] == 2 and result["laws_computed"] == 2
    assert set(cached_laws(Family.objects.all())) == set(Family.objects.filter(
        name__in=["synthetic", "pair"]).values_list("pk", flat=True))
    # Laws cached for the families' current data are not computed again (a refresh moves the statistics'
    # stamp, and so the key: its laws are computed anew).
    assert laws_warm() == {"laws_computed": 1, "laws_cached_already": 2}
    assert laws_warm() == {"laws_computed": 0, "laws_cached_already": 3}
