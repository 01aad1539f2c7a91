"""Import of canonical corpus rows into Family -> Run -> Observation.

One service, :func:`import_canonical`: validated (fits.canonical), atomic,
idempotent, and bulk (COPY on PostgreSQL, batched executemany elsewhere).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import psycopg
from django.db import InterfaceError, OperationalError, connection, transaction

from fits import CorpusValidationError, Problem, frame_to_raw, primary_metrics, read_canonical, validate_canonical

from .models import Family, Observation, Run

_OBS_FIELDS = ("step", "epochs", "flops", "split", "dataset", "source")
_BATCH = 5000


class ImportInterrupted(Exception):
    """The database connection was lost inside the import's transaction: nothing of it was written."""


# Errors as Django raises them, and as psycopg raises them from inside a COPY
# (Django does not wrap the copy object).
_DATABASE_ERRORS = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)


def _is_connection_loss(exc) -> bool:
    """A lost connection, not a refused statement (a timeout, a lock): by the error's SQLSTATE.

    No SQLSTATE: the client saw the socket close; class 08: connection exception;
    57P01-57P04: the server or an operator ended the session (pg_terminate_backend,
    shutdown, crash). By then Django has already reconnected (leaving the atomic
    block resets autocommit), so the connection itself cannot tell.
    """
    cause = exc if isinstance(exc, psycopg.Error) else exc.__cause__
    if not isinstance(cause, (psycopg.OperationalError, psycopg.InterfaceError)):
        return False
    state = cause.sqlstate or ""
    return state == "" or state.startswith("08") or state in ("57P01", "57P02", "57P03", "57P04")


@dataclass
class ImportReport:
    rows_read: int = 0
    rows_inserted: int = 0
    rows_unchanged: int = 0
    rows_replaced: int = 0
    rows_skipped: int = 0
    families_created: int = 0
    runs_created: int = 0
    problems: list[Problem] = field(default_factory=list)
    families: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["problems"] = [p.to_dict() for p in self.problems]
        return data

    def summary(self) -> str:
        return (
            f"{self.rows_read} rows read: {self.rows_inserted} inserted, {self.rows_replaced} replaced, "
            f"{self.rows_unchanged} unchanged, {self.rows_skipped} skipped; "
            f"{self.families_created} families and {self.runs_created} runs created; "
            f"{len(self.families)} families touched"
        )


def _mode_per_family(runs: pd.DataFrame, column: str) -> pd.Series:
    counts = runs.loc[runs[column] != "", ["family", column]].value_counts().reset_index()
    counts = counts.sort_values(["family", "count", column], ascending=[True, False, True])
    return counts.drop_duplicates("family").set_index("family")[column]


def _as_rows(source, *, skip_invalid: bool, limits: dict) -> tuple[pd.DataFrame, list[Problem]]:
    if isinstance(source, pd.DataFrame):
        rows, problems = validate_canonical(frame_to_raw(source), skip_invalid=skip_invalid)
    else:
        rows, problems = read_canonical(source, skip_invalid=skip_invalid, **limits)
    return rows, problems


def _chunks(values, size=900):
    values = list(values)
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _existing_runs(models) -> pd.DataFrame:
    found = []
    for chunk in _chunks(models):
        found += Run.objects.filter(name__in=chunk).values_list("id", "name", "seed", "family__name", "arch", "params")
    return pd.DataFrame(found, columns=["run_id", "model", "seed", "family", "arch", "params"])


def _existing_observations(run_ids) -> pd.DataFrame:
    found = []
    for chunk in _chunks(run_ids):
        found += Observation.objects.filter(run_id__in=chunk).values_list(
            "id", "run_id", "metric", "tokens", "value", *_OBS_FIELDS
        )
    cols = ["obs_id", "run_id", "metric", "tokens", "db_value"] + [f"db_{f}" for f in _OBS_FIELDS]
    return pd.DataFrame(found, columns=cols)


def _reject(rows, mask, problems, column, reasons):
    lines = rows.loc[mask, "line"].to_numpy()
    problems.extend(Problem(int(ln), column, r) for ln, r in zip(lines, reasons))


def _check_against_database(rows: pd.DataFrame, *, replace: bool) -> tuple[pd.DataFrame, list[Problem]]:
    """Attach run_id/obs_id and a per-row action; report rows that contradict stored data."""
    problems: list[Problem] = []
    runs = _existing_runs(rows["model"].unique())
    rows = rows.copy()
    bad = np.zeros(len(rows), dtype=bool)
    if len(runs):
        # A model name is one run whatever its seed: family/arch/params are fixed.
        per_model = runs.drop_duplicates("model").set_index("model")
        for col in ("family", "arch", "params"):
            stored = rows["model"].map(per_model[col])
            mask = (stored.notna() & (stored != rows[col])).to_numpy()
            if mask.any():
                _reject(rows, mask, problems, col, [
                    f"run {m!r} is stored with {col} {s!r}, the file says {v!r}; a run cannot change {col}"
                    for m, s, v in zip(rows["model"][mask], stored[mask], rows[col][mask])
                ])
                bad |= mask
        rows = rows.merge(runs[["run_id", "model", "seed"]], on=["model", "seed"], how="left")
    else:
        rows["run_id"] = np.nan

    rows["action"] = "insert"
    known = rows["run_id"].notna().to_numpy() & ~bad
    if known.any():
        obs = _existing_observations(rows.loc[known, "run_id"].astype("int64").unique())
        if len(obs):
            rows = rows.merge(obs, on=["run_id", "metric", "tokens"], how="left")
            stored = rows["obs_id"].notna().to_numpy()
            same_value = (rows["db_value"] == rows["value"]).to_numpy()
            same_rest = np.ones(len(rows), dtype=bool)
            for f in _OBS_FIELDS:
                a, b = rows[f], rows[f"db_{f}"]
                same_rest &= ((a == b) | (a.isna() & b.isna())).to_numpy(dtype=bool, na_value=False)
            if replace:
                rows.loc[stored & ~(same_value & same_rest), "action"] = "update"
                rows.loc[stored & same_value & same_rest, "action"] = "unchanged"
            else:
                # Without replace a matching value is enough: stored metadata wins.
                rows.loc[stored & same_value, "action"] = "unchanged"
                conflict = stored & ~same_value & ~bad
                if conflict.any():
                    _reject(rows, conflict, problems, "value", [
                        f"run {m!r} already has {met!r} at tokens {t!r} = {s!r}, the file says {v!r} "
                        "(use replace to overwrite)"
                        for m, met, t, s, v in zip(rows["model"][conflict], rows["metric"][conflict],
                                                   rows["tokens"][conflict], rows["db_value"][conflict],
                                                   rows["value"][conflict])
                    ])
                    bad |= conflict
    if "obs_id" not in rows.columns:
        rows["obs_id"] = np.nan
    rows["bad"] = bad
    return rows, problems


def _family_defaults(rows: pd.DataFrame) -> pd.DataFrame:
    """arch/dataset/source/primary metric of each family as its rows suggest.

    dataset and source are the most common among the family's runs (each run
    counted by its first row): one value per run, whatever its row count.
    """
    codes, _ = pd.factorize(rows["model"])
    _, first = np.unique(codes, return_index=True)
    runs = rows.iloc[first]
    names = pd.Index(sorted(runs["family"].unique()), name="family")
    arch_count = runs.groupby("family")["arch"].nunique()
    out = pd.DataFrame(index=names)
    out["arch"] = runs.groupby("family")["arch"].first().where(arch_count == 1, "")
    out["dataset"] = _mode_per_family(runs, "dataset")
    out["source"] = _mode_per_family(runs, "source")
    out["primary_metric"] = primary_metrics(rows)
    out["notes"] = ""
    return out.fillna("")


def _upsert_families(rows, families, *, replace, report) -> dict[str, int]:
    names = sorted(rows["family"].unique())
    defaults = _family_defaults(rows)
    given = families.set_index("family") if families is not None else None
    fields = ("arch", "dataset", "source", "primary_metric", "notes")
    existing = {f.name: f for f in Family.objects.filter(name__in=names)}
    to_create, to_update = [], []
    for name in names:
        wanted = dict(defaults.loc[name, list(fields)])
        if given is not None and name in given.index:
            # The families file is the curated word: it overrides what the rows suggest.
            wanted.update({k: v for k, v in given.loc[name, list(fields)].items() if v})
        family = existing.get(name)
        if family is None:
            to_create.append(Family(name=name, **wanted))
            continue
        # Existing families keep curated fields unless replacing; blanks are filled.
        changed = False
        for key in fields:
            if wanted[key] and (replace and given is not None and name in given.index or not getattr(family, key)):
                if getattr(family, key) != wanted[key]:
                    setattr(family, key, wanted[key])
                    changed = True
        if changed:
            to_update.append(family)
    Family.objects.bulk_create(to_create, batch_size=_BATCH)
    if to_update:
        Family.objects.bulk_update(to_update, fields, batch_size=_BATCH)
    report.families_created = len(to_create)
    report.families = names
    return dict(Family.objects.filter(name__in=names).values_list("name", "id"))


def _create_runs(rows, family_ids, report) -> pd.DataFrame:
    new = rows[rows["run_id"].isna()].drop_duplicates(["model", "seed"])
    Run.objects.bulk_create(
        [Run(family_id=family_ids[r.family], name=r.model, seed=r.seed, arch=r.arch, params=int(r.params))
         for r in new.itertuples(index=False)],
        batch_size=_BATCH,
    )
    report.runs_created = len(new)
    if len(new):
        created = _existing_runs(new["model"].unique())[["run_id", "model", "seed"]]
        rows = rows.merge(created, on=["model", "seed"], how="left", suffixes=("", "_new"))
        rows["run_id"] = rows["run_id"].fillna(rows["run_id_new"])
        rows = rows.drop(columns="run_id_new")
    rows["run_id"] = rows["run_id"].astype("int64")
    return rows


_COPY_COLUMNS = ("obs_id", "run_id", "tokens", "metric", "value") + _OBS_FIELDS
_COPY_TYPES = ("int8", "int8", "float8", "text", "float8", "int8", "float8", "float8", "text", "text", "text")


def _records(frame: pd.DataFrame, obs_id) -> list[tuple]:
    """Row tuples for COPY/executemany, None for missing values (binary COPY: floats travel exactly)."""
    columns = [] if obs_id is None else [obs_id]
    for col in _COPY_COLUMNS[1:]:
        series = frame[col]
        if col == "step":
            values = series.astype("Int64").to_numpy(dtype=object, na_value=None).tolist()
        elif col in ("epochs", "flops"):
            array = series.to_numpy(dtype="float64")
            values = np.where(np.isnan(array), None, array).tolist()
        elif col == "run_id":
            values = series.to_numpy(dtype="int64").tolist()
        else:
            values = series.to_numpy(dtype=object if col not in ("tokens", "value") else "float64").tolist()
        columns.append(values)
    return list(zip(*columns))


# A load counts as bulk when it brings at least this many rows and at least
# this share of the table's size after the import.
_BULK_MIN_ROWS = 20_000
_BULK_MIN_SHARE = 0.3


def _is_bulk_load(n_rows: int) -> bool:
    if n_rows < _BULK_MIN_ROWS:
        return False
    with connection.cursor() as cursor:
        # The planner's estimate is enough here and costs nothing (COUNT(*) would scan).
        cursor.execute("SELECT GREATEST(reltuples, 0) FROM pg_class WHERE oid = %s::regclass",
                       [Observation._meta.db_table])
        estimate = cursor.fetchone()[0]
    return n_rows >= _BULK_MIN_SHARE * (estimate + n_rows)


def _run_foreign_key(cursor) -> str | None:
    table = Observation._meta.db_table
    for name, info in connection.introspection.get_constraints(cursor, table).items():
        if info["foreign_key"] == (Run._meta.db_table, "id") and info["columns"] == ["run_id"]:
            return name
    return None


def _write_postgresql(inserts: pd.DataFrame, updates: pd.DataFrame, *, bulk: bool = False) -> None:
    """COPY new rows straight into the table; replaced rows go through a temp table and one UPDATE.

    No ON CONFLICT is needed for the COPY: import_canonical holds a lock that
    keeps other writers out, and new rows were diffed against the table under it.

    Bulk loads (the whole corpus into an empty or small table) drop the
    observation -> run foreign key for the COPY and add it back after, as the
    PostgreSQL manual advises for populating a database: one validating join
    instead of a trigger call per row, which more than halves the database's
    work. It is all one transaction, so the constraint is never absent for
    anyone else (the table is locked ACCESS EXCLUSIVE meanwhile).
    """
    table = Observation._meta.db_table
    with connection.cursor() as cursor:
        if len(inserts):
            foreign_key = _run_foreign_key(cursor) if bulk and len(inserts) >= _BULK_MIN_ROWS else None
            if foreign_key:
                # ALTER refuses while deferred checks (the runs just created) are pending: run them now.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{foreign_key}"')
            with cursor.copy(f"COPY {table} ({', '.join(_COPY_COLUMNS[1:])}) FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(list(_COPY_TYPES[1:]))
                for record in _records(inserts, None):
                    copy.write_row(record)
            if foreign_key:
                # Same definition as Django's migration creates.
                cursor.execute(
                    f'ALTER TABLE {table} ADD CONSTRAINT "{foreign_key}" FOREIGN KEY (run_id) '
                    f"REFERENCES {Run._meta.db_table} (id) DEFERRABLE INITIALLY DEFERRED"
                )
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # back to Django's default
        if len(updates):
            # ON COMMIT DROP cleans up; the DROP covers a second import in one transaction.
            cursor.execute("DROP TABLE IF EXISTS scaleplan_import_rows")
            cursor.execute(
                "CREATE TEMP TABLE scaleplan_import_rows (obs_id bigint, run_id bigint, tokens double precision, "
                "metric text, value double precision, step bigint, epochs double precision, "
                "flops double precision, split text, dataset text, source text) ON COMMIT DROP"
            )
            with cursor.copy(
                f"COPY scaleplan_import_rows ({', '.join(_COPY_COLUMNS)}) FROM STDIN WITH (FORMAT BINARY)"
            ) as copy:
                copy.set_types(list(_COPY_TYPES))
                for record in _records(updates, [int(i) for i in updates["obs_id"]]):
                    copy.write_row(record)
            sets = ", ".join(f"{c} = r.{c}" for c in ("value",) + _OBS_FIELDS)
            cursor.execute(
                f"UPDATE {table} AS o SET {sets} FROM scaleplan_import_rows AS r WHERE o.id = r.obs_id"
            )


def _write_other(inserts: pd.DataFrame, updates: pd.DataFrame) -> None:
    """SQLite (and other engines): batched executemany for new rows, bulk_update for replaced ones.

    executemany over plain tuples rather than bulk_create: building 200k model
    instances costs most of the time on SQLite and buys nothing here.
    """
    table = Observation._meta.db_table
    columns = _COPY_COLUMNS[1:]
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
    records = _records(inserts, None)
    with connection.cursor() as cursor:
        for start in range(0, len(records), _BATCH):
            cursor.executemany(sql, records[start : start + _BATCH])
    if len(updates):
        objs = [
            Observation(pk=int(pk), **dict(zip(columns, record)))
            for pk, record in zip(updates["obs_id"], _records(updates, None))
        ]
        Observation.objects.bulk_update(objs, ("value",) + _OBS_FIELDS, batch_size=_BATCH)


def upload_limits() -> dict:
    """Size limits for corpus files from users (uploads): rows, and bytes after decompression."""
    from django.conf import settings

    return {"max_rows": settings.SCALEPLAN_MAX_IMPORT_ROWS, "max_bytes": settings.SCALEPLAN_MAX_DECOMPRESSED_BYTES}


def import_canonical(
    source, *, skip_invalid=False, replace=False, families=None, progress=None, limits=None
) -> ImportReport:
    """Import canonical corpus rows; all or nothing.

    ``source``: a path or file object (see fits.canonical.read_canonical) or a
    DataFrame with the canonical columns (validated again here).
    ``families``: optional frame from fits.canonical.read_families; its arch,
    dataset, source, notes and primary_metric are used for new families and
    fill blanks of existing ones (with ``replace`` they overwrite them).
    ``progress``: optional ``callable(fraction, message)``.
    ``limits``: optional ``{"max_rows", "max_bytes"}`` for a file from a user
    (:func:`upload_limits`); over a limit, fits.canonical.CorpusTooLarge.

    Rules beyond the file's own (CORPUS_FORMAT.md):
    - a row for a stored run (model) with another family, arch or params is an error;
    - a row whose (run, metric, tokens) is stored with the same value is
      unchanged (re-importing a file changes nothing); with another value it is
      an error, unless ``replace``: then the value and step/epochs/flops/split/
      dataset/source are overwritten (rows_replaced);
    - any error raises CorpusValidationError and writes nothing, unless
      ``skip_invalid``: then only the good rows are written and the rest are in
      ``report.problems`` / ``rows_skipped``.
    New families get a primary metric from ``families`` if given, else by
    fits.choose_primary_metric (a loss, validation over training).
    No jobs are enqueued here.
    """
    def tell(fraction, message):
        if progress is not None:
            progress(fraction, message)

    report = ImportReport()
    tell(0.0, "reading and validating")
    rows, problems = _as_rows(source, skip_invalid=skip_invalid, limits=limits or {})
    report.rows_read = rows.attrs["rows_read"]
    duplicates = rows.attrs["duplicates_dropped"]
    tell(0.3, f"{len(rows)} valid rows; comparing with the stored corpus")
    try:
        written = _import_rows(rows, problems, duplicates, report, skip_invalid=skip_invalid, replace=replace,
                               families=families, tell=tell)
    except _DATABASE_ERRORS as exc:
        if not _is_connection_loss(exc):
            raise
        # Lost inside the transaction, so the server rolled it back. (Lost during COMMIT
        # itself it may have committed; importing the file again is right either way.)
        reason = str(exc).splitlines()[0]
        raise ImportInterrupted(
            f"The database connection was lost during the import ({reason}); its transaction was rolled back, "
            "so nothing of this file was written. Upload it again: importing is idempotent."
        ) from exc
    if written:
        tell(1.0, report.summary())
    return report


def _import_rows(rows, problems, duplicates, report, *, skip_invalid, replace, families, tell) -> bool:
    """import_canonical's transaction: compare with the stored corpus and write. False if nothing was to write."""
    with transaction.atomic():
        bulk = False
        if connection.vendor == "postgresql":
            bulk = _is_bulk_load(len(rows))
            # Serialise imports so the comparison below holds until commit. Reads
            # stay allowed, except during a bulk load (see _write_postgresql).
            mode = "ACCESS EXCLUSIVE" if bulk else "SHARE ROW EXCLUSIVE"
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {Observation._meta.db_table} IN {mode} MODE")
        rows, db_problems = _check_against_database(rows, replace=replace)
        problems = sorted(problems + db_problems, key=lambda p: (p.line, p.column))
        if db_problems and not skip_invalid:
            raise CorpusValidationError(problems)
        rows = rows[~rows["bad"]]
        report.rows_skipped = len({p.line for p in problems})
        report.problems = problems
        # Repeats inside the file count as unchanged: they add nothing.
        report.rows_unchanged = int((rows["action"] == "unchanged").sum()) + duplicates
        if rows.empty:
            tell(1.0, "nothing to import")
            return False

        tell(0.45, "writing families and runs")
        family_ids = _upsert_families(rows, families, replace=replace, report=report)
        rows = _create_runs(rows, family_ids, report)

        inserts = rows[rows["action"] == "insert"]
        updates = rows[rows["action"] == "update"]
        tell(0.6, f"writing {len(inserts)} new and {len(updates)} replaced observations")
        if connection.vendor == "postgresql":
            _write_postgresql(inserts, updates, bulk=bulk)
        else:
            _write_other(inserts, updates)
        report.rows_inserted = len(inserts)
        report.rows_replaced = len(updates)
    return True


__all__ = ["ImportInterrupted", "ImportReport", "import_canonical", "upload_limits"]
