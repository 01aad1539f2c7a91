"""The canonical format's one rule for names (fits.name_problem, fits.text_problem), shared by every entrance."""
import gzip

import pytest

from fits import name_problem, read_canonical, text_problem

from .conftest import CORPUS


@pytest.mark.parametrize("name", ["GPT2-c4-1", "porian_rw_tuned_constlr", "m=1.3b_x", "a.b", "日本 語", "100% #1 ?x&y",
                                  "q'u\"ote", "x" * 200, "a-", "a@b"])
def test_valid_names_pass(name):
    assert name_problem(name, "model") is None


@pytest.mark.parametrize("name, reason", [
    ("", "empty"), ("x" * 201, "longer than 200"), ("a/b", "'/'"), (".", "cannot be '.'"), ("..", "cannot be '..'"),
    ("=1+1", "formula"), ("+1", "formula"), ("-1", "formula"), ("@SUM(1)", "formula"), ("a\tb", "U+0009"),
    ("a\u202eb", "U+202E"), ("a\u2066b", "U+2066"), ("a\u200db", "U+200D"), ("a\xa0b", "U+00A0"),
])
def test_invalid_names_say_why(name, reason):
    assert reason in name_problem(name, "family")


def test_text_keeps_the_sources_spelling_but_no_control_or_bidi_character():
    assert text_problem("val_loss/avg") is None and text_problem("LLM360/AmberDatasets") is None
    assert text_problem("=starts with an equals sign") is None  # metric and dataset names are the source's
    assert "U+000A" in text_problem("two\nlines")
    assert text_problem("two\nlines", prose=True) is None  # a citation may wrap
    assert "U+202E" in text_problem("a\u202eb", prose=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["colpret.csv.gz", "extra/observations.csv.gz"])
def test_the_reference_corpora_pass_the_rule_unchanged(name):
    path = CORPUS.parent / name
    if not path.is_file():
        pytest.skip(f"{path} not found")
    frame, problems = read_canonical(path)
    assert problems == []
    with gzip.open(path, "rt") as f:
        rows = sum(1 for line in f if line.strip()) - 1
    assert len(frame) + frame.attrs["duplicates_dropped"] == rows
