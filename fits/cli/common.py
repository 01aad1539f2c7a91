"""What every ``python -m fits`` command shares: argument types, reading corpora, writing JSON, errors."""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..canonical import CorpusValidationError, read_canonical, read_families
from ..data import primary_observations
from ..jsonsafe import json_safe

OUTPUT_VERSION = 2
EXIT_BAD_INPUT = 2


class CliError(Exception):
    """Bad input from the command line; the message is shown as is."""


def positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def fraction(text: str) -> float:
    value = positive_number(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text!r}")
    return value


def load_frame(corpus: Path, families: Path | None = None) -> pd.DataFrame:
    """One corpus's primary-metric fit frame, with each family's ``source`` (the citation most rows carry).

    The corpus is validated (errors name line and column); without ``families``, a
    ``families.csv`` beside the corpus file names the primary metrics when it is there.
    """
    if not corpus.is_file():
        raise CliError(f"corpus file not found: {corpus}")
    if families is None:
        beside = corpus.with_name("families.csv")
        families = beside if beside.is_file() else None
    elif not families.is_file():
        raise CliError(f"families file not found: {families}")
    raw = _read(read_canonical, corpus)[0]
    table = _read(read_families, families) if families is not None else None
    try:
        frame = primary_observations(raw, table)
    except ValueError as exc:  # a family with no loss-like metric
        raise CliError(f"{corpus}: {exc}") from None
    if frame.empty:
        raise CliError(f"{corpus}: no observations of a primary (loss) metric")
    if "source" in raw.columns:
        sources = raw.groupby("family")["source"].agg(lambda s: s.value_counts().index[0])
        frame["source"] = frame["family"].map(sources).fillna("").to_numpy()
    return frame


def load_frames(corpora: list[Path], families: list[Path] | None = None) -> pd.DataFrame:
    """Several corpora as one frame (``families``: one families file per corpus, or none)."""
    if families and len(families) != len(corpora):
        raise CliError(f"give one families file per corpus ({len(corpora)}), not {len(families)}")
    parts = [load_frame(c, families[i] if families else None) for i, c in enumerate(corpora)]
    seen = {}
    for corpus, part in zip(corpora, parts):
        for family in part["family"].unique():
            if family in seen:
                raise CliError(f"family {family!r} is in both {seen[family]} and {corpus}: give each corpus once")
            seen[family] = corpus
    return pd.concat(parts, ignore_index=True)


def _read(reader, path: Path):
    try:
        return reader(path)
    except CorpusValidationError as exc:  # already names file line, column and reason
        raise CliError(f"{path}: {exc}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None


def write_json(path: Path, payload: dict) -> None:
    try:
        path.write_text(json.dumps(json_safe(payload), indent=1, allow_nan=False) + "\n")
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc}") from None


def pct(x) -> str:
    return "failed" if x is None or not np.isfinite(x) else f"{100 * x:.2f}%"


def progress_bar(label: str, quiet: bool):
    """A tqdm bar on stderr and the ``progress(done, total, name)`` callback that drives it."""
    from tqdm import tqdm

    bar = tqdm(total=None, unit="family", desc=label, file=sys.stderr, disable=quiet)

    def progress(done, total, name):
        bar.total = total
        bar.set_postfix_str(str(name)[:40], refresh=False)
        bar.update(done - bar.n)

    return bar, progress


def short_source(source: str) -> str:
    """A readable label for a source citation (the paper, without the arXiv id and the 'via')."""
    return source.split(" arXiv")[0].split(" (")[0].split(" via")[0].strip()[:40] or "(no source)"
