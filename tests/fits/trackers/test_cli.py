"""python -m fits runs: the issue's command end to end, and bad input as one message with exit status 2."""
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd

from fits.cli import main

from .conftest import assert_same_rows
from .writers import LOSS, write_tensorboard

ROOT = Path(__file__).resolve().parents[3]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "fits", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)


def test_runs_writes_the_canonical_csv(tmp_path, opt_train, opt_runs):
    write_tensorboard(opt_train, tmp_path / "logs")
    # The form: one K for every run; OPT-125m and OPT-1.3b logged with other batch sizes, so
    # take the runs with 4M tokens per step and check they come back exactly.
    four_m = opt_train[opt_train["model"].isin(["OPT-13b", "OPT-30b"])]
    params = tmp_path / "P.csv"
    pd.DataFrame({"run": ["OPT-13b", "OPT-30b"], "params": [13_000_000_000, 30_000_000_000]}).to_csv(params,
                                                                                                  index=False)
    out = tmp_path / "OUT.csv"
    proc = run_cli("runs", tmp_path / "logs", "--metric", LOSS, "--tokens-per-step", 4e6, "--params-file", params,
                   "--csv", out)
    assert proc.returncode == 0, proc.stderr
    assert "2 of 5 runs imported" in proc.stderr and "not imported: no parameter count" in proc.stderr
    table = pd.read_csv(out)
    assert list(table.columns) == ["model", "params", "tokens", "value", "step", "metric"]
    assert_same_rows(table, four_m, rtol=1e-6)


def test_runs_reads_a_tar_upload_and_writes_the_report(tmp_path, opt_train, params_file, capsys):
    import json

    write_tensorboard(opt_train, tmp_path / "logs")
    archive = tmp_path / "logs.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(tmp_path / "logs", arcname="logs")
    out, report = tmp_path / "runs.csv", tmp_path / "report.json"
    assert main(["runs", str(archive), "--metric", LOSS, "--params-file", str(params_file), "--csv", str(out),
                 "--report", str(report)]) == 0
    assert_same_rows(pd.read_csv(out), opt_train, rtol=1e-6)
    data = json.loads(report.read_text())
    assert data["rows_kept"] == len(opt_train) and data["unknown_params"] == ["OPT-175b"]


def test_bad_input_is_one_message_and_exit_2(tmp_path, opt_train):
    write_tensorboard(opt_train.head(5), tmp_path / "logs")
    cases = [
        (["runs", tmp_path / "missing", "--metric", LOSS, "--tokens-per-step", 1], "not found"),
        (["runs", tmp_path / "logs", "--metric", "nope", "--tokens-per-step", 1, "--params-file", tmp_path / "p.csv"],
         "params file not found"),
        (["runs", tmp_path / "logs", "--metric", "nope", "--tokens-per-step", 1], "no run logs the metric 'nope'"),
        (["runs", tmp_path / "logs", "--metric", LOSS, "--tokens-per-step", 1], "parameter count"),
        (["runs", tmp_path / "logs", "--metric", LOSS], "tokens per step"),
    ]
    for args, message in cases:
        proc = run_cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith("error: ") and proc.stdout == ""
    proc = run_cli("runs", tmp_path / "logs", "--metric", LOSS, "--tokens-per-step", -1)
    assert proc.returncode == 2 and "positive" in proc.stderr

def test_an_unwritable_output_is_exit_2(tmp_path, opt_train, capsys):
    write_tensorboard(opt_train.head(5), tmp_path / "logs")
    code = main(["runs", str(tmp_path / "logs"), "--metric", LOSS, "--tokens-per-step", "1", "--csv",
                 str(tmp_path / "no" / "such" / "dir" / "out.csv"), "--params-file", str(tmp_path / "P.json")])
    assert code == 2 and "params file not found" in capsys.readouterr().err
    (tmp_path / "P.json").write_text('{"OPT-125m": 125000000}')
    code = main(["runs", str(tmp_path / "logs"), "--metric", LOSS, "--tokens-per-step", "1", "--csv",
                 str(tmp_path / "no" / "such" / "dir" / "out.csv"), "--params-file", str(tmp_path / "P.json")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "cannot write" in err
