"""The one primary-metric rule (fits.choose_primary_metric / primary_metrics), used by the importer,
predictions and the CLI: a loss, never a score; the most runs; validation over training; the densest curve."""
import pandas as pd
import pytest

from fits import choose_primary_metric, is_loss_metric, primary_metrics, primary_observations
from fits.canonical import read_canonical, read_families
from tests.fits.conftest import CORPUS


def _rows(*specs, family="f"):
    return pd.DataFrame([{"family": family, "model": m, "metric": metric, "split": split}
                         for m, metric, split in specs])


def test_a_perplexity_only_family_has_no_primary_metric_anywhere():
    rows = _rows(("a", "val_ppl", "validation"), ("b", "val_ppl", "validation"))
    assert choose_primary_metric(rows) == ""
    assert primary_metrics(rows).empty
    with pytest.raises(ValueError, match="reports no loss-like metric"):
        primary_observations(rows.assign(params=1e8, tokens=1e9, value=3.0, seed=""))


def test_validation_beats_training_and_scores_never_count():
    rows = _rows(("a", "train_loss", "train"), ("a", "val_loss", "validation"), ("b", "val_acc", "validation"),
                 ("b", "train_loss", "train"), ("b", "val_loss", "validation"))
    assert choose_primary_metric(rows) == "val_loss"
    assert not is_loss_metric("val_acc") and not is_loss_metric("bpb") and is_loss_metric("log_perplexity")


def test_the_rule_reproduces_the_reference_families_file_wherever_the_rows_decide():
    """Where the rows themselves single a metric out (more runs, a better split or more rows than any other
    loss), the rule picks families.csv's primary metric. Where several losses tie on all three, families.csv
    names the source's headline metric (a curator's choice the rows cannot show) and is not compared."""
    if not CORPUS.exists():
        pytest.skip(f"reference corpus not found at {CORPUS}")
    from fits.data import _metric_table

    rows, _ = read_canonical(CORPUS)
    reference = read_families(CORPUS.with_name("families.csv")).set_index("family")["primary_metric"]
    chosen = primary_metrics(rows)
    table = _metric_table(rows)
    decided = [family for family, cands in table.groupby("family", sort=True)
               if len(cands) == 1 or tuple(cands.iloc[0][["runs", "split", "rows"]])
               != tuple(cands.iloc[1][["runs", "split", "rows"]])]
    assert len(decided) >= 55  # two thirds of the corpus's 88 families
    wrong = {f: (chosen[f], reference[f]) for f in decided if chosen[f] != reference[f]}
    assert wrong == {}
