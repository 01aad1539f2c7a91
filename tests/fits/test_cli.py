"""python -m fits: each subcommand end to end on a small slice of the corpus, and bad input as exit 2."""
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from fits.canonical import CANONICAL_COLUMNS
from fits.cli import METHOD_VARIANTS, main
from fits.policy import POLICIES

from .conftest import write_corpus_slice

ROOT = Path(__file__).resolve().parents[2]
SLICE = ["GPT2-c4-1", "overtrain-RedPajama", "olmo"]  # 3 sizes with curves; 6 sizes, final losses; 2 sizes


@pytest.fixture(scope="module")
def corpus_slice(tmp_path_factory):
    """A canonical CSV of three families (every metric, as stored) with its families.csv beside it."""
    return write_corpus_slice(tmp_path_factory.mktemp("corpus"), SLICE)


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
    data = strict_json(out)
    assert data["version"] == 1 and data["policy"]["name"] == "default"
    assert data["summary"]["families"] == 2
    assert {r["family"] for r in data["rows"]} == {"GPT2-c4-1", "overtrain-RedPajama"}
    assert all(0 <= r["are"] < 0.2 for r in data["rows"])


def test_backtest_compare_policies_prints_one_line_per_policy(corpus_slice, capsys):
    assert main(["backtest", str(corpus_slice), "--compare-policies"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in [*POLICIES, *METHOD_VARIANTS]:
        assert any(line.startswith(name + " ") and "median" in line for line in lines), name


def test_backtest_scores_a_chosen_share_of_the_targets_training(corpus_slice, capsys):
    assert main(["backtest", str(corpus_slice), "--target-fraction", "0.3"]) == 0
    assert "tokens >= 0.3 x the largest size's final tokens" in capsys.readouterr().out


@pytest.mark.subprocess
def test_sweep_shows_progress_and_writes_json_and_csv(corpus_slice, tmp_path):
    js, csv = tmp_path / "sweep.json", tmp_path / "sweep.csv"
    proc = run_cli("sweep", corpus_slice, "--json", js, "--csv", csv)  # --jobs 2: see test_sweep
    assert proc.returncode == 0, proc.stderr
    assert "2/2" in proc.stderr  # the tqdm bar, on stderr
    assert "laws: " in proc.stdout and "laws/s" in proc.stdout
    assert "median ARE by policy" in proc.stdout and "by fraction" in proc.stdout and "by n_models" in proc.stdout
    data = strict_json(js)
    assert data["version"] == 1 and len(data["rows"]) > 20
    table = pd.read_csv(csv)
    assert len(table) == len(data["rows"])
    assert json.loads(table["params"].iloc[0])  # nested values as JSON text in a cell


@pytest.mark.subprocess
def test_fit_prints_parameters_and_the_targets_interval_and_saves_the_plot(corpus_slice, tmp_path):
    plot = tmp_path / "gpt2.svg"
    proc = run_cli("fit", corpus_slice, "--family", "GPT2-c4-1", "--target-params", "1.5e9", "--target-tokens",
                   "3e10", "--coverage", "0.9", "--n-boot", "20", "--plot", plot)
    assert proc.returncode == 0, proc.stderr
    for name in ("E", "A", "alpha", "B", "beta"):
        assert f"  {name} " in proc.stdout
    assert "+/-" in proc.stdout and "rmse_log" in proc.stdout
    assert "predicted loss" in proc.stdout and "90% interval [" in proc.stdout
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
        (["sweep", "{broken}"], "line 6"),
        (["fit", "{slice}", "--family", "olmo", "--target-params", "7e9"], "give both --target-params and --target-tokens"),
        (["fit", "{slice}", "--family", "GPT2-c4-1", "--plot", "{tmp}/out.gif"], "--plot must end in .png, .svg or .pdf"),
        (["fit", "{slice}", "--family", "GPT2-c4-1", "--plot", "{tmp}/no/such/dir/p.png"], "cannot write"),
    ],
    ids=["missing-corpus", "missing-families", "invalid-row", "half-a-target", "bad-plot-suffix", "unwritable-plot"],
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
        ["backtest", "{slice}", "--policy", "magic"],
    ],
    ids=["negative-target", "coverage-above-1", "zero-jobs", "unknown-policy"],
)
def test_bad_numbers_and_choices_exit_2_from_argparse(argv, corpus_slice, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([a.format(slice=corpus_slice) for a in argv])
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err
