"""planner.corpus.colpret and manage.py import_colpret.

The oracle is ../shared/corpus/colpret.csv.gz, an independent conversion of the
same ColPret files (../shared/corpus/README.md says which families it fixes).
"""
import http.server
import io
import os
import pickle
import shutil
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from fits.canonical import CANONICAL_COLUMNS, frame_to_raw, read_canonical, validate_canonical
from planner.corpus.colpret import safe_pickle
from planner.corpus.colpret.convert import convert, manifest_paths
from planner.corpus.colpret.datablations import parse_contour_name
from planner.corpus.colpret.fetch import DownloadError, check_base_url, download

SHARED = Path(settings.SCALEPLAN_SHARED_DIR)
COLPRET = SHARED / "colpret"
REFERENCE = SHARED / "corpus" / "colpret.csv.gz"
REFERENCE_FAMILIES = SHARED / "corpus" / "families.csv"

pytestmark = pytest.mark.skipif(not REFERENCE.is_file(), reason=f"no ColPret data under {SHARED}")

UNAMBIGUOUS = (
    ["OPT", "gpt3", "chinchilla", "t5-pile", "lambda", "olmo", "redPajama",
     "overtrain-C4", "overtrain-RedPajama", "overtrain-RefinedWeb"]
    + [f"GPT2-{data}-{epochs}" for data in ("c4", "oscar") for epochs in (1, 2, 3, 4, 5, 7, 14, 44)]
)
# The reference keeps only the shorter of OLMo-7B's two ptb-validation exports (steps 433k-556k, a subset of
# the full export with identical values); the converter keeps the union, the whole 529-point series.
KNOWN_EXTRA = {("OLMo-7B", "ptb-validation/CrossEntropyLoss"): 412}
RTOL = 1e-6


@pytest.fixture(scope="module")
def converted():
    return convert(COLPRET)


@pytest.fixture(scope="module")
def reference():
    return pd.read_csv(REFERENCE, keep_default_na=False, na_values={c: [""] for c in ("step", "epochs", "flops")},
                       dtype={"seed": str})


def _keyed(rows):
    # The reference writes 10 significant digits; tokens agree to far better than 1e-9 relative.
    return rows.assign(token_key=rows["tokens"].map(lambda t: f"{t:.9e}"))


@pytest.fixture(scope="module")
def joined(converted, reference):
    return _keyed(converted.rows).merge(_keyed(reference), on=["model", "metric", "token_key"], how="outer",
                                        suffixes=("", "_ref"), indicator=True)


def _close(a, b):
    a, b = a.astype(float), b.astype(float)
    return np.isclose(a, b, rtol=RTOL, atol=0) | (a.isna() & b.isna())


# --- the oracle ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_it_reproduces_the_reference_on_the_unambiguous_families(converted, reference):
    families = pd.read_csv(REFERENCE_FAMILIES).set_index("family")
    ours, ref = converted.rows, reference
    compared = mismatched = runs = 0
    for family in UNAMBIGUOUS:
        primary = families.loc[family, "primary_metric"]
        mine, theirs = ours[ours["family"] == family], ref[ref["family"] == family]
        run_params = mine.groupby("model")["params"].first()
        assert run_params.to_dict() == theirs.groupby("model")["params"].first().to_dict(), family
        runs += len(run_params)
        mine, theirs = _keyed(mine[mine["metric"] == primary]), _keyed(theirs[theirs["metric"] == primary])
        both = mine.merge(theirs, on=["model", "token_key"], how="outer", suffixes=("", "_ref"), indicator=True)
        assert (both["_merge"] == "both").all(), f"{family}: primary rows at different (model, tokens)"
        compared += len(both)
        mismatched += int((~_close(both["value"], both["value_ref"])).sum())
    print(f"\noracle: {len(UNAMBIGUOUS)} unambiguous families, {runs} runs, {compared} primary rows compared, "
          f"{mismatched} mismatches (rtol {RTOL})")
    reference_primary = sum(
        int(((ref["family"] == f) & (ref["metric"] == families.loc[f, "primary_metric"])).sum()) for f in UNAMBIGUOUS
    )
    assert compared == reference_primary
    assert mismatched == 0


def test_the_whole_conversion_matches_the_reference_but_for_the_full_olmo_ptb_series(joined):
    ours_only = joined[joined["_merge"] == "left_only"]
    assert len(joined[joined["_merge"] == "right_only"]) == 0, "reference rows the converter does not produce"
    assert ours_only.groupby(["model", "metric"]).size().to_dict() == KNOWN_EXTRA
    both = joined[joined["_merge"] == "both"]
    differing = {
        column: int((both[column].astype(str) != both[column + "_ref"].astype(str)).sum())
        for column in ("family", "arch", "seed", "split")
    }
    # params_ref is float after the outer join (the extra rows have none); exact integers survive that.
    differing["params"] = int((both["params"].astype(float) != both["params_ref"].astype(float)).sum())
    differing |= {column: int((~_close(both[column], both[column + "_ref"])).sum())
                  for column in ("value", "tokens", "step", "epochs", "flops")}
    print(f"\nfull corpus: {len(both)} rows matched on all columns but dataset/source, "
          f"{len(ours_only)} extra rows {KNOWN_EXTRA}, 0 missing; differing cells {differing}")
    assert differing == dict.fromkeys(differing, 0)


def test_it_builds_the_family_table_like_the_reference(converted):
    ours = converted.families.set_index("family")
    ref = pd.read_csv(REFERENCE_FAMILIES).set_index("family")
    assert sorted(ours.index) == sorted(ref.index)
    for column in ("arch", "primary_metric", "n_models", "param_sizes"):
        assert ours[column].astype(str).to_dict() == ref.loc[ours.index, column].astype(str).to_dict(), column
    assert (ours["notes"] != "").all() and (ours["source"].str.contains("arXiv|blog|logs")).all()


def test_it_reports_nothing_missing_for_a_full_checkout(converted):
    assert converted.missing == []
    assert list(converted.rows.columns) == list(CANONICAL_COLUMNS)


def test_its_rows_pass_every_canonical_rule(converted):
    valid, problems = validate_canonical(frame_to_raw(converted.rows))
    assert problems == [] and len(valid) == len(converted.rows)


def test_it_splits_ambiguous_contour_names_to_match_the_files_columns():
    assert parse_contour_name("2b855b11b", 2.81e9, 55e9) == ["2b8", "55b", "11b"]
    assert parse_contour_name("1b1100m100m", 1.0963e9, 1e8) == ["1b1", "100m", "100m"]
    assert parse_contour_name("146m14b1b5", 1.46e8, 1.4e10) == ["146m", "14b", "1b5"]
    with pytest.raises(ValueError, match="not <params><tokens><unique tokens>"):
        parse_contour_name("nonsense", 1e9, 1e9)


# --- partial checkouts -----------------------------------------------------------------------------------

SUBSET = (
    "aggregated_eval/opt_trajectories.csv",
    "aggregated_eval/opt.csv",
    "raw_data/chinchila_extracted.csv",
    "raw_data/redPajama/2.4B.csv",
    "raw_data/redPajama/6.7B.csv",
    "aggregated_eval/revisiting_lang.csv",
    "raw_data/bimix-law/Pile/ppls.pkl",
    "raw_data/bimix-law/Pile/ratios.pkl",
    "LICENSE",
)


@pytest.fixture
def partial_checkout(tmp_path):
    root = tmp_path / "colpret"
    for path in SUBSET:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(COLPRET / path, root / path)
    return root


def test_it_reports_absent_files_with_their_cost_and_converts_the_rest(partial_checkout):
    result = convert(partial_checkout)
    missing = {m.path: m for m in result.missing}
    assert set(missing) == set(manifest_paths()) - set(SUBSET)
    assert "t5-pile" in missing["aggregated_eval/t5_pile.csv"].cost
    assert set(result.families["family"]) == {"OPT", "chinchilla", "redPajama", "lambda", *(
        f"revisiting-nmt-{m}" for m in ("6Enc-6Dec", "6Enc-28Dec", "28Enc-6Dec", "Dec-only", "TEnc-LSTM")), *(
        "bimix-Pile" + s for s in ("", "_DoReMi_mix", "_SE_mix", "_JE_mix", "_CE_mix", "_VNE_mix"))}
    assert len(result.rows) == 1_024 + 244 + 128 + 712 + 6 * 460


def test_it_skips_a_reader_whose_required_companion_file_is_absent(tmp_path):
    root = tmp_path / "colpret"
    (root / "raw_data/gpt3").mkdir(parents=True)
    shutil.copyfile(COLPRET / "raw_data/gpt3/extracted.csv", root / "raw_data/gpt3/extracted.csv")
    result = convert(root)
    assert result.rows.empty
    assert any("GPT-3: skipped" in w and "gpt3_metadata.xlsx" in w for w in result.warnings)


def test_it_names_the_file_line_and_column_of_a_bad_cell(partial_checkout):
    path = partial_checkout / "aggregated_eval/opt_trajectories.csv"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace("125m", "125x", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"ColPret OPT: aggregated_eval/opt_trajectories\.csv, line 4, "
                                         r"column 'model_size': unknown OPT size '125x'"):
        convert(partial_checkout)


def test_it_names_a_column_missing_from_a_file(partial_checkout):
    path = partial_checkout / "raw_data/chinchila_extracted.csv"
    path.write_text(path.read_text().replace("Training FLOP", "Compute", 1))
    with pytest.raises(ValueError, match=r"ColPret Chinchilla: column 'Training FLOP' is missing from "
                                         r"raw_data/chinchila_extracted\.csv"):
        convert(partial_checkout)


def test_the_converter_package_never_imports_django():
    import ast

    package = Path(settings.BASE_DIR) / "planner" / "corpus" / "colpret"
    for module in package.glob("*.py"):
        tree = ast.parse(module.read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not {name for name in imported if name.split(".")[0] in ("django", "rest_framework", "celery")}, module


def test_it_rejects_a_source_that_is_not_a_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        convert(tmp_path / "nowhere")


# --- the restricted unpickler ----------------------------------------------------------------------------


class _RunsAShellCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_the_restricted_unpickler_refuses_a_pickle_that_would_run_a_command(tmp_path):
    marker = tmp_path / "pwned"
    data = pickle.dumps({"Baseline": _RunsAShellCommand(marker)})
    with pytest.raises(safe_pickle.UnsafePickleError, match=r"refuses to load global (posix|os|nt)\.system"):
        safe_pickle.loads(data, origin="evil.pkl")
    assert not marker.exists()


def test_the_restricted_unpickler_refuses_builtins_beyond_the_allow_list():
    data = pickle.dumps(eval)  # a global reference to builtins.eval
    with pytest.raises(safe_pickle.UnsafePickleError, match="builtins.eval"):
        safe_pickle.loads(data)


def test_the_restricted_unpickler_loads_the_bimix_dataframes():
    tables = safe_pickle.load(COLPRET / "raw_data/bimix-law/Pile/ppls.pkl")
    assert set(tables) == {"Baseline", "DoReMi", "SE", "JE", "CE", "VNE"}
    assert isinstance(tables["Baseline"], pd.DataFrame) and "global_step" in tables["Baseline"].columns
    ratios = safe_pickle.load(COLPRET / "raw_data/bimix-law/Pile/ratios.pkl")
    assert isinstance(ratios["DoReMi"], pd.Series) and ratios["DoReMi"].sum() == pytest.approx(1, abs=1e-4)


def test_a_malicious_bimix_pickle_is_skipped_with_a_warning_not_run(partial_checkout, tmp_path):
    marker = tmp_path / "pwned"
    (partial_checkout / "raw_data/bimix-law/Pile/ppls.pkl").write_bytes(pickle.dumps(_RunsAShellCommand(marker)))
    result = convert(partial_checkout)
    assert not marker.exists()
    assert not result.rows["family"].str.startswith("bimix").any()
    assert any("BiMix Pile: skipped" in w and "system" in w for w in result.warnings)


# --- URL mode --------------------------------------------------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    absent = frozenset()
    status = None
    delay = 0.0
    hits = None

    def do_GET(self):
        if self.hits is not None:
            self.hits.append(self.path)
        if self.delay:
            time.sleep(self.delay)
        if self.status:
            self.send_error(self.status)
            return
        if self.path.lstrip("/") in self.absent:
            self.send_error(404)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that time out on purpose break the pipe; that is the test, not an error


@pytest.fixture
def serve():
    """serve(directory, **handler attributes) -> base URL of a local HTTP server in a thread."""
    servers = []

    def start(directory, **attributes):
        handler = type("Handler", (_Handler,), attributes)
        server = _QuietServer(("127.0.0.1", 0), partial(handler, directory=str(directory)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_url_mode_gives_the_same_result_as_directory_mode(serve, converted):
    result = convert(serve(COLPRET))
    pd.testing.assert_frame_equal(result.rows, converted.rows)
    pd.testing.assert_frame_equal(result.families, converted.families)
    assert result.missing == [] and result.warnings == converted.warnings


@pytest.mark.slow
def test_url_mode_reports_files_the_server_does_not_have(serve):
    absent = {"aggregated_eval/t5_pile.csv", "raw_data/gzip/results_new.jsonl"}
    result = convert(serve(COLPRET, absent=frozenset(absent)))
    assert {m.path for m in result.missing} == absent
    assert not result.rows["family"].isin(["t5-pile"]).any()
    assert not result.rows["family"].str.startswith("gzip").any()


def test_url_mode_retries_a_failing_server_then_names_the_url_and_status(serve, tmp_path):
    hits = []
    base = serve(COLPRET, status=500, hits=hits)
    with pytest.raises(DownloadError, match=r"http://127\.0\.0\.1:\d+/raw_data/IBM_MoE\.csv: HTTP 500"):
        download(base, ("raw_data/IBM_MoE.csv",), tmp_path, retries=2, backoff=0, workers=1)
    assert len(hits) == 3  # the first try and two retries


def test_url_mode_reports_a_timeout_clearly(serve, tmp_path):
    base = serve(COLPRET, delay=1.0)
    with pytest.raises(DownloadError, match="IBM_MoE.csv: timed out"):
        download(base, ("raw_data/IBM_MoE.csv",), tmp_path, timeout=0.2, retries=1, backoff=0, workers=1)


def test_url_mode_reports_a_refused_connection_as_such(tmp_path):
    import socket

    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DownloadError, match=rf"127\.0\.0\.1:{port}/LICENSE: connection failed after 1 retries"):
        download(f"http://127.0.0.1:{port}/", ("LICENSE",), tmp_path, retries=1, backoff=0, workers=1)


def test_url_mode_refuses_an_address_where_no_colpret_file_exists(serve, tmp_path):
    with pytest.raises(DownloadError, match="none of the 2 ColPret files exist there"):
        download(serve(tmp_path), ("LICENSE", "raw_data/IBM_MoE.csv"), tmp_path / "out", retries=0)


def test_it_accepts_plain_http_only_for_this_machine():
    assert check_base_url("http://localhost:8000/colpret") == "http://localhost:8000/colpret/"
    assert check_base_url("https://raw.githubusercontent.com/IBM/ColPret/16f23bb/").endswith("/16f23bb/")
    with pytest.raises(DownloadError, match="plain http is accepted only for localhost"):
        check_base_url("http://raw.githubusercontent.com/IBM/ColPret/16f23bb/")
    with pytest.raises(DownloadError, match="not an http"):
        check_base_url("ftp://example.org/colpret/")


# --- manage.py import_colpret ----------------------------------------------------------------------------


def _run(*args):
    out = io.StringIO()
    call_command("import_colpret", *map(str, args), stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_the_command_imports_a_checkout_and_rerunning_changes_nothing(partial_checkout):
    from planner.models import Family, Observation, Run

    expected = convert(partial_checkout)
    output = _run(partial_checkout)
    assert f"{len(expected.rows)} inserted" in output
    assert "missing: aggregated_eval/t5_pile.csv" in output
    assert Observation.objects.count() == len(expected.rows)
    assert Run.objects.count() == expected.rows["model"].nunique()
    assert Family.objects.get(name="chinchilla").primary_metric == "loss"
    assert "running minimum" in Family.objects.get(name="redPajama").notes
    snapshot = list(Observation.objects.order_by("pk").values_list("pk", "value", "tokens"))

    again = _run(partial_checkout)
    assert f"0 inserted, 0 replaced, {len(expected.rows)} unchanged" in again
    assert list(Observation.objects.order_by("pk").values_list("pk", "value", "tokens")) == snapshot


@pytest.mark.django_db
def test_the_command_dry_run_writes_nothing_but_the_requested_csv(partial_checkout, tmp_path):
    from planner.models import Observation

    out = tmp_path / "colpret.csv.gz"
    output = _run(partial_checkout, "--dry-run", "--out", out)
    assert "nothing written" in output and Observation.objects.count() == 0
    rows, problems = read_canonical(out)
    assert problems == [] and len(rows) == len(convert(partial_checkout).rows)


@pytest.mark.django_db
def test_the_command_names_the_source_it_cannot_read(tmp_path):
    with pytest.raises(CommandError, match="cannot convert .*nowhere.*is not a directory"):
        _run(tmp_path / "nowhere")


@pytest.mark.slow
@pytest.mark.django_db
def test_the_command_imports_the_whole_colpret_checkout(converted):
    from planner.models import Family, Observation

    output = _run(COLPRET)
    assert f"{len(converted.rows)} inserted" in output
    assert Observation.objects.count() == len(converted.rows)
    assert Family.objects.get(name="olmo").primary_metric == "c4_en_val_loss"
