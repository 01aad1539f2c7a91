"""Benchmark: importing a TensorBoard directory of 100 runs with 1,000 checkpoints each (issue 13).

Usage: .venv/bin/python bench/import_runs.py [--runs 100] [--checkpoints 1000] [--tags 3]

Writes, in a temporary directory, one sub-directory per run with one event file (tensorboardX, as a
training script logs: the loss, the learning rate and the tokens seen at every checkpoint), then times
``fits.read_runs`` on the directory, on a .tar.gz of it (as an upload arrives: extraction included),
and ``python -m fits runs`` end to end (start-up, reading, writing the CSV). The bar: the directory
in under 10 s on the 2-core machine.
"""
import argparse
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BAR_SECONDS = 10.0


def build(root: Path, runs: int, checkpoints: int, tags: int) -> dict:
    from tensorboardX import SummaryWriter

    params = {}
    steps = np.arange(1, checkpoints + 1) * 10
    for r in range(runs):
        n = int(1e7 * 1.05 ** r)
        name = f"run-{r:03d}"
        params[name] = n
        loss = 1.8 + 400 / n ** 0.34 + 410 / (steps * 2**19) ** 0.28
        writer = SummaryWriter(str(root / name), flush_secs=3600, max_queue=10**6)
        for i, step in enumerate(steps.tolist()):
            writer.add_scalar("train/loss", float(loss[i]), step, walltime=1.7e9 + i)
            if tags > 1:
                writer.add_scalar("train/tokens_seen", float(step * 2**19), step, walltime=1.7e9 + i)
            for t in range(2, tags):
                writer.add_scalar(f"extra/{t}", 1e-3, step, walltime=1.7e9 + i)
        writer.close()
    return params


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--checkpoints", type=int, default=1000)
    parser.add_argument("--tags", type=int, default=3, help="scalar tags logged per checkpoint (loss, tokens, ...)")
    args = parser.parse_args(argv)

    import fits

    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp) / "logs"
        started = time.perf_counter()
        params = build(logs, args.runs, args.checkpoints, args.tags)
        written = time.perf_counter() - started
        size = sum(f.stat().st_size for f in logs.rglob("*") if f.is_file())
        print(f"wrote {args.runs} runs x {args.checkpoints} checkpoints x {args.tags} tags "
              f"({size / 1e6:.1f} MB of event files) in {written:.1f} s")

        timings = {}
        started = time.perf_counter()
        result = fits.read_runs(logs, metric="train/loss", tokens_per_step=2**19, params=params)
        timings["directory"] = time.perf_counter() - started
        assert len(result.frame) == args.runs * args.checkpoints, len(result.frame)

        started = time.perf_counter()
        result = fits.read_runs(logs, metric="train/loss", tokens_column="train/tokens_seen", params=params) \
            if args.tags > 1 else result
        timings["directory, tokens series"] = time.perf_counter() - started

        archive = Path(tmp) / "logs.tar.gz"
        with tarfile.open(archive, "w:gz") as tf:
            tf.add(logs, arcname="logs")
        started = time.perf_counter()
        result = fits.read_runs(archive, metric="train/loss", tokens_per_step=2**19, params=params)
        timings[".tar.gz upload"] = time.perf_counter() - started

        params_csv = Path(tmp) / "params.csv"
        params_csv.write_text("run,params\n" + "".join(f"{k},{v}\n" for k, v in params.items()))
        out = Path(tmp) / "runs.csv"
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "fits", "runs", str(logs), "--metric", "train/loss",
                               "--tokens-per-step", str(2**19), "--params-file", str(params_csv), "--csv", str(out),
                               "--quiet"], cwd=ROOT, capture_output=True, text=True)
        timings["python -m fits runs (CLI)"] = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)

    values = args.runs * args.checkpoints * args.tags
    for label, seconds in timings.items():
        print(f"{label:<28} {seconds:6.2f} s  ({values / seconds / 1e3:.0f}k values/s)")
    ok = timings["directory"] < BAR_SECONDS
    print(f"bar: directory import < {BAR_SECONDS:.0f} s: {'met' if ok else 'NOT met'} ({timings['directory']:.2f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
