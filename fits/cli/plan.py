"""``python -m fits plan``: which small models to train for a target, from a saved error model.

    python -m fits plan --error-model M.json --target-params N (--target-tokens D | --target-compute C)
        (--budget-fraction F | --budget-flops B) [--max-models K] [--max-epochs E] [--min-size S] [--max-size S]
        [--json OUT] [--csv OUT] [--template OUT] [--plot OUT.png]

``M.json`` comes from ``python -m fits calibrate --save-model M.json``. The JSON written is the plan the
service makes (``fits.recommend(...).to_dict()``, its ``version`` the plan's). The request is checked
before the error model is read: conflicting or impossible input is one message and exit status 2.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errormodel import ErrorModel
from ..jsonsafe import json_safe
from ..plan import PlanInputError, PlanRequest, recommend
from ..schedule import plan_csv, prediction_template_csv
from .common import CliError, pct, positive_int, positive_number, write_json


def _request(args) -> PlanRequest:
    request = PlanRequest(target_params=args.target_params, target_tokens=args.target_tokens,
                          target_compute=args.target_compute, budget_flops=args.budget_flops,
                          budget_fraction=args.budget_fraction, min_size=args.min_size, max_size=args.max_size,
                          max_models=args.max_models, max_epochs=args.max_epochs)
    try:
        request.resolved()
    except PlanInputError as exc:
        flags = " and ".join("--" + f.replace("_", "-") for f in exc.fields)
        raise CliError(f"{flags}: {exc.reason}") from None
    return request


def load_error_model(path: Path) -> ErrorModel:
    """An error model saved by ``calibrate --save-model``; any problem is a CliError naming the file."""
    if not path.is_file():
        raise CliError(f"error model not found: {path} (make one with python -m fits calibrate --save-model)")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CliError(f"cannot read the error model {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CliError(f"{path} is not an error model (a JSON object from calibrate --save-model)")
    try:
        return ErrorModel.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise CliError(f"{path} is not an error model this library reads: {exc}") from None


def _writable(path: Path | None) -> None:
    if path is not None and not path.parent.is_dir():
        raise CliError(f"cannot write {path}: no directory {path.parent}")


def _write_text(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc}") from None


def _print(plan: dict) -> None:
    rec = plan["recommended"]
    print(f"recommended: {rec['description']}; expected ARE p10 {pct(rec['p10'])}, p50 {pct(rec['p50'])}, "
          f"p90 {pct(rec['p90'])}; {rec['total_flops']:.3g} FLOPs ({rec['train_compute_share']:.2%} of the target's)")
    print(f"{'model':<16}{'params':>11}{'tokens':>11}{'FLOPs':>11}{'eval every':>12}{'evals':>7}")
    for m in rec["models"]:
        print(f"{m['model']:<16}{m['params']:>11.3g}{m['tokens']:>11.3g}{m['flops']:>11.3g}"
              f"{m['eval_every_tokens']:>12.3g}{m['evaluations']:>7d}")
    for n in plan["naive"]:
        mark = "  (the recommendation)" if n["recommended"] else ""
        print(f"naive {n['name']:<16} p10 {pct(n['p10'])}  p50 {pct(n['p50'])}  p90 {pct(n['p90'])}{mark}")
    for a in plan["alternatives"]:
        print(f"runner-up: {a['why']}")
    opt = plan["compute_optimal"]
    lo, hi = opt["params_interval"]
    print(f"compute-optimal split of the target's compute ({opt['source']}): {opt['params']:.3g} parameters "
          f"({lo:.3g}-{hi:.3g}) on {opt['tokens']:.3g} tokens, {opt['tokens_per_param']:.1f} tokens per parameter")
    for w in plan["warnings"]:
        print(f"warning [{w['code']}]: {w['message']}")


def cmd_plan(args) -> int:
    request = _request(args)  # before the error model: bad input never waits for (or blames) the model
    for path in (args.json, args.csv, args.template, args.plot):
        _writable(path)
    model = load_error_model(args.error_model)
    try:
        plan = json_safe(recommend(model, request).to_dict())
    except PlanInputError as exc:
        raise CliError(f"--{exc.field.replace('_', '-')}: {exc.reason}") from None
    _print(plan)
    if args.json:
        write_json(args.json, plan)
    if args.csv:
        _write_text(args.csv, plan_csv(plan))
    if args.template:
        _write_text(args.template, prediction_template_csv(plan))
    if args.plot:
        from ..plots import iso_flop_figure  # matplotlib only when a figure is asked for

        try:
            iso_flop_figure(plan).savefig(args.plot, dpi=110)
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot write {args.plot}: {exc}") from None
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("plan", help="which small models to train for a target (needs an error model from calibrate)")
    p.add_argument("--error-model", type=Path, required=True, metavar="M.json",
                   help="error model from python -m fits calibrate --save-model")
    p.add_argument("--target-params", type=positive_number, required=True, metavar="N", help="the target's parameters")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-tokens", type=positive_number, metavar="D", help="the target's training tokens")
    target.add_argument("--target-compute", type=positive_number, metavar="C", help="or its compute (FLOPs, 6 N D)")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--budget-fraction", type=positive_number, metavar="F",
                        help="budget for the small models as a share of the target's compute (0-1]")
    budget.add_argument("--budget-flops", type=positive_number, metavar="B", help="or in FLOPs")
    p.add_argument("--max-models", type=positive_int, default=8, metavar="K", help="at most this many sizes (1-20)")
    p.add_argument("--max-epochs", type=positive_number, default=1.0, metavar="E",
                   help="passes over the target's data (> 1 if it repeats)")
    p.add_argument("--min-size", type=positive_number, metavar="S", help="smallest small model (parameters)")
    p.add_argument("--max-size", type=positive_number, metavar="S", help="largest small model (parameters)")
    p.add_argument("--json", type=Path, metavar="OUT", help="write the plan as JSON here")
    p.add_argument("--csv", type=Path, metavar="OUT", help="write the runs as CSV here (one row per run)")
    p.add_argument("--template", type=Path, metavar="OUT",
                   help="write a prediction template here: model, params, tokens, value at each evaluation point")
    p.add_argument("--plot", type=Path, metavar="OUT.png", help="draw the iso-FLOP figure here")
    p.set_defaults(func=cmd_plan)
