"""TensorBoard event files: a directory of runs, one sub-directory per run (nested directories allowed).

Records are read with TensorBoard's own record reader and ``Event`` protobuf (the package
``tensorboard``), not a parser of our own. A run is a directory holding event files
(``*tfevents*``), named by its path below the input directory; the files of one run are read
together, so a run restarted into a new file is one run, and where a step was written twice the later
write wins (the earlier is reported). Scalars come as ``simple_value`` (tensorboardX, PyTorch,
TF1) or as one-element tensors (TF2 ``tf.summary.scalar``, ``new_style`` writers); TensorBoard
stores them as float32 unless the writer asked for double.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

from .core import OTHER_SERIES, RowBudget, RunInfo, RunsImportError, Scalars, other_frame, scalars_frame


def is_event_file(name: str) -> bool:
    return "tfevents" in name  # TensorBoard's own rule for what it loads


def find_event_dirs(root: Path) -> tuple[dict[str, list[Path]], list[tuple[str, str]]]:
    """Run key -> its event files (sorted), and the other files with why they are not read."""
    runs: dict[str, list[Path]] = {}
    ignored = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        here = Path(folder)
        for name in sorted(files):
            path = here / name
            if is_event_file(name) and path.is_file():
                rel = here.relative_to(root).as_posix()
                runs.setdefault(rel, []).append(path)
            else:
                ignored.append((path.relative_to(root).as_posix(), "not a TensorBoard event file"))
    return runs, ignored


def read_tensorboard(root: Path, *, tags: set[str], budget: RowBudget, root_name: str) -> Scalars:
    """The values of ``tags`` in every run below ``root`` (a directory or one event file)."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.compat.tensorflow_stub import errors, pywrap_tensorflow
    from tensorboard.util import tensor_util

    if root.is_file():
        event_dirs, ignored = {".": [root]}, []
        label_root = root.parent
    else:
        event_dirs, ignored = find_event_dirs(root)
        label_root = root
    if not event_dirs:
        raise RunsImportError("no TensorBoard event files (*tfevents*) in this directory or below it", path=root,
                              field="file")

    runs: dict[str, RunInfo] = {}
    run_col, metric_col, step_col, value_col, order_col, source_col = [], [], [], [], [], []
    other: Counter = Counter()
    notes: list[str] = []
    parse = event_pb2.Event.FromString
    for key, files in event_dirs.items():
        run = root_name if key == "." else key
        runs[run] = RunInfo(name=run, source=key if key != "." else root_name, aliases=(key,) if key != "." else ())
        for path in files:
            rel = path.relative_to(label_root).as_posix()
            try:
                reader = pywrap_tensorflow.PyRecordReader_New(str(path))
            except (errors.OpError, OSError) as exc:
                raise RunsImportError(f"cannot open: {exc}", path=rel, field="file") from None
            n_values = 0
            record_index = 0
            while True:
                try:
                    reader.GetNext()
                except errors.OutOfRangeError:
                    break
                except errors.DataLossError as exc:
                    if "truncated" in str(exc):
                        notes.append(f"{rel}: ends in a partly written record (a run still writing?); "
                                     f"the {record_index} complete records before it were read")
                    else:
                        notes.append(f"{rel}: corrupt after record {record_index} ({exc}); the rest of the file "
                                     "was not read")
                    break
                record_index += 1
                try:
                    event = parse(reader.record())
                except Exception as exc:  # protobuf's DecodeError: a record that is not an Event
                    raise RunsImportError(f"record {record_index} is not a TensorBoard event ({exc})", path=rel,
                                          field="file") from None
                if event.WhichOneof("what") != "summary":
                    continue
                for value in event.summary.value:
                    tag = value.tag
                    kind = value.WhichOneof("value")
                    if tag not in tags:
                        other[(run, tag, OTHER_SERIES if kind in ("simple_value", "tensor")
                               else f"not a scalar ({kind})", rel)] += 1
                        continue
                    if kind == "simple_value":
                        number = value.simple_value
                    elif kind == "tensor":
                        number = _tensor_scalar(tensor_util, value.tensor)
                        if number is None:
                            other[(run, tag, "a tensor that is not one number", rel)] += 1
                            continue
                    else:
                        other[(run, tag, f"not a scalar ({kind})", rel)] += 1
                        continue
                    run_col.append(run)
                    metric_col.append(tag)
                    step_col.append(event.step)
                    value_col.append(number)
                    order_col.append(event.wall_time)
                    source_col.append(rel)
                    n_values += 1
            budget.take(n_values, rel)

    frame = scalars_frame(run_col, metric_col, step_col, value_col, order_col, source_col)
    # Later writes win: by wall time, and by the order of reading (files sorted by name, which starts with
    # their creation time) where two writes share one.
    frame["order"] = np.lexsort((np.arange(len(frame)), frame["order"].to_numpy())).argsort().astype(float)
    others = other_frame((run, tag, n, reason, src) for (run, tag, reason, src), n in other.items())
    return Scalars(runs=runs, frame=frame, other=others, ignored=ignored, notes=notes)


def _tensor_scalar(tensor_util, tensor) -> float | None:
    try:
        array = tensor_util.make_ndarray(tensor)
    except (TypeError, ValueError):
        return None
    if array.size != 1 or array.dtype.kind not in "fiub":
        return None
    return float(array.reshape(-1)[0])
