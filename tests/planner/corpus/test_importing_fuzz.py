"""Fuzzing the corpus importer (fits.canonical + planner.corpus.importing) with generated CSVs.

Files are built from valid rows and then broken in the ways real files are: wrong
types, NaN/inf, negative and huge numbers, empty required cells, unicode, duplicate
keys and conflicting values, rows contradicting the stored corpus, missing or
repeated columns, a BOM, CRLF line ends, gzip, an empty file.

Property, for every file: the import either succeeds exactly - every valid row is
stored with its value, and importing the file again changes nothing - or raises
CorpusValidationError whose problems each name a line of the file, a column and a
reason, and then no row of any table has changed. No other exception escapes.
With skip_invalid the good rows are written and every row is accounted for.
Derandomized, bounded; each example runs in a savepoint that is rolled back.
"""
import csv
import gzip
import io
import math

import pytest
from django.apps import apps
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fits.canonical import CANONICAL_COLUMNS, CorpusValidationError, read_canonical
from planner.corpus.importing import import_canonical
from planner.models import Observation

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

FUZZ = settings(max_examples=150, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Runs as the `corpus` fixture stores them, so files can agree or conflict with stored data.
STORED_RUNS = {"tiny-10m": ("tiny", "dec", 10_000_000), "tiny-50m": ("tiny", "dec", 50_000_000),
               "other-1b": ("other", "enc-dec", 1_000_000_000)}
NEW_RUNS = {"new-20m": ("fresh", "dec", 20_000_000), "new-80m": ("fresh", "dec", 80_000_000),
            "ünï-1b": ("fämily ☃", "moe", 1_000_000_000)}

bad_number = st.sampled_from(["", "nan", "NaN", "inf", "-inf", "-1", "0", "abc", "1e400", "1e-400", "9" * 40,
                              "1,5", "0x10", " 3 ", "1_000", "½", "١٢٣", "3.0.1", "--2", "None"])
bad_text = st.sampled_from(["", " ", "\t", "x" * 300, "😀", "a,b", 'q"uote', "line\nbreak", "\x00", "NULL"])


@st.composite
def rows(draw):
    model = draw(st.sampled_from(sorted({**STORED_RUNS, **NEW_RUNS})))
    family, arch, params = {**STORED_RUNS, **NEW_RUNS}[model]
    row = {
        "family": family, "model": model, "arch": arch, "params": str(params),
        "tokens": repr(draw(st.sampled_from([1e9, 2e9, 4e9, 8e9, 2e10]))),
        "step": draw(st.sampled_from(["", "100", "2000"])), "seed": draw(st.sampled_from(["", "", "1"])),
        "dataset": draw(st.sampled_from(["", "pile", "c4"])), "epochs": draw(st.sampled_from(["", "1", "2.5"])),
        "flops": draw(st.sampled_from(["", "1e20"])),
        "metric": draw(st.sampled_from(["val_loss", "val_loss", "train_loss", "loss/ppl"])),
        "value": repr(draw(st.floats(min_value=0.5, max_value=6.0)).__round__(3)),
        "split": draw(st.sampled_from(["validation", "train", "", "unknown"])), "source": "fuzz",
    }
    return row


@st.composite
def damaged(draw, row):
    row = dict(row)
    column = draw(st.sampled_from(CANONICAL_COLUMNS))
    numeric = column in ("params", "tokens", "step", "epochs", "flops", "value")
    row[column] = draw(bad_number if numeric else st.one_of(bad_text, bad_number))
    return row


def _cell(value):
    if any(c in value for c in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def files(draw):
    """(bytes, description): a canonical CSV, near-valid, in one of the encodings files arrive in."""
    body = draw(st.lists(rows(), max_size=25))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2, 4])) if body else 0):  # a few broken cells, or none
        i = draw(st.integers(0, len(body) - 1))
        body[i] = draw(damaged(body[i]))
    if body and draw(st.booleans()):
        body.append(dict(draw(st.sampled_from(body))))  # an exact duplicate (dropped as unchanged)
    # sampled_from leans to its first item: rare choices go last (integers(0, n) == 0 would be common).
    if body and draw(st.sampled_from([False, False, False, True])):
        twin = dict(draw(st.sampled_from(body)))
        twin["value"] = "5.999"  # same key, another value: a conflict naming both lines
        body.append(twin)
    header = list(CANONICAL_COLUMNS)
    shape = draw(st.sampled_from(["ok"] * 14 + ["missing column", "extra column", "repeated column", "reordered",
                                              "no header", "ragged row", "empty"]))
    if shape == "missing column":
        header.remove(draw(st.sampled_from(CANONICAL_COLUMNS)))
    elif shape == "extra column":
        header.append("comment")
    elif shape == "repeated column":
        header.append(draw(st.sampled_from(CANONICAL_COLUMNS)))
    elif shape == "reordered":
        header = draw(st.permutations(header))
    lines = [] if shape == "no header" else [",".join(header)]
    lines += [",".join(_cell(r.get(c, "x")) for c in header) for r in body]
    if shape == "ragged row" and lines:
        lines.insert(draw(st.integers(1, len(lines))), "too,few,cells")
    if draw(st.booleans()):
        lines.insert(draw(st.integers(min(1, len(lines)), len(lines))), "")  # a blank line
    newline = draw(st.sampled_from(["\n", "\n", "\r\n"]))
    text = "" if shape == "empty" else newline.join(lines) + (newline if draw(st.booleans()) else "")
    data = text.encode("utf-8")
    if draw(st.sampled_from([False] * 14 + [True])):
        data = data.replace(b"fuzz", b"fu\xffzz", 1)  # not UTF-8
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data  # a spreadsheet's BOM
    if draw(st.booleans()):
        data = gzip.compress(data)
    return data


def table_counts():
    return {model._meta.db_table: model.objects.count() for model in apps.get_models()}


def _raw(data):
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def file_lines(data):
    return _raw(data).count(b"\n") + 1


def header_cells(data):
    first = _raw(data).removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].decode("utf-8", "replace")
    return {cell.strip() for cell in next(csv.reader([first]), [])}


def assert_clear_problems(exc, data):
    assert str(exc).startswith("corpus file rejected: ")
    assert exc.problems
    for problem in exc.problems:
        assert 0 <= problem.line <= file_lines(data), problem
        # A canonical column, or a header cell the file has that it should not (line 1), or "" (the file, a row).
        assert problem.column in ("", *CANONICAL_COLUMNS) or (
            problem.line == 1 and problem.column in header_cells(data)), problem
        assert isinstance(problem.reason, str) and problem.reason.strip(), problem


def stored_values():
    return {(o.run.name, o.run.seed, o.metric, o.tokens): o.value
            for o in Observation.objects.select_related("run")}


@pytest.fixture
def rolled_back():
    """Run one example in a savepoint that is rolled back, so examples do not see each other's rows."""
    def run(function):
        with transaction.atomic():
            try:
                return function()
            finally:
                transaction.set_rollback(True)
    return run


@FUZZ
@given(data=files())
def test_a_file_imports_exactly_and_idempotently_or_is_refused_changing_nothing(corpus, rolled_back, data):
    def example():
        before = table_counts()
        stored_before = stored_values()
        try:
            report = import_canonical(io.BytesIO(data))
        except CorpusValidationError as exc:
            event("refused: " + exc.problems[0].reason[:30])
            assert_clear_problems(exc, data)
            assert table_counts() == before
            assert stored_values() == stored_before
            return
        event("imported" if report.rows_inserted else "imported, nothing new")
        expected, _ = read_canonical(io.BytesIO(data))
        stored = stored_values()
        for r in expected.itertuples(index=False):
            key = (r.model, r.seed, r.metric, r.tokens)
            assert stored[key] == r.value, key  # exactly the value of the file (or the same, stored before)
        assert report.rows_inserted == len(stored) - len(stored_before)
        assert report.rows_read == report.rows_inserted + report.rows_unchanged
        after = table_counts()
        again = import_canonical(io.BytesIO(data))
        assert (again.rows_inserted, again.rows_replaced, again.families_created, again.runs_created) == (0, 0, 0, 0)
        assert again.rows_unchanged == report.rows_read
        assert table_counts() == after and stored_values() == stored

    rolled_back(example)


@FUZZ
@given(data=files())
def test_with_skip_invalid_the_good_rows_are_written_and_every_row_is_accounted_for(corpus, rolled_back, data):
    def example():
        before = table_counts()
        try:
            report = import_canonical(io.BytesIO(data), skip_invalid=True)
        except CorpusValidationError as exc:
            event("refused")
            # Only problems with the file itself (encoding, header, CSV syntax) still refuse it.
            assert_clear_problems(exc, data)
            assert all(p.line <= 1 or "malformed CSV" in p.reason or "UTF-8" in p.reason for p in exc.problems)
            assert table_counts() == before
            return
        event("some rows skipped" if report.rows_skipped else "no row skipped")
        accounted = report.rows_inserted + report.rows_unchanged + report.rows_replaced + report.rows_skipped
        assert accounted == report.rows_read, report.to_dict()
        assert report.rows_skipped == len({p.line for p in report.problems})
        for problem in report.problems:
            assert 2 <= problem.line <= file_lines(data) and problem.column in CANONICAL_COLUMNS, problem
        observations = before[Observation._meta.db_table] + report.rows_inserted
        assert table_counts()[Observation._meta.db_table] == observations
        assert all(math.isfinite(v) for v in Observation.objects.values_list("value", flat=True))

    rolled_back(example)


def test_the_formats_text_limits_are_the_stores_column_sizes():
    from fits.canonical import TEXT_LIMITS
    from planner.models import Family, Run

    stored = {"family": Family._meta.get_field("name"), "model": Run._meta.get_field("name"),
              "seed": Run._meta.get_field("seed"), "metric": Observation._meta.get_field("metric"),
              "dataset": Observation._meta.get_field("dataset")}
    assert TEXT_LIMITS == {column: field.max_length for column, field in stored.items()}


@pytest.mark.parametrize("column, cell, reason", [
    ("model", "m" * 201, "is longer than 200 characters"),
    ("seed", "s" * 65, "is longer than 64 characters"),
    ("source", "a\x00b", "contains the control or bidi character U+0000"),
])
def test_text_the_store_cannot_hold_is_a_problem_of_its_line(column, cell, reason):
    row = dict(zip(CANONICAL_COLUMNS, ["f", "m", "dec", "1000000", "1e9", "", "", "", "", "", "loss", "3", "", ""]))
    row[column] = cell
    data = ",".join(CANONICAL_COLUMNS) + "\n" + ",".join(row[c] for c in CANONICAL_COLUMNS) + "\n"
    with pytest.raises(CorpusValidationError) as refused:
        read_canonical(io.BytesIO(data.encode()))
    (problem,) = refused.value.problems
    assert (problem.line, problem.column) == (2, column) and problem.reason.startswith(reason)
