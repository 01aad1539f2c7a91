"""Write known curves out as trackers do: TensorBoard event files, W&B exports, MLflow histories and stores.

``runs`` is a frame with model, params, tokens, value and ``step`` (tokens / the run's tokens per step);
each writer lays it out in the tracker's own format, with an extra series (``lr``) beside the loss and a
``train/tokens_seen`` series, as training scripts log them.
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

LOSS = "train/loss"
TOKENS = "train/tokens_seen"


def lr(step):
    return 3e-4 * np.exp(-np.asarray(step, dtype=float) / 5e4)


def _tensor_summary(tag: str, value: float, first: bool):
    """A TF2-style scalar (``tf.summary.scalar``): a float64 tensor, the plugin named on its first write."""
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboardX.proto.tensor_pb2 import TensorProto
    from tensorboardX.proto.tensor_shape_pb2 import TensorShapeProto

    tensor = TensorProto(dtype="DT_DOUBLE", double_val=[value], tensor_shape=TensorShapeProto())
    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars")) if first else None
    return Summary(value=[Summary.Value(tag=tag, tensor=tensor, metadata=metadata)])


def write_tensorboard(runs: pd.DataFrame, root: Path, *, tensors: bool = False, wall_time0: float = 1.7e9) -> Path:
    """One sub-directory per model with one event file, written by tensorboardX's SummaryWriter.

    Scalars as ``simple_value`` (float32, as tensorboardX and PyTorch write them), or with ``tensors``
    as float64 tensors (as TF2 writes them).
    """
    from tensorboardX import SummaryWriter

    for model, part in runs.groupby("model", sort=False):
        writer = SummaryWriter(str(root / model), flush_secs=3600, max_queue=10**6)
        for i, row in enumerate(part.sort_values("step").itertuples()):
            t = wall_time0 + 10.0 * i
            step = int(row.step)
            if tensors:
                writer.file_writer.add_summary(_tensor_summary(LOSS, row.value, i == 0), step, t)
                writer.file_writer.add_summary(_tensor_summary(TOKENS, row.tokens, i == 0), step, t)
            else:
                writer.add_scalar(LOSS, row.value, step, walltime=t)
                writer.add_scalar(TOKENS, row.tokens, step, walltime=t)
            writer.add_scalar("lr", float(lr(row.step)), step, walltime=t)
        writer.close()
    return root


def write_wandb_panel(runs: pd.DataFrame, path: Path) -> Path:
    """A chart panel's "Export CSV": Step, then per run '<run> - train/loss' with its __MIN/__MAX band."""
    steps = np.sort(runs["step"].unique())
    table = pd.DataFrame({"Step": steps})
    for model, part in runs.groupby("model", sort=False):
        by_step = part.set_index("step")["value"]
        values = by_step.reindex(steps)
        for suffix in ("", "__MIN", "__MAX"):
            table[f"{model} - {LOSS}{suffix}"] = values.to_numpy()
    table.to_csv(path, index=False, float_format="%.17g")
    return path


def write_wandb_history(runs: pd.DataFrame, folder: Path, *, suffix: str = ".csv") -> list[Path]:
    """One file per run as `run.history()` gives it: _step, _runtime, _timestamp and the logged keys."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for model, part in runs.groupby("model", sort=False):
        part = part.sort_values("step")
        table = pd.DataFrame({"_step": part["step"].to_numpy(), "_runtime": np.arange(len(part)) * 10.0,
                              "_timestamp": 1.7e9 + np.arange(len(part)) * 10.0, LOSS: part["value"].to_numpy(),
                              TOKENS: part["tokens"].to_numpy(), "lr": lr(part["step"])})
        path = folder / f"{model}{suffix}"
        if suffix == ".jsonl":
            path.write_text("".join(json.dumps(r) + "\n" for r in table.to_dict(orient="records")))
        else:
            table.to_csv(path, index=False, float_format="%.17g")
        paths.append(path)
    return paths


def write_mlflow_history(runs: pd.DataFrame, path: Path) -> Path:
    """`get_metric_history` rows of every run in one CSV: key, value, timestamp, step, run_name."""
    rows = []
    for model, part in runs.groupby("model", sort=False):
        for i, row in enumerate(part.sort_values("step").itertuples()):
            for key, value in ((LOSS, row.value), ("lr", float(lr(row.step)))):
                rows.append({"key": key, "value": value, "timestamp": 1_700_000_000_000 + i, "step": int(row.step),
                             "run_name": model})
    pd.DataFrame(rows).to_csv(path, index=False, float_format="%.17g")
    return path


def write_mlruns(runs: pd.DataFrame, root: Path, *, experiment: str = "scaling", with_params: bool = True) -> Path:
    """An MLflow file store as MLflow 3 writes it: experiment and run meta.yaml, metrics/, params/, tags/."""
    exp_id = "422299767656233291"
    (root / ".trash").mkdir(parents=True, exist_ok=True)
    (root / "0").mkdir(exist_ok=True)
    (root / "0" / "meta.yaml").write_text("experiment_id: '0'\nlifecycle_stage: active\nname: Default\n")
    exp = root / exp_id
    exp.mkdir(exist_ok=True)
    (exp / "meta.yaml").write_text(f"artifact_location: file://{exp}\ncreation_time: 1700000000000\n"
                                   f"experiment_id: '{exp_id}'\nlifecycle_stage: active\nname: {experiment}\n")
    for model, part in runs.groupby("model", sort=False):
        run_id = uuid.uuid5(uuid.NAMESPACE_URL, model).hex
        run = exp / run_id
        for sub in ("metrics/train", "params", "tags", "artifacts"):
            (run / sub).mkdir(parents=True, exist_ok=True)
        (run / "meta.yaml").write_text(
            f"artifact_uri: file://{run}/artifacts\nend_time: 1700000100000\nentry_point_name: ''\n"
            f"experiment_id: '{exp_id}'\nlifecycle_stage: active\nrun_id: {run_id}\nrun_name: {model}\n"
            "source_name: ''\nsource_type: 4\nsource_version: ''\nstart_time: 1700000000000\nstatus: 3\ntags: []\n"
            "user_id: unknown\n")
        part = part.sort_values("step")
        stamps = 1_700_000_000_000 + np.arange(len(part))
        (run / "metrics" / "train" / "loss").write_text("".join(
            f"{t} {v!r} {int(s)}\n" for t, v, s in zip(stamps, part["value"].tolist(), part["step"].tolist())))
        (run / "metrics" / "lr").write_text("".join(
            f"{t} {float(v)!r} {int(s)}\n" for t, v, s in zip(stamps, lr(part["step"]), part["step"].tolist())))
        if with_params:
            (run / "params" / "n_params").write_text(str(int(part["params"].iloc[0])))
        (run / "params" / "lr").write_text("0.0003")
        (run / "tags" / "mlflow.runName").write_text(model)
    return root
