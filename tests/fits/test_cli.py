"""python -m fits: each subcommand end to end on a small slice of the corpus, and bad input as exit 2.

Most commands run in-process through ``fits.cli.main`` (fast); a few run as ``python -m fits`` in a
subprocess, to check the entry point itself and that bad input never shows a traceback.
"""
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from fits.canonical import CANONICAL_COLUMNS
from fits.cli import main
from fits.cli.backtest import VARIANTS
from fits.cli.common import CliError, load_frame, load_frames
from fits.method import DEFAULT_METHOD

from .conftest import write_corpus_slice

ROOT = Path(__file__).resolve().parents[2]
SLICE = ["GPT2-c4-1", "overtrain-RedPajama", "olmo"]  # 3 sizes with curves; 6 sizes, final losses; 2 sizes
OTHER = ["lambda"]  # 5 sizes, another paper: the second corpus of a two-corpus run


@pytest.fixture(scope="module")
def corpus_slice(tmp_path_factory):
    """A canonical CSV of three families (every metric, as stored) with its families.csv beside it."""
    return write_corpus_slice(tmp_path_factory.mktemp("corpus"), SLICE)


@pytest.fixture(scope="module")
def other_slice(tmp_path_factory):
    return write_corpus_slice(tmp_path_factory.mktemp("other"), OTHER, "other.csv")


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "fits", *map(str, args)], cwd=cwd or ROOT, capture_output=True,
                          text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"},
                          timeout=120)


def strict_json(path):
    """Parse as a strict JSON reader would: NaN or Infinity in the file is an error."""
    def reject(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(Path(path).read_text(), parse_constant=reject)


@pytest.mark.subprocess
def test_backtest_prints_the_table_and_summary_and_writes_json(corpus_slice, tmp_path):
    out = tmp_path / "bt.json"
    proc = run_cli("backtest", corpus_slice, "--json", out)
    assert proc.returncode == 0, proc.stderr
    assert "GPT2-c4-1" in proc.stdout and "overtrain-RedPajama" in proc.stdout
    assert "olmo" not in proc.stdout  # two sizes: not in the protocol
    assert "law           median" in proc.stdout and "best-loss" in proc.stdout
    assert proc.stdout.startswith("method: auto (chooses among curves, final, all-points")
    data = strict_json(out)
    # Version 2: the method (with its candidates) instead of a checkpoint policy.
    assert data["version"] == 2 and "policy" not in data
    assert data["method"] == json.loads(json.dumps(DEFAULT_METHOD.get_params()))
    assert data["summary"]["families"] == 2
    assert {r["family"] for r in data["rows"]} == {"GPT2-c4-1", "overtrain-RedPajama"}
    assert all(0 <= r["are"] < 0.2 for r in data["rows"])
    assert all(r["source"] for r in data["rows"])  # each family's paper, from the corpus's source column


def test_backtest_of_two_corpora_prints_a_line_per_source(corpus_slice, other_slice, tmp_path, capsys):
    out = tmp_path / "bt2.json"
    assert main(["backtest", str(corpus_slice), str(other_slice), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "lambda" in text and "GPT2-c4-1" in text
    by_source = text.split("by source")[1].splitlines()
    papers = ("Muennighoff+23 Scaling Data-Constrained", "Gadre+24 LMs scale reliably", "Alabdulmohsin+22")
    for paper in papers:
        assert sum(paper in line and "families   1" in line for line in by_source) == 1, paper
    assert "median of the sources' medians:" in text
    summary = strict_json(out)["summary"]
    assert summary["families"] == 3 and len(summary["by_source"]) == 3
    medians = sorted(s["median"] for s in summary["by_source"].values())
    assert summary["median_of_source_medians"] == pytest.approx(medians[1])


def test_backtest_families_files_must_match_the_corpora_one_to_one(corpus_slice, other_slice, capsys):
    families = corpus_slice.with_name("families.csv")
    assert main(["backtest", str(corpus_slice), str(other_slice), "--families", str(families)]) == 2
    assert "one families file per corpus (2), not 1" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--compare", "--compare-policies"])
def test_backtest_compare_prints_one_line_per_method_variant(corpus_slice, flag, capsys):
    assert main(["backtest", str(corpus_slice), flag]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in VARIANTS:
        assert sum(line.startswith(name + " ") and "median" in line for line in lines) == 1, name
    # Every variant but the default says what it changes against the default.
    assert sum("vs default:" in line for line in lines) == len(VARIANTS) - 1


def test_backtest_compare_writes_every_variant_to_json(corpus_slice, tmp_path):
    out = tmp_path / "compare.json"
    assert main(["backtest", str(corpus_slice), "--compare", "--json", str(out)]) == 0
    data = strict_json(out)
    assert data["version"] == 2 and list(data["variants"]) == list(VARIANTS)
    assert all(v["summary"]["families"] == 2 for v in data["variants"].values())


def test_backtest_scores_a_chosen_share_of_the_targets_training(corpus_slice, capsys):
    assert main(["backtest", str(corpus_slice), "--target-fraction", "0.3"]) == 0
    assert "tokens >= 0.3 x the largest size's final tokens" in capsys.readouterr().out


def test_sweep_shows_progress_and_writes_json_and_csv(corpus_slice, tmp_path, capsys):
    js, csv = tmp_path / "sweep.json", tmp_path / "sweep.csv"
    assert main(["sweep", str(corpus_slice), "--json", str(js), "--csv", str(csv)]) == 0  # --jobs 2: see test_sweep
    captured = capsys.readouterr()
    assert "2/2" in captured.err  # the tqdm bar, on stderr
    assert "laws: " in captured.out and "laws/s" in captured.out
    # The method is the library's (no policy axis any more): the table says which candidate each law used.
    assert "median ARE by method" in captured.out and "by fraction" in captured.out and "by n_models" in captured.out
    assert "by policy" not in captured.out
    data = strict_json(js)
    assert isinstance(data["version"], int) and len(data["rows"]) > 20
    assert {r["method"] for r in data["rows"]} <= {"curves", "final", "all-points", "curves+cap", "final+cap",
                                                   "all-points+cap"}
    sources = {r["source"].split(" arXiv")[0] for r in data["rows"]}
    assert sources == {"Muennighoff+23 Scaling Data-Constrained LMs", "Gadre+24 LMs scale reliably with over-training"}
    table = pd.read_csv(csv)
    assert len(table) == len(data["rows"])
    assert json.loads(table["params"].iloc[0])  # nested values as JSON text in a cell


def test_fit_prints_parameters_why_the_method_and_the_targets_interval_and_saves_the_plot(corpus_slice, tmp_path,
                                                                                          capsys):
    plot = tmp_path / "gpt2.svg"
    assert main(["fit", str(corpus_slice), "--family", "GPT2-c4-1", "--target-params", "1.5e9", "--target-tokens",
                 "3e10", "--coverage", "0.9", "--n-boot", "20", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    for name in ("E", "A", "alpha", "B", "beta"):
        assert f"  {name} " in out
    assert "+/-" in out and "rmse_log" in out
    # Three sizes: the largest is rolled out from the two below it, and the choice is explained.
    assert "why: lowest error predicting its own larger sizes" in out and "rollout ARE curves " in out
    assert "predicted loss" in out and "90% interval [" in out
    assert plot.stat().st_size > 10_000 and "<svg" in plot.read_text()[:2000]


@pytest.mark.subprocess
def test_fit_holdout_scores_the_largest_size_and_plots_to_the_default_path(corpus_slice, tmp_path):
    proc = run_cli("fit", corpus_slice.resolve(), "--family", "overtrain-RedPajama", "--holdout-largest",
                   "--n-boot", "10", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "held-out largest size" in proc.stdout and "ARE" in proc.stdout
    png = tmp_path / "fit-overtrain-RedPajama.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


@pytest.mark.subprocess
def test_bad_input_exits_2_with_a_message_and_no_traceback(corpus_slice):
    proc = run_cli("fit", corpus_slice, "--family", "no-such-family")
    assert proc.returncode == 2
    assert "unknown family 'no-such-family'" in proc.stderr and "GPT2-c4-1" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture
def broken_csv(corpus_slice, tmp_path):
    lines = corpus_slice.read_text().splitlines()
    cells = lines[5].split(",")
    cells[CANONICAL_COLUMNS.index("tokens")] = "lots"
    lines[5] = ",".join(cells)
    path = tmp_path / "broken.csv.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["backtest", "{missing}"], "corpus file not found"),
        (["backtest", "{slice}", "--families", "{missing}"], "families file not found"),
        (["backtest", "{slice}", "{missing}"], "corpus file not found"),
        (["sweep", "{broken}"], "line 6"),
        (["fit", "{slice}", "--family", "olmo", "--target-params", "7e9"], "give both --target-params and --target-tokens"),
        (["fit", "{slice}", "--family", "GPT2-c4-1", "--plot", "{tmp}/out.gif"], "--plot must end in .png, .svg or .pdf"),
        (["fit", "{slice}", "--family", "GPT2-c4-1", "--plot", "{tmp}/no/such/dir/p.png"], "cannot write"),
    ],
    ids=["missing-corpus", "missing-families", "second-corpus-missing", "invalid-row", "half-a-target",
         "bad-plot-suffix", "unwritable-plot"],
)
def test_it_rejects_bad_input_with_exit_2(argv, message, corpus_slice, broken_csv, tmp_path, capsys):
    paths = {"missing": tmp_path / "nope.csv", "slice": corpus_slice, "broken": broken_csv, "tmp": tmp_path}
    assert main([a.format(**paths) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_an_invalid_row_is_reported_with_its_column(broken_csv, capsys):
    main(["backtest", str(broken_csv)])
    err = capsys.readouterr().err
    assert "tokens" in err and "'lots'" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["fit", "{slice}", "--family", "olmo", "--target-params", "-5", "--target-tokens", "1e10"],
        ["fit", "{slice}", "--family", "olmo", "--coverage", "1.5"],
        ["sweep", "{slice}", "--jobs", "0"],
        # The checkpoint policy is the method's own choice now: the old flags are refused, not ignored.
        ["backtest", "{slice}", "--policy", "default"],
        ["fit", "{slice}", "--family", "olmo", "--policy", "default"],
    ],
    ids=["negative-target", "coverage-above-1", "zero-jobs", "backtest-policy-flag", "fit-policy-flag"],
)
def test_bad_numbers_and_unknown_flags_exit_2_from_argparse(argv, corpus_slice, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([a.format(slice=corpus_slice) for a in argv])
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_load_frame_gives_each_family_its_papers_source(corpus_slice):
    frame = load_frame(corpus_slice)
    sources = frame.groupby("family")["source"].unique().map(list).to_dict()
    assert set(sources) == set(SLICE) and all(len(s) == 1 and s[0] for s in sources.values())
    assert sources["olmo"][0].startswith("Groeneveld+24 OLMo")


def test_a_family_in_two_corpora_is_refused(corpus_slice, tmp_path):
    raw = pd.read_csv(corpus_slice, dtype=str, keep_default_na=False)
    other = tmp_path / "relabelled.csv"
    raw.assign(source="Someone else's paper").to_csv(other, index=False)
    (tmp_path / "families.csv").write_text(corpus_slice.with_name("families.csv").read_text())
    with pytest.raises(CliError, match="family 'GPT2-c4-1' is in both .* give each corpus once"):
        load_frames([corpus_slice, other])
    # The same corpus twice would count its families twice.
    with pytest.raises(CliError, match="give each corpus once"):
        load_frames([corpus_slice, corpus_slice])
