"""fits.canonical: every rule of CORPUS_FORMAT.md, reported with file line and column."""
import gzip
import io
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fits.canonical import (
    CANONICAL_COLUMNS,
    CorpusValidationError,
    Problem,
    frame_to_raw,
    read_canonical,
    read_families,
    validate_canonical,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
HEADER = ",".join(CANONICAL_COLUMNS)
GOOD = "fam,m-10m,dec,10000000,1e9,100,0,pile,0.1,,val_loss,3.5,validation,paper"


def row(**changes):
    values = dict(zip(CANONICAL_COLUMNS, GOOD.split(",")))
    values.update(changes)
    return ",".join(str(values[c]) for c in CANONICAL_COLUMNS)


def csv_text(*rows, header=HEADER):
    return "\n".join([header, *rows]) + "\n"


def problems_of(text, **kwargs):
    with pytest.raises(CorpusValidationError) as info:
        read_canonical(io.StringIO(text), **kwargs)
    return info.value.problems


def test_it_reads_a_valid_file_with_types_and_line_numbers():
    df, problems = read_canonical(io.StringIO(csv_text(GOOD, row(tokens="2e9", step="", epochs=""))))
    assert problems == []
    assert list(df.columns) == list(CANONICAL_COLUMNS) + ["line"]
    assert df["params"].dtype == np.int64 and df["params"].tolist() == [10_000_000, 10_000_000]
    assert df["tokens"].tolist() == [1e9, 2e9]
    assert df["step"].tolist()[0] == 100 and pd.isna(df["step"].tolist()[1])
    assert np.isnan(df["epochs"].iloc[1]) and np.isnan(df["flops"].iloc[0])
    assert df["line"].tolist() == [2, 3]


def test_it_accepts_columns_in_any_order():
    cols = list(reversed(CANONICAL_COLUMNS))
    values = dict(zip(CANONICAL_COLUMNS, GOOD.split(",")))
    text = ",".join(cols) + "\n" + ",".join(values[c] for c in cols) + "\n"
    df, _ = read_canonical(io.StringIO(text))
    assert df.loc[0, "model"] == "m-10m" and df.loc[0, "value"] == 3.5


def test_it_reads_gzip_by_magic_bytes_whatever_the_name(tmp_path):
    path = tmp_path / "corpus.csv"  # no .gz suffix on purpose
    path.write_bytes(gzip.compress(csv_text(GOOD).encode()))
    df, _ = read_canonical(path)
    assert len(df) == 1
    df, _ = read_canonical(io.BytesIO(gzip.compress(csv_text(GOOD).encode())))
    assert len(df) == 1


def test_it_rejects_a_missing_header():
    problems = problems_of("")
    assert problems[0].line == 1 and "header" in problems[0].reason


def test_it_rejects_unknown_and_missing_columns_by_name():
    header = HEADER.replace("split", "spilt")
    problems = problems_of(csv_text(GOOD, header=header))
    assert Problem(1, "spilt", problems[0].reason) in problems
    assert any(p.column == "split" and p.reason == "missing column" for p in problems)


def test_it_rejects_a_header_naming_a_column_twice():
    problems = problems_of(csv_text(GOOD + ",x", header=HEADER + ",model"))
    assert any(p.column == "model" and "more than once" in p.reason for p in problems)


def test_it_rejects_non_utf8_with_the_line():
    data = csv_text(GOOD, GOOD.replace("pile", "p\xe9le")).encode("latin-1")
    with pytest.raises(CorpusValidationError) as info:
        read_canonical(io.BytesIO(data))
    assert info.value.problems[0].line == 3 and "UTF-8" in info.value.problems[0].reason


@pytest.mark.parametrize("column", ["family", "model", "arch", "params", "tokens", "metric", "value"])
def test_it_rejects_an_empty_required_field(column):
    problems = problems_of(csv_text(GOOD, row(**{column: ""})))
    assert any(p.line == 3 and p.column == column and "required" in p.reason for p in problems)


@pytest.mark.parametrize("params,ok", [
    ("1.3e9", True), ("1300000000", True), ("1.5", False), ("0", False), ("-5", False), ("abc", False),
    ("inf", False), ("1e30", False),
])
def test_it_requires_params_to_be_a_positive_integer(params, ok):
    text = csv_text(row(params=params))
    if ok:
        df, _ = read_canonical(io.StringIO(text))
        assert df["params"].iloc[0] == int(float(params))
    else:
        problems = problems_of(text)
        assert [(p.line, p.column) for p in problems] == [(2, "params")]
        assert repr(params) in problems[0].reason


@pytest.mark.parametrize("tokens", ["0", "-1", "inf", "nan", "x"])
def test_it_requires_tokens_positive_and_finite(tokens):
    problems = problems_of(csv_text(row(tokens=tokens)))
    assert [(p.line, p.column) for p in problems] == [(2, "tokens")]


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "three"])
def test_it_requires_a_finite_value(value):
    problems = problems_of(csv_text(row(value=value)))
    assert [(p.line, p.column) for p in problems] == [(2, "value")]


@pytest.mark.parametrize("step", ["1.5", "-1", "x"])
def test_it_requires_step_to_be_an_integer(step):
    problems = problems_of(csv_text(row(step=step)))
    assert [(p.line, p.column) for p in problems] == [(2, "step")]


@pytest.mark.parametrize("column", ["epochs", "flops"])
def test_it_requires_epochs_and_flops_to_be_numbers_when_present(column):
    problems = problems_of(csv_text(row(**{column: "lots"})))
    assert [(p.line, p.column) for p in problems] == [(2, column)]
    df, _ = read_canonical(io.StringIO(csv_text(row(**{column: "1.2e21"}))))
    assert df[column].iloc[0] == 1.2e21


def test_it_rejects_an_unknown_arch_and_split():
    problems = problems_of(csv_text(row(arch="rnn"), row(model="m2", split="test")))
    assert [(p.line, p.column) for p in problems] == [(2, "arch"), (3, "split")]
    assert "dec, enc-dec, moe, ssm, hybrid" in problems[0].reason


@pytest.mark.parametrize("column,other", [("family", "fam2"), ("arch", "moe"), ("params", "20000000")])
def test_it_rejects_a_run_that_changes_family_arch_or_params(column, other):
    problems = problems_of(csv_text(GOOD, row(tokens="2e9", **{column: other})))
    assert [(p.line, p.column) for p in problems] == [(3, column)]
    assert "line 2" in problems[0].reason and "m-10m" in problems[0].reason


def test_it_drops_an_exact_repeat_silently():
    df, problems = read_canonical(io.StringIO(csv_text(GOOD, GOOD, row(step="7"))))
    assert problems == [] and len(df) == 1
    assert df.attrs["duplicates_dropped"] == 2 and df.attrs["rows_read"] == 3


def test_it_rejects_a_repeat_with_another_value_naming_both_lines():
    problems = problems_of(csv_text(GOOD, row(tokens="2e9"), row(value="3.6")))
    assert [(p.line, p.column) for p in problems] == [(4, "value")]
    assert "line 2" in problems[0].reason and "3.6" in problems[0].reason


def test_it_treats_other_seeds_as_other_observations():
    df, _ = read_canonical(io.StringIO(csv_text(GOOD, row(seed="1", value="3.6"))))
    assert len(df) == 2


def test_it_counts_file_lines_across_blank_lines_and_quoted_newlines():
    text = csv_text(GOOD, "", row(model="m2", source='"two\nlines"'), row(model="m3", tokens="-1"))
    problems = problems_of(text)
    assert [(p.line, p.column) for p in problems] == [(6, "tokens")]


def test_it_reports_a_ragged_row():
    problems = problems_of(csv_text(GOOD, GOOD + ",extra"))
    assert problems[0].line == 3 and "Expected 14 fields" in problems[0].reason


def test_its_message_lists_problems_with_lines_and_a_count():
    text = csv_text(*[row(model=f"m{i}", tokens="-1") for i in range(30)])
    with pytest.raises(CorpusValidationError) as info:
        read_canonical(io.StringIO(text))
    message = str(info.value)
    assert "30 problem(s)" in message and "line 2, column 'tokens'" in message and "and 10 more" in message


def test_skip_invalid_returns_good_rows_and_the_problems():
    df, problems = read_canonical(
        io.StringIO(csv_text(GOOD, row(model="bad", params="0"), row(model="m2"))), skip_invalid=True
    )
    assert df["model"].tolist() == ["m-10m", "m2"]
    assert [(p.line, p.column) for p in problems] == [(3, "params")]


def test_skip_invalid_still_rejects_a_broken_header():
    with pytest.raises(CorpusValidationError):
        read_canonical(io.StringIO(csv_text(GOOD, header=HEADER.replace("value", "val"))), skip_invalid=True)


def test_frame_to_raw_round_trips_floats_exactly():
    df, _ = read_canonical(io.StringIO(csv_text(GOOD)))
    df.loc[0, "value"] = 0.1 + 0.2
    df.loc[0, "tokens"] = 123456789.123456789
    again, _ = validate_canonical(frame_to_raw(df))
    assert again.loc[0, "value"] == 0.1 + 0.2 and again.loc[0, "tokens"] == 123456789.123456789


def test_read_families_reads_the_reference_families_file():
    families = read_families(SHARED / "corpus" / "families.csv")
    assert len(families) == 88
    assert families.set_index("family").loc["gpt3", "primary_metric"] == "val_loss"


def test_read_families_rejects_a_repeated_family():
    with pytest.raises(CorpusValidationError) as info:
        read_families(io.StringIO("family,primary_metric\na,loss\na,val_loss\n"))
    assert [(p.line, p.column) for p in info.value.problems] == [(3, "family")]


def test_it_validates_the_reference_corpus_quickly():
    start = time.perf_counter()
    df, problems = read_canonical(SHARED / "corpus" / "colpret.csv.gz")
    seconds = time.perf_counter() - start
    assert problems == [] and len(df) == 199_499
    assert df["model"].nunique() == 817 and df["family"].nunique() == 88
    # Budget for a busy CI machine; ~1.5 s on an idle laptop-class core.
    assert seconds < 6
