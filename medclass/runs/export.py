"""A finished run as one self-contained model file (ONNX or TorchScript) with a JSON sidecar, and loading it back.

:func:`export_run` writes ``RUN/export/model.onnx`` (or ``model.pt``) and its sidecar ``model.onnx.json`` beside it;
:func:`load_exported` reads the pair into an :class:`ExportedModel`, which predicts like
:class:`~medclass.runs.predict.TrainedModel` (``medclass predict --engine onnx MODEL.onnx IMAGES...``).

What the graph holds. Its input is the uint8 ``(N, size, size, C)`` image (a volume run's: the
``(N, size, size, size, C)`` volume) that steps 1-2 of the run's
:class:`~medclass.data.pipeline.InputPipeline` make (reading DICOM/NIfTI/PNG, windows, presets, resize: file
work that stays in Python); its output is what ``TrainedModel.predict_batch`` returns. In between,
:class:`ExportWrapper` traces step 3 of the same pipeline object (:func:`~medclass.transforms.intensity.to_float`
and the run's :class:`~medclass.transforms.intensity.Normalizer`, every kind, statistics baked in as constants),
the network, the task's activation (softmax, sigmoid, CORAL, regression de-standardisation, per-head softmax)
and, when the run evaluates with it, the mirror average (TTA). The batch axis is dynamic. A consumer in another
language therefore only has to make the uint8 image; the sidecar describes how (``preprocessing`` is
``pipeline.to_dict()``), and :func:`load_exported` rebuilds that same pipeline from it.

Exporter. ``torch.onnx.export(..., dynamo=False)``, the TorchScript-based exporter, at opset 17: in torch 2.14.1
it exports every family of the registry and needs no package beyond ``onnx``. The torch.export-based exporter
(``dynamo=True``, the default since torch 2.9) exported every family too, but needs ``onnxscript`` and took
3-6 times longer; switch to it when the TorchScript-based one is removed (torch deprecates it). ``torch.cummin``
(CORAL's running minimum) has no ONNX operator, so the wrapper uses :func:`coral_probabilities_export`, the
same running minimum as ``K - 2`` element-wise minima. TorchScript files are made with ``torch.jit.trace``.

Writing. The model is exported into memory, checked (``check``: the exported model and the run's torch model
on the same random uint8 images), written atomically, and the sidecar, which records the model's SHA-256, is
written last. :func:`load_exported` verifies that SHA-256, so a model without its sidecar, or beside the
sidecar of another export (an export killed between its two writes), is refused with a clear message rather
than run with the wrong classes or preprocessing. Inside the run folder the writing holds the folder's lock.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._version import __version__
from ..data.pipeline import InputPipeline
from ..errors import CheckpointError, ConfigError, DataError, did_you_mean
from ..evaluation.thresholds import choose_operating_points
from ..models.checkpoint import sha256_hex
from ..run_folder import RunFolder, read_predictions
from ..tasks import Task, get_task, task_from_meta
from ..transforms.intensity import to_float
from ..utils.io import atomic_write_bytes, atomic_write_json, read_json
from .predict import Predictor, TrainedModel, load_run

__all__ = ["export_run", "load_exported", "ExportedModel", "ExportWrapper", "export_module", "open_engine",
           "coral_probabilities_export", "FORMAT", "FORMATS", "ONNX_UNSUPPORTED", "EXPORT_HINT"]

log = logging.getLogger(__name__)

FORMAT = "medclass-export-1"  # the sidecar's format; load_exported reads only this one
FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}  # export format -> model file suffix
OPSET = 17
EXPORT_HINT = 'pip install "medclass[export]"'
INPUT_NAME, OUTPUT_NAME = "image", "probabilities"
# model family -> why ONNX cannot express it; none at present (tests/unit/runs/test_export.py sweeps the registry)
ONNX_UNSUPPORTED: dict[str, str] = {}
CHECK_TOLERANCE = 1e-4  # a larger difference in the check is logged as a warning
_TRACE_N, _CHECK_N = 2, 8  # images traced (2, so no size-1 batch is specialised) and checked (another size)


# --- the traced module ---------------------------------------------------------------------------------


def coral_probabilities_export(logits: torch.Tensor) -> torch.Tensor:
    """:func:`medclass.tasks.coral_probabilities` without ``torch.cummin``, which ONNX cannot express.

    The running minimum over the ``K - 1`` cumulative probabilities is written as ``K - 2`` element-wise
    ``torch.minimum`` of neighbouring columns; the result is identical.
    """
    s = torch.sigmoid(logits.float())
    cols = [s[:, :1]]
    for k in range(1, s.shape[1]):
        cols.append(torch.minimum(cols[-1], s[:, k:k + 1]))
    above = torch.cat(cols, dim=1)
    cum = torch.cat([torch.ones_like(above[:, :1]), above, torch.zeros_like(above[:, :1])], dim=1)
    return cum[:, :-1] - cum[:, 1:]


class ExportWrapper(nn.Module):
    """uint8 ``(N, H, W, C)`` images (volumes: ``(N, D, H, W, C)``) -> probabilities: step 3 of ``pipeline``,
    ``model``, ``task``'s activation and, with ``tta``, the average over each image and its left-right mirror (as
    evaluation computes them)."""

    def __init__(self, model: nn.Module, pipeline: InputPipeline, task: Task, tta: bool = False):
        super().__init__()
        self.model = model
        self.normalizer = pipeline.normalizer
        self.task = task
        self.tta = tta

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.normalizer(to_float(image))
        p = self.probabilities(self.model(x))
        if self.tta:
            p = (p + self.probabilities(self.model(x.flip(-1)))) / 2
        return p

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        if self.task.head == "coral":
            return coral_probabilities_export(logits)
        return self.task.probabilities(logits)


def export_module(module: nn.Module, fmt: str, example: torch.Tensor) -> bytes:
    """Trace ``module`` (an :class:`ExportWrapper`) on the uint8 batch ``example`` and serialise it.

    ``onnx``: the TorchScript-based ONNX exporter at opset 17, input ``image`` and output ``probabilities``,
    both with a dynamic batch axis. ``torchscript``: ``torch.jit.trace`` saved by ``torch.jit.save``.
    """
    buf = io.BytesIO()
    module = module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        # constants in the trace (normalisation statistics), and torch's notices that both tracers are deprecated
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        if fmt == "onnx":
            torch.onnx.export(module, (example,), buf, dynamo=False, opset_version=OPSET,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
        else:
            torch.jit.save(torch.jit.trace(module, example, check_trace=False), buf)
    data = buf.getvalue()
    if fmt == "onnx":
        onnx = _import_onnx()
        onnx.checker.check_model(onnx.load_from_string(data))
    return data


# --- engines: run a serialised model on a uint8 batch --------------------------------------------------


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ConfigError(f"Exporting to ONNX needs the onnx package, which is not installed. Install it with: "
                          f"{EXPORT_HINT}  (or use --format torchscript, which needs only PyTorch)") from None
    return onnx


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(f"Running an ONNX model needs ONNX Runtime (the onnxruntime package), which is not "
                          f"installed. Install it with: {EXPORT_HINT}") from None
    return onnxruntime


class _OnnxEngine:
    def __init__(self, data: bytes, threads: int | None = None):
        ort = _import_onnxruntime()
        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # errors only
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]


class _TorchScriptEngine:
    def __init__(self, data: bytes, threads: int | None = None):  # threads: torch's are process-wide, left alone
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated (module docstring)
            self.module = torch.jit.load(io.BytesIO(data), map_location="cpu").eval()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.module(torch.as_tensor(batch)).numpy()


_ENGINES = {"onnx": _OnnxEngine, "torchscript": _TorchScriptEngine}


def open_engine(data: bytes, fmt: str, threads: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """A callable running the serialised model ``data`` (ONNX Runtime on CPU, or TorchScript) on a uint8 batch.
    ``threads`` sets ONNX Runtime's intra-op threads (default: its own choice)."""
    return _ENGINES[fmt](data, threads)


# --- export ------------------------------------------------------------------------------------------


def export_run(run_dir: str | os.PathLike, fmt: str = "onnx", out: str | os.PathLike | None = None,
               check: bool = True) -> dict[str, Any]:
    """Export the validation-chosen checkpoint of a finished run as a model file plus a JSON sidecar.

    Args:
        run_dir: a run folder whose status is ``complete``.
        fmt: ``onnx`` or ``torchscript``.
        out: the model file (default ``RUN/export/model.onnx`` or ``model.pt``); the sidecar is its path with
            ``.json`` appended (``model.onnx.json``).
        check: run the exported model and the run's torch model on the same random uint8 images and record
            the largest absolute difference of their outputs (in the result and the sidecar).

    Returns:
        ``{"model": Path, "sidecar": Path, "check": {"max_abs_diff", "n"} or None}``.

    Raises:
        RunFolderError: the run is not finished (the message says how to resume it).
        ConfigError: unknown format, a model path ending in ``.json``, or onnx/onnxruntime not installed.

    Example:
        >>> export_run("runs/b0")  # doctest: +SKIP
        {'model': PosixPath('runs/b0/export/model.onnx'), 'sidecar': PosixPath('runs/b0/export/model.onnx.json'), ...}
    """
    if fmt not in FORMATS:
        raise ConfigError(f"The export format must be one of {', '.join(FORMATS)}; got {fmt!r}."
                          f"{did_you_mean(fmt, FORMATS)}")
    folder = RunFolder(run_dir).require_complete()
    if fmt == "onnx":  # both are needed (export, then the check and prediction); say so before any work
        _import_onnx()
        _import_onnxruntime()
    model_path = Path(out) if out is not None else folder.path / "export" / f"model{FORMATS[fmt]}"
    if model_path.suffix.lower() == ".json":
        raise ConfigError(f"The model file '{model_path}' must not end in .json (sidecars do). Use e.g. "
                          f"'{model_path.with_suffix(FORMATS[fmt])}'.")
    sidecar_path = sidecar_of(model_path)
    inside = _is_within(model_path, folder.path)
    with folder.lock(f"export --format {fmt}") if inside else contextlib.nullcontext():
        trained = load_run(folder.path)
        wrapper = ExportWrapper(trained.model, trained.pipeline_, task_from_meta(trained.meta_), trained.tta)
        data = export_module(wrapper, fmt, torch.from_numpy(random_batch(trained.pipeline_, _TRACE_N, seed=0)))
        result = _check(trained, open_engine(data, fmt)) if check else None
        sidecar = _sidecar(folder, trained, fmt, model_path.name, sha256_hex(data), result)
        atomic_write_bytes(model_path, data)
        atomic_write_json(sidecar_path, sidecar)  # last: the pair is complete only once it names the model's hash
    log.info("exported %s as %s (%d bytes)", folder.path, model_path, len(data))
    return {"model": model_path, "sidecar": sidecar_path, "check": result}


def sidecar_of(model_path: str | os.PathLike) -> Path:
    """The sidecar of a model file: its name with ``.json`` appended (``model.onnx.json``), so an ONNX and a
    TorchScript export can share a folder."""
    p = Path(model_path)
    return p.with_name(p.name + ".json")


def random_batch(pipeline: InputPipeline, n: int, seed: int) -> np.ndarray:
    """``n`` random uint8 images (volumes) of the pipeline's size and channels (trace and check inputs)."""
    shape = (n, *input_shape(pipeline))
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def input_shape(pipeline: InputPipeline) -> tuple[int, ...]:
    """One input's shape: ``(size, size, C)``, ``(size, size, size, C)`` for volumes, ``(V, size, size, C)`` for
    cases of ``V`` views."""
    views = (len(pipeline.views),) if pipeline.views else ()
    return (*views, *(pipeline.size,) * pipeline.spatial_dims, pipeline.channels or 1)


def _check(trained: TrainedModel, engine: Callable[[np.ndarray], np.ndarray]) -> dict[str, Any]:
    batch = random_batch(trained.pipeline_, _CHECK_N, seed=1)
    diff = float(np.abs(engine(batch) - trained.predict_batch(batch)).max())
    if not diff <= CHECK_TOLERANCE:
        log.warning("the exported model differs from the run's torch model by up to %.3g on random images (more "
                    "than %g); check its predictions before relying on it", diff, CHECK_TOLERANCE)
    return {"max_abs_diff": diff, "n": _CHECK_N}


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _sidecar(folder: RunFolder, trained: TrainedModel, fmt: str, model_file: str, model_sha: str,
             check: dict[str, Any] | None) -> dict[str, Any]:
    meta = trained.meta_
    task = task_from_meta(meta)
    pipe = trained.pipeline_
    ckpt_sha = sha256_hex(folder.best_weights.read_bytes())
    ops, ops_from = _operating_points(folder, trained, task)
    n_out = 1 if task.regression else len(trained.classes_)
    exporter = ({"method": "torch.onnx.export (TorchScript-based, dynamo=False)", "opset": OPSET}
                if fmt == "onnx" else {"method": "torch.jit.trace"})
    volumes = pipe.spatial_dims == 3
    layout = "(N, C, D, H, W)" if volumes else "(N, C, V, H, W)" if pipe.views else "(N, C, H, W)"
    graph = [f"to_float: x / 255 as float {layout}",
             f"normalise: {pipe.normalize.get('kind', 'fixed')}",
             f"network: {meta['model']}", f"activation: {_activation(task)}"]
    if trained.tta:
        graph.append(f"tta: mean of the {'volume' if volumes else 'image'}'s and its left-right mirror's "
                     f"probabilities")
    return {
        "format": FORMAT,
        "model_format": fmt,
        "model_file": model_file,
        "model_sha256": model_sha,
        "medclass_version": __version__,
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "exporter": {**exporter, "torch": torch.__version__},
        "run": {"id": f"{folder.path.name}@{ckpt_sha[:12]}", "name": folder.path.name,
                "checkpoint": str(folder.best_weights.relative_to(folder.path)), "checkpoint_sha256": ckpt_sha,
                "epoch": meta.get("epoch"), **{k: meta[k] for k in ("val_auc", "val_r2") if k in meta},
                "model": meta["model"], "model_kwargs": meta.get("model_kwargs", {}), "dataset": meta.get("dataset")},
        "classes": list(trained.classes_),
        "positive_label": meta.get("positive_label"),
        "task": {"name": task.name, "head": task.head, "heads": list(task.heads),
                 "head_names": list(meta.get("head_names", [])), "target_mean": task.target_mean,
                 "target_std": task.target_std},
        "input": {"name": INPUT_NAME, "dtype": "uint8",
                  "layout": "NDHWC" if volumes else "NVHWC" if pipe.views else "NHWC",
                  **({"views": list(pipe.views)} if pipe.views else {}),
                  "shape": ["batch", *input_shape(pipe)], "size": pipe.size,
                  "channels": pipe.channels, "made_by": "the preprocessing below (InputPipeline.load / from_array)"},
        "output": {"name": OUTPUT_NAME, "dtype": "float32", "shape": ["batch", n_out],
                   "columns": ["value"] if task.regression else list(trained.classes_)},
        "graph": graph,
        "preprocessing": pipe.to_dict(),
        "tta": trained.tta,
        "threshold": trained.threshold,
        "operating_points": ops,
        "operating_points_from": ops_from,
        "check": check,
        "config": meta.get("config", {}),
    }


def _activation(task: Task) -> str:
    if task.head == "coral":
        return "CORAL cumulative probabilities (running minimum), then grade probabilities"
    if task.regression:
        return f"none; value = output * {task.target_std:g} + {task.target_mean:g}"
    if task.kind.multihead:
        return f"softmax per head ({', '.join(map(str, task.heads))} classes)"
    return "sigmoid per label" if task.multilabel else "softmax"


def _operating_points(folder: RunFolder, trained: TrainedModel, task: Task) -> tuple[list[dict], str | None]:
    """Binary runs: the four thresholds chosen on validation (``metrics/val.json``, else recomputed from
    ``predictions/val.csv``), each as ``{name, threshold, rule, val: {sensitivity, specificity}}``."""
    if task.name != "binary":
        return [], None
    val_json = folder.metrics("val")
    if val_json.is_file():
        ops = read_json(val_json).get("operating_points")
        if ops:
            return [_op(o["name"], o["threshold"], o["rule"], o["val"]) for o in ops], "metrics/val.json"
    if folder.predictions("val").is_file():
        y, p, _ = read_predictions(folder.predictions("val"))
        pos = 1 if trained.meta_.get("positive_label") is None else int(trained.meta_["positive_label"])
        ev = trained.meta_.get("config", {}).get("eval", {})
        try:
            points = choose_operating_points(y == pos, p[:, pos], ev.get("sensitivity_target", 0.95),
                                             ev.get("specificity_target", 0.95), default=trained.threshold)
        except ValueError as e:  # one class in the validation split
            log.warning("no operating points in the export: %s", e)
            return [], None
        return [_op(o.name, o.threshold, o.rule, {"sensitivity": o.val_sensitivity,
                                                 "specificity": o.val_specificity}) for o in points], \
            "predictions/val.csv"
    return [], None


def _op(name: str, threshold: float, rule: str, val: dict[str, float]) -> dict[str, Any]:
    finite = {k: (float(v) if v is not None and math.isfinite(v) else None) for k, v in val.items()}
    return {"name": name, "threshold": float(threshold), "rule": rule, "val": finite}


# --- loading -----------------------------------------------------------------------------------------


class ExportedModel(Predictor):
    """An exported model with its input pipeline and task, predicting like :class:`TrainedModel`.

    Attributes:
        classes_, task_, pipeline_, input_size_, in_chans_, threshold, tta: as for :class:`TrainedModel`.
        meta_: the sidecar (classes, task, input spec, preprocessing, operating points, run id, config).
        operating_points_: the binary thresholds chosen on validation (name, threshold, rule, validation rates).
        format_: ``onnx`` or ``torchscript``; path_: the model file.
    """

    def __init__(self, engine: Callable[[np.ndarray], np.ndarray], sidecar: dict[str, Any], path: Path):
        self.engine = engine
        self.meta_ = sidecar
        self.path_ = path
        self.format_ = sidecar["model_format"]
        self.classes_ = list(sidecar["classes"])
        t = sidecar["task"]
        self.task_ = t["name"]
        self._task = get_task(t["name"], head="coral" if t["head"] == "coral" else "auto", heads=tuple(t["heads"]),
                              target_mean=t["target_mean"], target_std=t["target_std"])
        self.pipeline_ = InputPipeline.from_dict(sidecar["preprocessing"])
        self.input_size_, self.in_chans_ = self.pipeline_.size, self.pipeline_.channels
        self.threshold = float(sidecar["threshold"])
        self.tta = bool(sidecar["tta"])
        self.operating_points_ = list(sidecar.get("operating_points", []))

    def predict_batch(self, batch: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Probabilities of a prepared uint8 ``(N, size, size, C)`` batch (volumes: ``(N, size, size, size, C)``)."""
        batch = np.asarray(batch)
        want = input_shape(self.pipeline_)
        if batch.dtype != np.uint8 or batch.ndim != len(want) + 1 or batch.shape[1:] != want:
            raise DataError(f"The exported model takes a uint8 batch of shape (N, {', '.join(map(str, want))}), as "
                            f"prepare() makes; got {batch.dtype} {batch.shape}.")
        if not len(batch):
            return np.zeros((0, self.num_outputs_), np.float32)
        return np.concatenate([self.engine(np.ascontiguousarray(batch[i:i + batch_size]))
                               for i in range(0, len(batch), batch_size)])

    def __repr__(self) -> str:
        return (f"ExportedModel({self.format_} '{self.path_}', run={self.meta_['run']['id']}, task={self.task_}, "
                f"classes={self.classes_}, input={self.pipeline_.describe()})")


def load_exported(path: str | os.PathLike, engine: str | None = None, threads: int | None = None) -> ExportedModel:
    """An exported model (``.onnx`` or ``.pt`` with its ``.json`` sidecar) ready to predict.

    Args:
        path: the model file, a folder holding ``model.onnx`` / ``model.pt``, or a run folder with ``export/``.
        engine: ``onnx`` or ``torchscript`` to insist on one (an export of the other format is refused);
            ``None`` runs what the sidecar says.
        threads: ONNX Runtime's intra-op threads (default: its own choice).

    Raises:
        CheckpointError: no model, no sidecar, a sidecar of another format version, or a model file that is
            not the one its sidecar describes (SHA-256).

    Example:
        >>> m = load_exported("runs/b0/export/model.onnx")  # doctest: +SKIP
        >>> m.predict_proba(["scan.dcm"])  # doctest: +SKIP
    """
    if engine is not None and engine not in FORMATS:
        raise ConfigError(f"engine must be one of {', '.join(FORMATS)} or None; got {engine!r}.")
    model_path = _find_model(Path(path), engine)
    sidecar_path = sidecar_of(model_path)
    if not sidecar_path.is_file():
        raise CheckpointError(f"'{model_path}' has no sidecar '{sidecar_path.name}' beside it; the sidecar (written by "
                              f"`medclass export`) holds its classes, preprocessing and thresholds. Copy it with the "
                              f"model, or export the run again: medclass export RUN_DIR")
    try:
        sidecar = read_json(sidecar_path)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"The sidecar '{sidecar_path}' could not be read ({e}). Export the run again: "
                              f"medclass export RUN_DIR") from None
    got = sidecar.get("format") if isinstance(sidecar, dict) else None
    if got != FORMAT:
        raise CheckpointError(f"'{sidecar_path}' is a sidecar of format {got!r}, but this medclass ({__version__}) "
                              f"reads {FORMAT!r}. Export the run again with this medclass: medclass export RUN_DIR")
    fmt = sidecar["model_format"]
    if engine is not None and engine != fmt:
        raise ConfigError(f"'{model_path}' was exported as {fmt}, not {engine}; run it with --engine {fmt}.")
    data = model_path.read_bytes()
    if sha256_hex(data) != sidecar["model_sha256"]:
        raise CheckpointError(f"'{model_path}' is not the model its sidecar '{sidecar_path.name}' describes (their "
                              f"SHA-256 differ): the file changed after export, or an export was interrupted. "
                              f"Export the run again: medclass export RUN_DIR")
    return ExportedModel(open_engine(data, fmt, threads), sidecar, model_path)


def _find_model(path: Path, engine: str | None) -> Path:
    if path.is_dir():
        suffixes = [FORMATS[engine]] if engine else list(FORMATS.values())
        for folder in (path, path / "export"):
            for suffix in suffixes:
                if (folder / f"model{suffix}").is_file():
                    return folder / f"model{suffix}"
        raise CheckpointError(f"'{path}' holds no exported model ({' or '.join('model' + s for s in suffixes)}, "
                              f"itself or in export/). Export a run with: medclass export RUN_DIR")
    if path.suffix.lower() == ".json":
        raise CheckpointError(f"'{path}' looks like a sidecar; pass the model file beside it (.onnx or .pt).")
    if not path.is_file():
        raise CheckpointError(f"Exported model '{path}' does not exist.")
    return path
