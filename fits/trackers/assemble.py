"""From a reader's scalars to the canonical runs table, and the report of everything not kept.

The runs table has the columns of "Runs for a prediction" (../shared/CORPUS_FORMAT.md): ``model,
params, tokens, value`` plus ``step`` and ``metric``, and ``run_tokens`` when some run's planned
length is known. Every value read is either a row of it or a line of the report: per value for
reasons that concern one value (a step written twice, a NaN, step 0), per run and series for reasons
that concern them all (a run with no parameter count, a series that is not the metric).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .core import (OTHER_SERIES, PARAM_KEYS, RunsImportError, Scalars, find_param_count, model_name,
                   parse_positive)
from .params import ParamsTable

REPORT_VERSION = 1
SKIPPED_COLUMNS = ["source", "run", "metric", "first_step", "last_step", "count", "value", "reason"]
RUN_COLUMNS = ["run", "model", "source", "status", "params", "params_from", "tokens_per_step", "run_tokens",
               "rows_kept", "rows_skipped", "first_step", "last_step"]
IMPORTED = "imported"


@dataclass
class ImportReport:
    """What happened to every value read. ``runs``: one row per run found (RUN_COLUMNS, ``status``
    "imported" or why not); ``skipped``: values not in the table with the reason (SKIPPED_COLUMNS; one
    row per value, or per run and series with ``count``), so that ``values_read`` = ``rows_kept`` +
    ``tokens_values_used`` + the skipped counts; ``unknown_params``: runs the params table
    names that no input holds; ``ignored_files``: (path, reason) of files not read."""

    source: str
    input: str
    metric: str
    tokens: str
    runs: pd.DataFrame
    skipped: pd.DataFrame
    unknown_params: list[str] = field(default_factory=list)
    ignored_files: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    values_read: int = 0
    rows_kept: int = 0
    tokens_values_used: int = 0  # values of a tokens series that gave the tokens of a kept row

    def to_dict(self) -> dict:
        """Plain JSON types, versioned (for a JSONField or an API response)."""
        def records(frame):
            out = []
            for row in frame.to_dict(orient="records"):
                out.append({k: _plain(v) for k, v in row.items()})
            return out

        return {"version": REPORT_VERSION, "source": self.source, "input": self.input, "metric": self.metric,
                "tokens": self.tokens, "values_read": self.values_read, "rows_kept": self.rows_kept,
                "tokens_values_used": self.tokens_values_used,
                "values_skipped": int(self.skipped["count"].sum()), "runs": records(self.runs),
                "skipped": records(self.skipped), "unknown_params": list(self.unknown_params),
                "ignored_files": [{"path": p, "reason": r} for p, r in self.ignored_files],
                "notes": list(self.notes)}

    def lines(self, max_lines: int = 20) -> list[str]:
        """A human summary: counts, runs not imported, the main reasons values were skipped."""
        imported = self.runs[self.runs["status"] == IMPORTED]
        other = self.skipped["reason"] == OTHER_SERIES
        out = [f"{self.source}: {len(imported)} of {len(self.runs)} runs imported, {self.rows_kept} rows "
               f"({self.metric!r}; tokens {self.tokens}) from {self.values_read} values read"]
        if other.any():
            names = sorted(set(self.skipped.loc[other, "metric"]))
            out.append(f"other series, not imported: {int(self.skipped.loc[other, 'count'].sum())} values of "
                       f"{len(names)} series ({', '.join(names[:8])}{', ...' if len(names) > 8 else ''})")
        for row in self.runs[self.runs["status"] != IMPORTED].itertuples():
            out.append(f"run {row.run!r} ({row.source}) not imported: {row.status}")
        if (~other).any():
            skipped = self.skipped[~other].groupby("reason", sort=False)["count"].sum()
            for reason, n in skipped.sort_values(ascending=False).items():
                out.append(f"skipped {int(n)} value(s): {reason}")
        if self.unknown_params:
            out.append("the params name runs not found: " + ", ".join(self.unknown_params))
        if self.ignored_files:
            out.append(f"{len(self.ignored_files)} file(s) not read, e.g. {self.ignored_files[0][0]} "
                       f"({self.ignored_files[0][1]})")
        out += self.notes
        return out if len(out) <= max_lines else out[:max_lines] + [f"... and {len(out) - max_lines} more lines"]


@dataclass
class RunsImport:
    """The canonical runs table (``frame``) and what happened to every value read (``report``)."""

    frame: pd.DataFrame
    report: ImportReport

    def to_dict(self) -> dict:
        return {"version": REPORT_VERSION, "rows": [{k: _plain(v) for k, v in r.items()}
                                                     for r in self.frame.to_dict(orient="records")],
                "report": self.report.to_dict()}


def _plain(value):
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


def _skips(frame: pd.DataFrame, reason) -> pd.DataFrame:
    """One skipped row per value: ``frame`` holds run, metric, step, value, source; reason a str or array."""
    return pd.DataFrame({"source": frame["source"].to_numpy(dtype=object), "run": frame["run"].to_numpy(dtype=object),
                         "metric": frame["metric"].to_numpy(dtype=object), "first_step": frame["step"].to_numpy(),
                         "last_step": frame["step"].to_numpy(), "count": np.ones(len(frame), dtype=np.int64),
                         "value": frame["value"].to_numpy(), "reason": reason})


def _grouped_skips(frame: pd.DataFrame, reason: str) -> pd.DataFrame:
    """One skipped row per (source, run, metric) of ``frame``."""
    if frame.empty:
        return pd.DataFrame(columns=SKIPPED_COLUMNS)
    g = frame.groupby(["source", "run", "metric"], sort=False)["step"].agg(["min", "max", "size"]).reset_index()
    return pd.DataFrame({"source": g["source"], "run": g["run"], "metric": g["metric"], "first_step": g["min"],
                         "last_step": g["max"], "count": g["size"].astype(np.int64), "value": np.nan,
                         "reason": reason})


def _keep_last_write(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (run, metric, step) the latest write; the earlier ones returned apart."""
    ordered = frame.sort_values(["run", "metric", "step", "order"], kind="stable")
    later = ordered.duplicated(["run", "metric", "step"], keep="last").to_numpy()
    return ordered[~later], ordered[later]


def assemble(scalars: Scalars, *, source: str, input_label: str, metric: str, tokens_per_step,
             tokens_column: str | None, params: ParamsTable | None, params_key: str | None,
             select: set[str] | None) -> RunsImport:
    data = scalars.frame
    values_read = len(data) + int(scalars.other["count"].sum())
    series_seen = sorted(set(data["metric"]) | set(scalars.other["metric"]))
    if metric not in series_seen:  # (a run left out, e.g. deleted, has its series counted in `other`)
        shown = ", ".join(repr(s) for s in series_seen[:30]) or "none"
        raise RunsImportError(f"no run logs the metric {metric!r}; series found: {shown}", path=input_label,
                              field="metric")
    if tokens_column is not None and tokens_column not in series_seen:
        shown = ", ".join(repr(s) for s in series_seen[:30])
        raise RunsImportError(f"no run logs the tokens series {tokens_column!r}; series found: {shown}",
                              path=input_label, field="tokens_column")

    # Other series are counted per run and series.
    skipped = [scalars.other.assign(first_step=np.nan, last_step=np.nan, value=np.nan)[SKIPPED_COLUMNS]]
    run_rows = []
    kept_parts = []
    matched_params: set[str] = set()
    models: dict[str, str] = {}
    notes = list(scalars.notes)
    tokens_used = 0  # values of the tokens series that became the tokens of a kept row

    by_run = {run: part for run, part in data.groupby("run", sort=False)}
    for run, info in scalars.runs.items():
        part = by_run.get(run, data.iloc[:0])
        model = model_name(run)
        if model in models and models[model] != run:
            raise RunsImportError(f"runs {models[model]!r} and {run!r} both become model name {model!r}; rename one",
                                  path=input_label, field="run")
        models[model] = run
        if model != run:
            notes.append(f"run {run!r} is named {model!r} in the table (names hold no '/', control characters "
                         "or a leading = + - @)")
        row = {"run": run, "model": model, "source": info.source, "status": IMPORTED, "params": None,
               "params_from": "", "tokens_per_step": None, "run_tokens": None, "rows_kept": 0, "rows_skipped": 0,
               "first_step": None, "last_step": None}
        run_rows.append(row)
        loss = part[part["metric"] == metric]
        toks = part[part["metric"] == tokens_column] if tokens_column is not None else part.iloc[:0]

        def drop_run(status, reason=None):
            row["status"] = status
            row["rows_skipped"] = len(loss)
            skipped.append(_grouped_skips(part, reason or status))

        given = params.lookup([run, model, *info.aliases]) if params is not None else None
        if given is not None:
            matched_params.add(given[0])  # named in the params: not an unknown run, even if left out below
        if info.status:
            drop_run(info.status)
            continue
        if select is not None and not ({run, model, *info.aliases} & select):
            drop_run("not selected")
            continue
        if loss.empty:
            drop_run(f"does not log {metric!r}", f"run does not log {metric!r}")
            continue

        # Parameter count: the params table first, then the tracker's own config.
        entry = None
        if given is not None:
            entry = given[1]
            row["params"], row["params_from"] = entry.params, entry.params_from
        else:
            found = find_param_count(info.config, params_key, where=info.source)
            if found is not None:
                row["params"], row["params_from"] = found[0], f"{source} config: {found[1]}"
        if row["params"] is None:
            where = f"not in {params.label}" if params is not None else "no params given"
            keys = repr(params_key) if params_key else "none of " + ", ".join(PARAM_KEYS)
            drop_run("no parameter count", f"no parameter count for the run ({where}; its config has {keys})")
            continue

        # Steps: integers >= 0; of two writes of one step the later is kept.
        steps = loss["step"].to_numpy()
        bad_step = ~np.isfinite(steps) | (steps < 0) | (np.floor(steps) != steps)
        loss_ok = loss[~bad_step]
        parts_skipped = [_skips(loss[bad_step], "step is not a non-negative integer")]
        loss_ok, rewritten = _keep_last_write(loss_ok)
        parts_skipped.append(_skips(rewritten, "the same step was written again later (a restart or resumed "
                                               "run?): the later value is kept"))
        finite = np.isfinite(loss_ok["value"].to_numpy())
        parts_skipped.append(_skips(loss_ok[~finite], "value is not a finite number"))
        loss_ok = loss_ok[finite]

        if tokens_column is None:
            per_step = entry.tokens_per_step if entry is not None and entry.tokens_per_step else None
            if per_step is None and isinstance(tokens_per_step, Mapping):
                lookup = next((tokens_per_step[k] for k in (run, model, *info.aliases) if k in tokens_per_step), None)
                per_step = parse_positive(lookup)
            elif per_step is None:
                per_step = tokens_per_step
            if per_step is None:
                drop_run("no tokens per step", "no tokens per step for the run (tokens_per_step names other runs)")
                continue
            row["tokens_per_step"] = per_step
            tokens = loss_ok["step"].to_numpy() * per_step
            zero = tokens <= 0
            parts_skipped.append(_skips(loss_ok[zero], "step 0: no tokens seen yet"))
            loss_ok = loss_ok[~zero].assign(tokens=tokens[~zero])
        else:
            tok_steps = toks["step"].to_numpy()
            tok_ok = toks[np.isfinite(tok_steps) & (tok_steps >= 0) & (np.floor(tok_steps) == tok_steps)]
            tok_ok, tok_rewritten = _keep_last_write(tok_ok)
            merged = loss_ok.merge(tok_ok[["step", "value"]].rename(columns={"value": "tokens"}), on="step",
                                   how="left")
            missing = merged["tokens"].isna().to_numpy() & ~np.isin(merged["step"], tok_ok["step"])
            parts_skipped.append(_skips(merged[missing], f"no {tokens_column!r} value at this step"))
            merged = merged[~missing]
            t = merged["tokens"].to_numpy()
            bad_t = ~np.isfinite(t) | (t <= 0)
            parts_skipped.append(_skips(merged[bad_t], f"{tokens_column!r} is not a positive number at this step"))
            loss_ok = merged[~bad_t]
            used = np.isin(tok_ok["step"], loss_ok["step"])
            skipped.append(_grouped_skips(tok_ok[~used], f"{tokens_column!r} at a step with no {metric!r} row kept"))
            tokens_used += int(used.sum())
            skipped.append(_grouped_skips(tok_rewritten, f"{tokens_column!r} written again later at the same step"))
            bad_tok_steps = toks[~np.isin(toks.index, tok_ok.index) & ~np.isin(toks.index, tok_rewritten.index)]
            skipped.append(_grouped_skips(bad_tok_steps, f"{tokens_column!r} at a step that is not a "
                                                         "non-negative integer"))
            # Tokens that did not move between two steps: one checkpoint per token count, the later step.
            loss_ok = loss_ok.sort_values("step", kind="stable")
            same = loss_ok.duplicated("tokens", keep="last").to_numpy()
            parts_skipped.append(_skips(loss_ok[same], f"same {tokens_column!r} as a later step: the later is kept"))
            loss_ok = loss_ok[~same]

        for p in parts_skipped:
            if len(p):
                skipped.append(p)
        row["rows_skipped"] = int(sum(len(p) for p in parts_skipped))
        if loss_ok.empty:
            row["status"] = "no rows kept"
            continue

        run_tokens = None
        if entry is not None and entry.run_tokens:
            run_tokens = entry.run_tokens
        elif entry is not None and entry.run_steps and row["tokens_per_step"]:
            run_tokens = entry.run_steps * row["tokens_per_step"]
        if run_tokens is not None:
            last = float(loss_ok["tokens"].max())
            if run_tokens < last * (1 - 1e-9):
                raise RunsImportError(f"run {run!r}: the planned length {run_tokens:.6g} tokens is below its last "
                                      f"checkpoint's {last:.6g}", path=params.label if params else input_label,
                                      field="run_tokens")
            row["run_tokens"] = run_tokens
        row["rows_kept"] = len(loss_ok)
        row["first_step"], row["last_step"] = int(loss_ok["step"].min()), int(loss_ok["step"].max())
        kept_parts.append(pd.DataFrame({
            "model": model, "params": np.int64(row["params"]), "tokens": loss_ok["tokens"].to_numpy(dtype=float),
            "value": loss_ok["value"].to_numpy(dtype=float), "step": loss_ok["step"].to_numpy().astype(np.int64),
            "metric": metric, "run_tokens": np.nan if run_tokens is None else float(run_tokens)}))

    runs = pd.DataFrame(run_rows, columns=RUN_COLUMNS)
    skipped_frame = pd.concat([s for s in skipped if len(s)], ignore_index=True) if any(len(s) for s in skipped) \
        else pd.DataFrame(columns=SKIPPED_COLUMNS)
    skipped_frame = skipped_frame[SKIPPED_COLUMNS].astype({"count": np.int64})
    unknown = sorted(set(params.rows) - matched_params) if params is not None else []
    tokens_label = f"column {tokens_column!r}" if tokens_column else (
        "step x tokens per step" if not isinstance(tokens_per_step, (int, float)) else f"step x {tokens_per_step:g}")
    report = ImportReport(source=source, input=input_label, metric=metric, tokens=tokens_label, runs=runs,
                          skipped=skipped_frame, unknown_params=unknown, ignored_files=list(scalars.ignored),
                          notes=notes, values_read=values_read, tokens_values_used=tokens_used)
    if not kept_parts:
        raise RunsImportError(_nothing_kept(runs), path=input_label,
                              field="params" if (runs["status"] == "no parameter count").any() else "metric")
    frame = pd.concat(kept_parts, ignore_index=True)
    frame["step"] = frame["step"].astype("Int64")
    if frame["run_tokens"].isna().all():
        frame = frame.drop(columns="run_tokens")
    frame = frame.sort_values(["params", "model", "tokens"], ignore_index=True)
    report.rows_kept = len(frame)
    return RunsImport(frame=frame, report=report)


def _nothing_kept(runs: pd.DataFrame) -> str:
    counts = runs["status"].value_counts()
    parts = [f"{n} run(s) {status}" for status, n in counts.items()]
    hint = ""
    if "no parameter count" in counts:
        hint = ("; give each run's parameter count (a params file with columns run,params, or a params mapping), "
                "runs: " + ", ".join(runs.loc[runs["status"] == "no parameter count", "run"].head(10)))
    return "no rows to import: " + ", ".join(parts) + hint
