"""Check: issue 10's bars for plans, measured through ``python -m fits plan`` as a user runs it.

Usage: .venv/bin/python bench/plan_check.py [--error-model M.json] [--rebuild]

The error model is ``python -m fits calibrate --train ../shared/corpus/colpret.csv.gz
../shared/corpus/extra/observations.csv.gz --save-model M.json`` (built once into bench/out/, ~1.5 min
on 2 CPUs, unless given). Then, each as a subprocess of ``python -m fits plan ... --json OUT``:

- 12 realistic requests (1B / 7B / 70B targets, 20 and 200 tokens per parameter, 1% and 10% budgets):
  the naive designs are listed and none has a lower p90 than the recommendation (which minimises p90,
  then p50); every planned model's ``eval_every_tokens`` is at most half its tokens;
- a budget 3x the target's compute warns ``budget_exceeds_target``;
- a 1e13-parameter target on 2e14 tokens is planned (exit 0, JSON written) with ``outside_corpus``;
- both budget flags at once are refused (exit 2, one message naming both, no traceback).

Prints one line per request and whether each bar is met; exit status 1 if any is not.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "corpus"
CORPORA = [SHARED / "colpret.csv.gz", SHARED / "extra" / "observations.csv.gz"]
DEFAULT_MODEL = ROOT / "bench" / "out" / "error_model.json"
NAIVE = {"one-large-model", "k-smallest", "five-log-spaced"}


def fits_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fits", *map(str, args)], cwd=ROOT, capture_output=True, text=True)


def build_model(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    proc = fits_cli("calibrate", "--train", *CORPORA, "--save-model", path, "--quiet")
    if proc.returncode != 0:
        sys.exit(f"calibrate failed:\n{proc.stderr}")
    print(f"error model built in {time.perf_counter() - started:.0f} s: {path}")
    print("  " + proc.stderr.strip().splitlines()[0])


def plan(model: Path, out: Path, n: float, *, tokens: float, fraction=None, flops=None):
    budget = ["--budget-fraction", fraction] if fraction is not None else ["--budget-flops", flops]
    started = time.perf_counter()
    proc = fits_cli("plan", "--error-model", model, "--target-params", n, "--target-tokens", tokens, *budget,
                    "--json", out)
    seconds = time.perf_counter() - started
    data = json.loads(out.read_text()) if proc.returncode == 0 and out.is_file() else None
    return proc, data, seconds


def library_seconds(model: Path) -> float:
    """Median seconds of fits.recommend over the 12 realistic requests, in this process (no start-up)."""
    sys.path.insert(0, str(ROOT))
    from fits import ErrorModel, PlanRequest, recommend

    em = ErrorModel.from_dict(json.loads(model.read_text()))
    times = []
    for n in (1e9, 7e9, 7e10):
        for tpp in (20, 200):
            for fraction in (0.01, 0.1):
                started = time.perf_counter()
                recommend(em, PlanRequest(target_params=n, target_tokens=n * tpp, budget_fraction=fraction))
                times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def check_realistic(data: dict) -> list[str]:
    """What is wrong with a realistic plan (empty: all its bars met)."""
    problems = []
    rec = data["recommended"]
    names = {n["name"] for n in data["naive"]}
    if names != NAIVE:
        problems.append(f"naive designs listed: {sorted(names)}")
    for n in data["naive"]:
        if (n["p90"], n["p50"]) < (rec["p90"], rec["p50"]):
            problems.append(f"{n['name']} beats the recommendation (p90 {n['p90']:.4f} < {rec['p90']:.4f})")
    for m in rec["models"]:
        if not m["eval_every_tokens"] <= m["tokens"] / 2:
            problems.append(f"{m['model']}: evaluates every {m['eval_every_tokens']:.3g} of {m['tokens']:.3g} tokens")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--error-model", type=Path, help=f"a saved error model (default: build {DEFAULT_MODEL})")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the default error model even if it exists")
    args = parser.parse_args(argv)
    model = args.error_model or DEFAULT_MODEL
    if args.error_model is None and (args.rebuild or not model.is_file()):
        build_model(model)
    bars = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"{'target':>7} {'D/N':>4} {'budget':>6}  {'recommended':<44} {'D/N':>5} {'p50':>6} {'p90':>6} "
              f"{'best naive p90':>24} {'s':>4}  warnings")
        failures, seconds = [], []
        for n in (1e9, 7e9, 7e10):
            for tpp in (20, 200):
                for fraction in (0.01, 0.1):
                    out = tmp / f"{n:g}-{tpp}-{fraction}.json"
                    proc, data, s = plan(model, out, n, tokens=n * tpp, fraction=fraction)
                    seconds.append(s)
                    if data is None:
                        failures.append(f"{n:g} x {tpp}: exit {proc.returncode}: {proc.stderr.strip()}")
                        continue
                    rec = data["recommended"]
                    naive = min(data["naive"], key=lambda x: (x["p90"], x["p50"]))
                    problems = check_realistic(data)
                    failures += [f"{n:g} x {tpp} at {fraction:.0%}: {p}" for p in problems]
                    print(f"{n:>7.0e} {tpp:>4} {fraction:>6.0%}  {rec['description'][:44]:<44} "
                          f"{rec['tokens_per_param']:>5.1f} {rec['p50']:>6.2%} {rec['p90']:>6.2%} "
                          f"{naive['name'] + ' ' + format(naive['p90'], '.2%'):>24} {s:>4.1f}  "
                          f"{','.join(w['code'] for w in data['warnings']) or '-'}")
        bars["12 realistic plans: naive listed, none with a lower p90; eval_every_tokens <= half each run"] = (
            not failures, "; ".join(failures) or "12 of 12")

        c_t = 6 * 7e9 * 1.4e11
        proc, data, _ = plan(model, tmp / "over.json", 7e9, tokens=1.4e11, flops=3 * c_t)
        codes = [w["code"] for w in data["warnings"]] if data else []
        bars["a budget 3x the target's compute warns budget_exceeds_target"] = (
            "budget_exceeds_target" in codes, f"exit {proc.returncode}, warnings {codes}")

        out = tmp / "huge.json"
        proc, data, _ = plan(model, out, 1e13, tokens=2e14, fraction=0.01)
        outside = [w for w in data["warnings"] if w["code"] == "outside_corpus"] if data else []
        bars["a 1e13-parameter target on 2e14 tokens: exit 0, JSON written, outside_corpus"] = (
            proc.returncode == 0 and out.is_file() and bool(outside),
            f"exit {proc.returncode}; " + (outside[0]["message"] if outside else "no outside_corpus warning"))

        proc = fits_cli("plan", "--error-model", model, "--target-params", 7e9, "--target-tokens", 1.4e11,
                        "--budget-fraction", 0.05, "--budget-flops", 1e20)
        err = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
        bars["both budget flags: exit 2 naming both, no traceback"] = (
            proc.returncode == 2 and "--budget-flops" in err and "--budget-fraction" in err
            and "Traceback" not in proc.stderr, err)
    print(f"\npython -m fits plan: median {sorted(seconds)[len(seconds) // 2]:.1f} s per plan, process start included; "
          f"fits.recommend alone: median {1000 * library_seconds(model):.0f} ms")
    for bar, (met, detail) in bars.items():
        print(f"[{'met' if met else 'NOT met'}] {bar}: {detail}")
    return 0 if all(met for met, _ in bars.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
