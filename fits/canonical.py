"""Reader and validator for the canonical corpus CSV (../shared/CORPUS_FORMAT.md).

Pure pandas/numpy so it can be used from a notebook on a file alone. Every rule
of the format is checked column-wise (no Python loop per row), so ~200k rows
validate in well under a second.

Line numbers in problems are lines of the file: the header is line 1, the first
data row line 2 (quoted fields spanning several lines are accounted for).
"""
from __future__ import annotations

import codecs
import csv
import gzip
import io
import os
import re
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

CANONICAL_COLUMNS = (
    "family",
    "model",
    "arch",
    "params",
    "tokens",
    "step",
    "seed",
    "dataset",
    "epochs",
    "flops",
    "metric",
    "value",
    "split",
    "source",
)
_STRIPPED_COLUMNS = ("family", "model", "arch", "seed", "metric", "split")
REQUIRED_COLUMNS = ("family", "model", "arch", "params", "tokens", "metric", "value")
TEXT_COLUMNS = ("family", "model", "arch", "seed", "dataset", "metric", "split", "source")
ARCHES = ("dec", "enc-dec", "moe", "ssm", "hybrid")
# Longest names the store keeps (planner.models; a test keeps the two in step).
TEXT_LIMITS = {"family": 200, "model": 200, "seed": 64, "metric": 200, "dataset": 500}
# A citation, kept on every row: long enough for any reference, too short to carry a payload.
SOURCE_LIMIT = 2000
# Family and model names are parts of URLs, file names and spreadsheet cells (CORPUS_FORMAT.md, "Names").
NAME_COLUMNS = ("family", "model")
# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@")
# Characters no text field may hold: C0/C1 controls, line and paragraph separators, bidi marks and overrides
# (which make a name display as another, CVE-2021-42574 "Trojan Source").
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# A citation (source) may run over lines and hold tabs; nothing else invisible.
_INVISIBLE_IN_PROSE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
SPLITS = ("", "train", "validation", "unknown")
FAMILIES_COLUMNS = (
    "family",
    "arch",
    "dataset",
    "primary_metric",
    "n_models",
    "param_sizes",
    "max_tokens",
    "n_rows",
    "source",
    "notes",
)
# params are stored as 64-bit integers; larger counts cannot be a real model.
_MAX_PARAMS = 2**62
_MAX_PROBLEMS_IN_MESSAGE = 20


@dataclass(frozen=True)
class Problem:
    """One reason a row (or the file) was rejected. line 0 = the file as a whole."""

    line: int
    column: str
    reason: str

    def __str__(self):
        where = f"line {self.line}" if self.line else "file"
        if self.column:
            where += f", column {self.column!r}"
        return f"{where}: {self.reason}"

    def to_dict(self):
        return asdict(self)


class CorpusValidationError(ValueError):
    """The input breaks the canonical format; ``problems`` lists every violation."""

    def __init__(self, problems, *, what="corpus file"):
        self.problems = list(problems)
        shown = self.problems[:_MAX_PROBLEMS_IN_MESSAGE]
        lines = [f"{what} rejected: {len(self.problems)} problem(s); nothing was written"]
        lines += [f"  {p}" for p in shown]
        if len(self.problems) > len(shown):
            lines.append(f"  ... and {len(self.problems) - len(shown)} more")
        super().__init__("\n".join(lines))


class CorpusTooLarge(CorpusValidationError):
    """The input is over a size limit (bytes after decompression, or rows): refused before it is parsed."""


# Magic bytes of compressed formats that are not accepted, so they get a clear refusal
# instead of "not UTF-8" or a bogus header.
_OTHER_COMPRESSION = {b"PK\x03\x04": "zip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}
_CHUNK = 1 << 20


def _too_large(reason: str) -> CorpusTooLarge:
    return CorpusTooLarge([Problem(0, "", reason)], what="corpus file")


def _count(stream, *, max_bytes: int | None, max_lines: int | None, gzipped: bool, keep: bool) -> bytes:
    """Read ``stream`` in chunks, counting bytes and lines, refused as soon as it passes a limit.

    Every newline counts (data rows, blank lines and the header alike), before anything is parsed, so
    20 MiB of blank lines is refused after its first megabytes. ``keep=False`` drops each chunk once
    counted: a gzip bomb (1 GB of zeros in 1 MB) then costs one chunk of memory, not its size.
    """
    chunks, total, lines = [], 0, 0
    while chunk := stream.read(_CHUNK):
        total += len(chunk)
        lines += chunk.count(b"\n")
        if max_bytes is not None and total > max_bytes:
            raise _too_large((f"decompresses to more than {max_bytes} bytes" if gzipped
                              else f"is more than {max_bytes} bytes") + ", the limit for one file; split it into "
                             "smaller files")
        if max_lines is not None and lines > max_lines:
            raise _too_large(f"has more than {max_lines - 1} data rows (blank lines count); the limit for one "
                             f"file is {max_lines - 1}: split it into smaller files")
        if keep:
            chunks.append(chunk)
    return b"".join(chunks)


def _read_bytes(source, *, max_bytes: int | None = None, max_rows: int | None = None) -> bytes:
    """Whole input as bytes, gunzipped when it is gzip (by magic bytes, not name).

    ``max_bytes`` bounds the size read and decompressed, ``max_rows`` the lines after the header
    (CorpusTooLarge), both while reading (:func:`_count`): the input is counted in a first pass
    that keeps nothing, and read only if it is within the limits.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise _too_large(f"is {path.stat().st_size} bytes; the limit is {max_bytes}")
        with path.open("rb") as stream:
            return _read_bytes(stream, max_bytes=max_bytes, max_rows=max_rows)
    if isinstance(source, io.TextIOBase) or isinstance(source.read(0), str):
        source = io.BytesIO(source.read().encode("utf-8"))
    if not source.seekable():
        source = io.BytesIO(source.read())
    start = source.tell()
    magic = source.read(6)
    for signature, name in _OTHER_COMPRESSION.items():
        if magic.startswith(signature):
            raise CorpusValidationError([Problem(0, "", (
                f"is {name}-compressed; only plain CSV or gzip (.csv.gz) is accepted"))])
    gzipped = magic[:2] == b"\x1f\x8b"
    limits = {"max_bytes": max_bytes, "max_lines": None if max_rows is None else max_rows + 1, "gzipped": gzipped}
    try:
        for keep in ([False, True] if max_bytes is not None or max_rows is not None else [True]):
            source.seek(start)
            data = _count(gzip.GzipFile(fileobj=source) if gzipped else source, keep=keep, **limits)
        return data
    except (OSError, EOFError, zlib.error) as exc:
        raise CorpusValidationError([Problem(0, "", f"corrupt gzip data: {exc}")]) from None


def _check_row_count(raw: pd.DataFrame, max_rows: int | None) -> None:
    if max_rows is not None and len(raw) > max_rows:
        raise _too_large(f"has {len(raw)} data rows; the limit for one file is {max_rows}: split it into smaller files")


def _decode(data: bytes) -> str:
    """Strict UTF-8; an invalid byte is reported with its file line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CorpusValidationError(
            [Problem(line, "", f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})")]
        ) from None


def _without_bom(data: bytes) -> bytes:
    # Spreadsheet tools write a UTF-8 byte-order mark; it is not part of the header.
    return data[3:] if data.startswith(b"\xef\xbb\xbf") else data


def _head(data: bytes, size: int = 1 << 16) -> str:
    """The start of the file as text, enough for the header (the file is parsed as bytes)."""
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(data[:size], final=len(data) <= size)
    except UnicodeDecodeError:
        _decode(data)  # raises with the line of the bad byte
        raise


def _check_header(data: bytes, expected, *, required=None) -> list[str]:
    first = next(csv.reader(io.StringIO(_head(data))), None)
    if not first or not any(h.strip() for h in first):
        raise CorpusValidationError([Problem(1, "", "missing header row (expected: " + ",".join(expected) + ")")])
    header = [h.strip() for h in first]
    problems = []
    seen = set()
    for name in header:
        if name in seen:
            problems.append(Problem(1, name, "column appears more than once"))
        seen.add(name)
    for name in header:
        if name not in expected:
            problems.append(Problem(1, name, "unknown column (expected: " + ",".join(expected) + ")"))
    for name in required if required is not None else expected:
        if name not in seen:
            problems.append(Problem(1, name, "missing column"))
    if problems:
        raise CorpusValidationError(problems)
    return header


def _parse_table(data: bytes, header: list[str]) -> pd.DataFrame:
    # Parsing the UTF-8 bytes directly spares decoding and re-encoding ~40 MB.
    try:
        df = pd.read_csv(
            io.BytesIO(data),
            header=0,
            names=header,
            dtype=object,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            engine="c",
            encoding="utf-8",
            encoding_errors="strict",
        )
    except UnicodeDecodeError:
        _decode(data)  # raises with the line of the bad byte
        raise
    except pd.errors.ParserError as exc:
        # The C parser names the offending file line ("Expected 14 fields in line 7, saw 15").
        reason = str(exc).replace("Error tokenizing data. C error: ", "").strip()
        found = re.search(r"\bline (\d+)", reason)
        raise CorpusValidationError(
            [Problem(int(found.group(1)) if found else 0, "", f"malformed CSV: {reason}")]
        ) from None
    # File line of each record: header is line 1; embedded newlines in quoted
    # fields push later records down.
    n = len(df)
    if data.count(b"\n") - (1 if data.endswith(b"\n") else 0) > n:
        extra = np.zeros(n, dtype=np.int64)
        for col in df.columns:
            extra += df[col].str.count("\n").to_numpy(dtype=np.int64)
        header_cells = next(csv.reader(io.StringIO(_head(data))), None)
        head_extra = sum(h.count("\n") for h in header_cells or [])
        df["line"] = 2 + head_extra + np.arange(n) + np.concatenate([[0], np.cumsum(extra)[:-1]])
    else:
        df["line"] = np.arange(2, n + 2)
    return df


def _drop_blank_rows(raw: pd.DataFrame, columns) -> pd.DataFrame:
    """Blank lines are parsed as rows (so line numbers stay right); drop them."""
    columns = list(columns)
    maybe = raw[columns[0]].to_numpy(dtype=object) == ""
    if not maybe.any():
        return raw
    blank = maybe.copy()
    blank[maybe] = (raw.loc[maybe, columns] == "").all(axis=1).to_numpy()
    return raw[~blank]


def _problems(df: pd.DataFrame, mask, column: str, reason: str, values=None) -> list[Problem]:
    """Problems for rows where ``mask`` holds.

    ``reason`` may hold ``{}``, filled with the row's entry of ``values``; only
    flagged rows are formatted, which keeps clean files fast.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return []
    lines = df["line"].to_numpy()[mask]
    if values is None:
        return [Problem(int(line), column, reason) for line in lines]
    picked = np.asarray(values, dtype=object)[mask]
    return [Problem(int(line), column, reason.format(_short(v))) for line, v in zip(lines, picked)]


def _short(value):
    if isinstance(value, _Raw):
        return str(value)
    if isinstance(value, str):
        return repr(value if len(value) <= 80 else value[:77] + "...")
    return value


def name_problem(value: str, column: str = "family") -> str | None:
    """Why ``value`` cannot be a family or model name (``column``), or None if it can.

    The one rule of every entrance (corpus files, the API, the admin, predictions): not empty, at most
    TEXT_LIMITS[column] characters, printable (no control, bidi or other invisible characters), no ``/``,
    not ``.`` or ``..`` (both are paths in a URL), and no leading ``= + - @`` (a spreadsheet formula).
    """
    limit = TEXT_LIMITS.get(column, 200)
    if not value:
        return "required value is empty"
    if len(value) > limit:
        return f"is longer than {limit} characters: {_short(value)}"
    if not value.isprintable():
        char = next(c for c in value if not c.isprintable())
        return (f"contains the non-printable character U+{ord(char):04X} (names must be printable: no control, "
                f"bidi or invisible characters): {_short(value)}")
    if value.startswith(FORMULA_STARTS):
        return (f"must not start with {value[0]!r} (a spreadsheet would read the cell as a formula): "
                f"{_short(value)}")
    if "/" in value:
        return f"must not contain '/' (names are parts of URLs): {_short(value)}"
    if value in (".", ".."):
        return f"cannot be {value!r} (a path in a URL)"
    return None


def text_problem(value: str, *, prose: bool = False) -> str | None:
    """Why ``value`` cannot be held by a text field (metric, dataset, seed; ``prose``: source), or None.

    These keep the source's spelling (``val_loss/avg``), but no control, line-separator or bidi character;
    prose may hold tabs and line breaks.
    """
    found = (_INVISIBLE_IN_PROSE if prose else _INVISIBLE).search(value)
    if found is None:
        return None
    return (f"contains the control or bidi character U+{ord(found.group()):04X}, which no text field may hold: "
            f"{_short(value)}")


def _check_by_value(values: np.ndarray, check) -> np.ndarray:
    """check(value) for each distinct value, spread back over the rows (None where it passed)."""
    codes, uniques = pd.factorize(values)
    reasons = np.array([check(u) for u in uniques.tolist()] + [None], dtype=object)
    return reasons[codes]


def read_canonical(
    source, *, skip_invalid: bool = False, max_rows: int | None = None, max_bytes: int | None = None
) -> tuple[pd.DataFrame, list[Problem]]:
    """Read and validate a canonical corpus CSV.

    ``source``: a path (.csv or .csv.gz; gzip is detected by its magic bytes) or
    a binary/text file object.

    Returns ``(frame, problems)``. ``frame`` has the canonical columns with
    types (params int64, tokens/value/epochs/flops float64 with NaN for empty
    optional numbers, step nullable Int64, text columns str with "" for empty)
    plus ``line``: the file line each row came from. Exact duplicates of
    (model, seed, tokens, metric) with the same value are dropped silently.

    Any violation raises :class:`CorpusValidationError` listing all of them,
    unless ``skip_invalid``: then offending rows are left out and returned in
    ``problems``. Problems with the file itself (encoding, header, CSV syntax)
    always raise.

    Limits for untrusted input (None: none): ``max_bytes`` on the file's size
    after decompression, ``max_rows`` on its data rows; over either,
    :class:`CorpusTooLarge` (a CorpusValidationError) is raised before any row
    is validated.
    """
    data = _without_bom(_read_bytes(source, max_bytes=max_bytes, max_rows=max_rows))
    header = _check_header(data, CANONICAL_COLUMNS)
    raw = _parse_table(data, header)
    raw = _drop_blank_rows(raw, CANONICAL_COLUMNS)
    _check_row_count(raw, max_rows)
    return validate_canonical(raw, skip_invalid=skip_invalid)


def _stripped(values) -> np.ndarray:
    # Identifying columns repeat a few distinct values: strip each once.
    codes, uniques = pd.factorize(values)
    stripped = np.array([u.strip() for u in uniques.tolist()], dtype=object)
    return stripped[codes]


def validate_canonical(raw: pd.DataFrame, *, skip_invalid: bool = False, required=REQUIRED_COLUMNS,
                       what: str = "corpus file") -> tuple[pd.DataFrame, list[Problem]]:
    """Validate string columns (as read from a file) and return typed rows; see read_canonical.

    ``raw`` must hold the canonical columns as strings and a ``line`` column. ``required``: the
    columns that may not be empty (a prediction's runs need fewer, fits.runtable).
    """
    raw = raw.reset_index(drop=True)
    n = len(raw)
    problems: list[Problem] = []
    bad = np.zeros(n, dtype=bool)
    # Identifying columns are stripped (a stray space must not make a new run or
    # metric); free text is kept as written; numbers parse with spaces anyway.
    cells = {c: raw[c].to_numpy(dtype=object) for c in CANONICAL_COLUMNS}
    for c in _STRIPPED_COLUMNS:
        cells[c] = _stripped(cells[c])
    present = {c: cells[c] != "" for c in CANONICAL_COLUMNS}
    out = pd.DataFrame({"line": raw["line"].to_numpy(dtype="int64")})

    def flag(mask, column, reason, values=None):
        nonlocal bad
        mask = np.asarray(mask, dtype=bool)
        problems.extend(_problems(out, mask, column, reason, values))
        bad |= mask

    for col in required:
        flag(~present[col], col, "required value is empty")

    for col in NAME_COLUMNS:
        reasons = _check_by_value(cells[col], lambda v, col=col: name_problem(v, col) if v else None)
        flag(reasons != None, col, "{}", _Raw.wrap(reasons))  # noqa: E711 (elementwise)
    for col in TEXT_COLUMNS:
        if col in NAME_COLUMNS:
            continue
        limit = TEXT_LIMITS.get(col, SOURCE_LIMIT if col == "source" else None)
        if limit is not None:
            flag(pd.Series(cells[col], dtype=object).str.len().to_numpy() > limit, col,
                 f"is longer than {limit} characters: {{}}", cells[col])
        reasons = _check_by_value(cells[col], lambda v, prose=col == "source": text_problem(v, prose=prose))
        flag(reasons != None, col, "{}", _Raw.wrap(reasons))  # noqa: E711 (elementwise)

    numbers = {}
    for col in ("params", "tokens", "step", "epochs", "flops", "value"):
        x = pd.to_numeric(pd.Series(cells[col], dtype=object), errors="coerce").to_numpy(dtype="float64")
        numbers[col] = x
        flag(present[col] & np.isnan(x), col, "not a number: {}", cells[col])

    with np.errstate(invalid="ignore"):
        p = numbers["params"]
        fin = np.isfinite(p)
        flag(np.isinf(p), "params", "must be finite, got {}", cells["params"])
        flag(fin & (p <= 0), "params", "must be a positive integer, got {}", cells["params"])
        flag(fin & (p > 0) & (np.floor(p) != p), "params", "must be an integer, got {}", cells["params"])
        flag(fin & (p > _MAX_PARAMS), "params", "is too large, got {}", cells["params"])

        t = numbers["tokens"]
        flag(np.isinf(t), "tokens", "must be finite, got {}", cells["tokens"])
        flag(np.isfinite(t) & (t <= 0), "tokens", "must be > 0, got {}", cells["tokens"])

        flag(np.isinf(numbers["value"]), "value", "must be finite, got {}", cells["value"])

        s = numbers["step"]
        fin = np.isfinite(s)
        flag(np.isinf(s), "step", "must be finite, got {}", cells["step"])
        flag(fin & ((np.floor(s) != s) | (s < 0)), "step", "must be a non-negative integer, got {}", cells["step"])
        flag(fin & (s > _MAX_PARAMS), "step", "is too large, got {}", cells["step"])

        for col in ("epochs", "flops"):
            x = numbers[col]
            flag(np.isinf(x) | (x < 0), col, "must be a finite number >= 0, got {}", cells[col])

    flag(present["arch"] & ~np.isin(cells["arch"], ARCHES), "arch",
         "must be one of " + ", ".join(ARCHES) + "; got {}", cells["arch"])
    flag(~np.isin(cells["split"], SPLITS), "split",
         "must be empty or one of train, validation, unknown; got {}", cells["split"])

    for col in TEXT_COLUMNS:
        out[col] = cells[col]
    out["params"] = np.where(bad | np.isnan(p), 0, p).astype("int64")
    out["tokens"] = t
    out["value"] = numbers["value"]
    out["step"] = pd.array(np.where(np.isfinite(s) & ~bad, s, np.nan), dtype="Float64").astype("Int64")
    out["epochs"] = numbers["epochs"]
    out["flops"] = numbers["flops"]

    # One run = one model: family, arch and params cannot change between its
    # rows. The model's first valid row sets them; later rows that differ are
    # reported with a pointer to that first line.
    good = out[~bad]
    if len(good):
        first = good.groupby("model", sort=False)[["family", "arch", "params", "line"]].transform("first")
        for col in ("family", "arch", "params"):
            differs = (good[col] != first[col]).to_numpy()
            if differs.any():
                mask = np.zeros(n, dtype=bool)
                mask[good.index[differs]] = True
                details = np.empty(n, dtype=object)
                details[good.index[differs]] = [
                    f"model {m!r} has {col} {f!r} on line {ln}, {v!r} here; a run cannot change {col}"
                    for m, f, ln, v in zip(good["model"][differs], first[col][differs],
                                           first["line"][differs], good[col][differs])
                ]
                flag(mask, col, "{}", _Raw.wrap(details))

    # (model, seed, tokens, metric) is unique: a repeat with the same value is
    # dropped, with another value it is an error naming both lines.
    good = out[~bad]
    key = ["model", "seed", "tokens", "metric"]
    dup = good.duplicated(key, keep="first").to_numpy()
    drop = np.zeros(n, dtype=bool)
    if dup.any():
        first = good.groupby(key, sort=False)[["value", "line"]].transform("first")
        repeats, f = good[dup], first[dup]
        same = (repeats["value"] == f["value"]).to_numpy()
        drop[repeats.index[same]] = True
        conflict, fc = repeats[~same], f[~same]
        if len(conflict):
            mask = np.zeros(n, dtype=bool)
            mask[conflict.index] = True
            details = np.empty(n, dtype=object)
            details[conflict.index] = [
                f"duplicate of line {ln} (same model, seed, tokens, metric) with a different value: "
                f"{v!r} here, {fv!r} on line {ln}"
                for ln, v, fv in zip(fc["line"], conflict["value"], fc["value"])
            ]
            flag(mask, "value", "{}", _Raw.wrap(details))

    problems.sort(key=lambda pr: (pr.line, pr.column))
    if problems and not skip_invalid:
        raise CorpusValidationError(problems, what=what)
    result = out[~bad & ~drop].reset_index(drop=True)[list(CANONICAL_COLUMNS) + ["line"]]
    # Counts for reports: every data row read, and the repeats dropped as identical.
    result.attrs["rows_read"] = n
    result.attrs["duplicates_dropped"] = int(drop.sum())
    return result, problems


class _Raw(str):
    """A prepared message that _short must not quote."""

    @classmethod
    def wrap(cls, values):
        return np.array([cls(v) if v is not None else None for v in values], dtype=object)


def frame_to_raw(df: pd.DataFrame) -> pd.DataFrame:
    """Turn an in-memory canonical frame (any dtypes) into the string form validate_canonical takes.

    Floats are written with repr so no precision is lost; a ``line`` column is
    kept if present, else rows are numbered as if read from a file.
    """
    missing = [c for c in CANONICAL_COLUMNS if c not in df.columns]
    if missing:
        raise CorpusValidationError([Problem(1, c, "missing column") for c in missing], what="corpus table")
    raw = pd.DataFrame(index=df.index)
    for col in CANONICAL_COLUMNS:
        raw[col] = format_column(df[col])
    raw["line"] = df["line"].to_numpy() if "line" in df.columns else np.arange(2, len(df) + 2)
    return raw.reset_index(drop=True)


def format_column(series: pd.Series) -> pd.Series:
    """Canonical text of one column: empty for missing, repr for floats (round-trip exact)."""
    if pd.api.types.is_float_dtype(series):
        values = series.to_numpy(dtype="float64")
        text = np.array([repr(x) for x in values.tolist()], dtype=object)
        text[np.isnan(values)] = ""
        return pd.Series(text, index=series.index)
    if pd.api.types.is_integer_dtype(series):
        return series.astype("string").fillna("").astype(object)
    return series.astype(object).where(series.notna(), "").astype(str)


def read_families(source) -> pd.DataFrame:
    """Read a families file (the format of ../shared/corpus/families.csv).

    Columns: family (required, unique), arch, dataset, primary_metric, source,
    notes, and the informational n_models, param_sizes, max_tokens, n_rows.
    Only ``family`` must be present in the header; absent optional columns
    read as "". Returns one row per family with text columns stripped.
    """
    data = _without_bom(_read_bytes(source))
    header = _check_header(data, FAMILIES_COLUMNS, required=("family",))
    raw = _parse_table(data, header)
    raw = _drop_blank_rows(raw, header).reset_index(drop=True)
    for col in FAMILIES_COLUMNS:
        raw[col] = raw[col].astype(str).str.strip() if col in raw.columns else ""
    reasons = _check_by_value(raw["family"].to_numpy(dtype=object), lambda v: name_problem(v, "family"))
    problems = _problems(raw, reasons != None, "family", "{}", _Raw.wrap(reasons))  # noqa: E711 (elementwise)
    problems += _problems(raw, (raw["arch"] != "") & ~raw["arch"].isin(ARCHES), "arch",
                          "must be empty or one of " + ", ".join(ARCHES) + "; got {}", raw["arch"])
    dup = raw.duplicated("family", keep="first") & (raw["family"] != "")
    problems += _problems(raw, dup, "family", "family listed more than once")
    if problems:
        raise CorpusValidationError(problems, what="families file")
    return raw[list(FAMILIES_COLUMNS) + ["line"]]
