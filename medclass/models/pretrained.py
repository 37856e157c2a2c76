"""Pretrained weights: ImageNet (torchvision / timm), weight files and medclass runs, adapted to the model.

:func:`load_pretrained` reads a state dict from one of three sources:

- ``"imagenet"``: the weights named on the model card. torchvision's file is looked up in torch hub's cache
  (``torch.hub.get_dir()/checkpoints``, i.e. ``$TORCH_HOME/hub``) under the name of its URL, and downloaded
  there when missing; timm's come from the Hugging Face Hub cache (``model.safetensors`` before
  ``pytorch_model.bin``), downloaded with ``hf_hub_download`` when missing. Offline, with nothing cached,
  this is a :class:`~medclass.errors.ConfigError` that names the cache file and the URL to fetch by hand:
  never a silent random initialisation.
- a weights file: ``.safetensors`` or ``.pth`` / ``.pt`` / ``.bin``; a ``{"state_dict": ...}`` or
  ``{"model": ...}`` wrapper and a ``module.`` prefix (DataParallel) are unwrapped.
- a medclass run folder: its ``checkpoints/best.safetensors``, which must come from the same architecture.

The state dict is then fitted to the model, as timm's ``load_pretrained`` does: the model's own
``pretrained_filter`` runs first when it has one (dropping auxiliary heads, renaming old keys, folding
AlexNet/VGG ``fc6`` onto a smaller grid, resampling ViT patch and position embeddings). Then, tensor by
tensor: equal shapes are copied; the input convolution (``card.first_conv``) is adapted to the model's
channel count (3 -> 1 sums the RGB filters with timm's ``adapt_input_conv``, 1 -> n repeats the filter
divided by n); an input convolution of another kernel size (a small-image 3x3 stem against the 7x7
ImageNet one) keeps its initialisation; a classifier of another shape (another ``num_classes``) is
re-initialised. Anything else missing or of the wrong shape is an error, since it means the weights belong
to another architecture or width. What was skipped or adapted is logged and returned as a
:class:`LoadReport`.

No weights file runs code when it is read, wherever it comes from: safetensors holds only tensors, and
everything else goes through ``torch.load(weights_only=True)``, which refuses pickled objects other than
tensors and containers (torch.hub and torchvision's ``get_state_dict`` default to ``weights_only=False``,
so they are not used). Cached files are hash-checked before they are read, on the bytes that are then
loaded: a torchvision file against the SHA-256 prefix in its name (torch.hub's ``check_hash``
convention, ``resnet18-f37072fd.pth``), a Hugging Face file against the SHA-256 its blob is stored under
(for LFS files, the hash the hub sent). A file that fails either check is a
:class:`~medclass.errors.CheckpointError` that names it and says to delete it. The blob name is written by
whoever wrote the cache, so the check catches damage and careless replacement; it is
``weights_only=True`` that keeps a deliberate payload from running.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import timm
import torch
import torchvision
from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError
from safetensors import SafetensorError
from safetensors.torch import load
from timm.models import adapt_input_conv
from torch import nn
from torch.hub import HASH_REGEX

from ..errors import CheckpointError, ConfigError, did_you_mean
from ._registry import ModelCard, get_model_card, list_models
from .checkpoint import load_weights

__all__ = ["load_pretrained", "read_state_dict", "imagenet_state_dict", "imagenet_cached", "adapt_input_channels",
           "LoadReport"]

log = logging.getLogger(__name__)

_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "state_dict_ema", "module")
_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did with each tensor of the model."""

    source: str
    loaded: list[str] = field(default_factory=list)  # copied as they are
    adapted: list[str] = field(default_factory=list)  # changed to fit (input channels)
    skipped: dict[str, str] = field(default_factory=dict)  # kept at initialisation, with the reason
    unexpected: list[str] = field(default_factory=list)  # in the source, not in the model (ignored)

    def summary(self) -> str:
        parts = [f"{len(self.loaded) + len(self.adapted)} tensors loaded from {self.source}"]
        if self.adapted:
            parts.append(f"adapted: {', '.join(self.adapted)}")
        by_reason: dict[str, list[str]] = {}
        for key, reason in self.skipped.items():
            by_reason.setdefault(reason, []).append(key)
        parts += [f"kept at initialisation: {', '.join(keys)} ({reason})" for reason, keys in by_reason.items()]
        if self.unexpected:
            parts.append(f"ignored {len(self.unexpected)} tensors the model does not have "
                         f"({', '.join(self.unexpected[:5])}{', ...' if len(self.unexpected) > 5 else ''})")
        return "; ".join(parts)


def load_pretrained(model: nn.Module, name: str, source: str | os.PathLike, *, in_chans: int | None = None,
                    num_classes: int | None = None) -> LoadReport:
    """Load ``source`` weights into ``model`` (registered as ``name``), adapted to its channels and classes.

    Args:
        model: a model built by ``create_model(name, ...)``.
        name: its registered name (the card gives the ImageNet weights, input conv and classifier).
        source: ``"imagenet"``, a ``.safetensors`` / ``.pth`` / ``.pt`` file, or a medclass run folder.
        in_chans, num_classes: what the model was built for; only used in messages (read from the model
            when not given).

    Returns:
        A :class:`LoadReport`; its summary is also logged at INFO level.

    Raises:
        ConfigError: unknown source, ImageNet weights unavailable (offline, not cached), or weights that do
            not fit the architecture.
        CheckpointError: a damaged weights file, one that pickles more than tensors (it is not run), or a
            cached file whose SHA-256 is not the published one.
    """
    card = get_model_card(name)
    state, origin = read_state_dict(source, name)
    state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise ConfigError(f"{origin} holds no tensors, so there are no weights to load into {name}.")
    filt = getattr(model, "pretrained_filter", None)
    if callable(filt):
        state = filt(state)
    fitted, report = _fit(model, card, state, origin, in_chans, num_classes)
    model.load_state_dict(fitted, strict=False)
    log.info("%s: %s", name, report.summary())
    return report


def read_state_dict(source: str | os.PathLike, name: str) -> tuple[dict[str, torch.Tensor], str]:
    """The raw state dict behind ``source`` (see :func:`load_pretrained`) and a description for messages."""
    text = os.fspath(source)
    if text.lower() == "imagenet":
        return imagenet_state_dict(name), f"ImageNet weights ({get_model_card(name).imagenet_weights})"
    path = Path(text).expanduser()
    if path.is_dir():
        return _read_run(path, name), f"run folder '{path}'"
    if path.is_file():
        if path.suffix.lower() not in _WEIGHT_SUFFIXES:
            raise ConfigError(f"model.pretrained: '{path}' is not a weights file this reader knows (suffix "
                              f"{path.suffix or 'none'}). Give a {', '.join(_WEIGHT_SUFFIXES)} file, a medclass "
                              f"run folder, or 'imagenet'.")
        return _read_file(path), f"'{path}'"
    hint = did_you_mean(text, ["imagenet"])
    raise ConfigError(f"model.pretrained: {text!r} is neither 'imagenet' nor an existing weights file or run "
                      f"folder.{hint} Give 'imagenet', a {'/'.join(_WEIGHT_SUFFIXES)} file, or the --out folder "
                      f"of a medclass training run.")


def imagenet_state_dict(name: str) -> dict[str, torch.Tensor]:
    """The published ImageNet state dict for model ``name`` (downloaded, or read from the cache)."""
    card = get_model_card(name)
    if not card.imagenet_weights:
        with_weights = [n for n in list_models() if get_model_card(n).imagenet_weights]
        raise ConfigError(f"{name} has no ImageNet weights. Models with them: {', '.join(with_weights)}. "
                          f"Unset model.pretrained, or give your own weights with model.pretrained=PATH.")
    lib, _, ident = card.imagenet_weights.partition(":")
    return _torchvision_weights(name, ident) if lib == "torchvision" else _timm_weights(name, ident)


def imagenet_cached(name: str) -> bool:
    """Whether model ``name``'s ImageNet weights are already in the local cache (nothing is downloaded or read).

    ``False`` for a model without ImageNet weights. A cached file is still checked when it is loaded.
    """
    card = get_model_card(name)
    if not card.imagenet_weights:
        return False
    lib, _, ident = card.imagenet_weights.partition(":")
    if lib == "torchvision":
        weights = getattr(torchvision.models, ident).DEFAULT
        return (Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name).is_file()
    cfg = timm.models.get_pretrained_cfg(ident)
    if cfg is None:
        return False
    hub_id, _, revision = (getattr(cfg, "hf_hub_id", None) or f"timm/{ident}").partition("@")
    wanted = getattr(cfg, "hf_hub_filename", None) or "pytorch_model.bin"
    names = {"model.safetensors" if wanted == "pytorch_model.bin" else str(Path(wanted).with_suffix(".safetensors")),
             wanted}
    return any(isinstance(try_to_load_from_cache(hub_id, n, revision=revision or None), str) for n in names)


def _torchvision_weights(name: str, enum_name: str) -> dict[str, torch.Tensor]:
    weights = getattr(torchvision.models, enum_name).DEFAULT
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name
    match = HASH_REGEX.search(cached.name)  # torch.hub's convention: <name>-<first hex digits of the SHA-256>.pth
    prefix = match.group(1) if match and match.group(1) else None
    checked = (f"its SHA-256 must begin with {prefix}, and it is read with torch.load(weights_only=True), so no "
               f"code in it runs" if prefix else "it is read with torch.load(weights_only=True), so no code in it runs")
    if not cached.is_file():
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(weights.url, str(cached), hash_prefix=prefix, progress=True)
        except Exception as e:  # urllib, socket, disk and hash errors all mean the same here
            raise ConfigError(f"ImageNet weights for {name} ({weights}) are not in the torch hub cache and could not "
                              f"be downloaded ({_reason(e)}). Download {weights.url} by hand and put it at "
                              f"'{cached}' (the cache is torch.hub.get_dir(), under $TORCH_HOME): {checked}. Or pass "
                              f"the file as model.pretrained=PATH.") from None
    what = f"The cached ImageNet weights file for {name}, '{cached}',"
    fix = (f"It was not loaded. Delete the file so it is downloaded again, or download {weights.url} by hand and "
           f"put it there ({checked}).")
    data = _read_bytes(cached, what, fix)  # hashed and loaded from the same bytes: no change in between
    if prefix:
        digest = hashlib.sha256(data).hexdigest()
        if not digest.startswith(prefix):
            raise CheckpointError(f"{what} is not the published file: its SHA-256 begins with "
                                  f"{digest[:len(prefix)]}, but the file name says {prefix}. {fix}")
    return _decode(data, cached, what, fix)


def _timm_weights(name: str, arch: str) -> dict[str, torch.Tensor]:
    cfg = timm.models.get_pretrained_cfg(arch)
    hub_id, _, revision = (getattr(cfg, "hf_hub_id", None) or f"timm/{arch}").partition("@")
    wanted = getattr(cfg, "hf_hub_filename", None) or "pytorch_model.bin"
    safe = "model.safetensors" if wanted == "pytorch_model.bin" else str(Path(wanted).with_suffix(".safetensors"))
    names = list(dict.fromkeys([safe, wanted]))  # no pickle first
    try:
        path = _hub_file(hub_id, names, revision or None)
    except Exception as e:  # huggingface_hub, httpx and socket errors all mean the same here
        cache = constants.HF_HUB_CACHE
        raise ConfigError(f"ImageNet weights for {name} (timm {arch}) are not in the Hugging Face cache ('{cache}') "
                          f"and could not be downloaded ({_reason(e)}). Download "
                          f"https://huggingface.co/{hub_id}/resolve/main/{names[0]} by hand and pass it as "
                          f"model.pretrained=PATH (a .safetensors file holds only tensors: no code in it runs), or "
                          f"fill the cache where the hub is reachable with `hf download {hub_id} {names[0]} "
                          f"--cache-dir '{cache}'` (cached files are checked against the SHA-256 they are stored "
                          f"under).") from None
    blob = path.resolve()  # snapshots/<commit>/<file> links to blobs/<sha256> for files stored with LFS
    repo_dir = blob.parents[1] if blob.parent.name == "blobs" else path.parents[2]
    what = f"The cached ImageNet weights file for {name}, '{path}',"
    fix = f"It was not loaded. Delete the folder '{repo_dir}' so it is downloaded again."
    data = _read_bytes(blob, what, fix)  # hashed and loaded from the same bytes: no change in between
    if _SHA256.fullmatch(blob.name):
        digest = hashlib.sha256(data).hexdigest()
        if digest != blob.name:
            raise CheckpointError(f"{what} is not the file the hub published: its SHA-256 is {digest[:16]}..., "
                                  f"but it is stored as blob '{blob.name}'. {fix}")
    else:
        log.warning("%s: '%s' is not linked to a blob named by its SHA-256 (a cache without symlinks?), so its hash "
                    "was not checked; it is read without running code.", name, path)
    state = _decode(data, path, what, fix)
    try:  # timm's own filter (key renames, resampling) on the tensors read above; timm reads no file here
        model = timm.create_model(arch, pretrained=True,
                                  pretrained_cfg_overlay={"state_dict": state, "custom_load": False})
    except RuntimeError as e:
        raise CheckpointError(f"{what} does not fit timm's {arch} ({_reason(e)}). {fix}") from None
    return model.state_dict()


def _hub_file(repo_id: str, names: list[str], revision: str | None) -> Path:
    """The first of ``names`` in the Hugging Face cache, else the first the hub has, downloaded."""
    for filename in names:
        cached = try_to_load_from_cache(repo_id, filename, revision=revision)
        if isinstance(cached, str):
            return Path(cached)
    for filename in names[:-1]:
        try:
            return Path(hf_hub_download(repo_id, filename, revision=revision))
        except EntryNotFoundError as e:  # the hub has no such file: try the next; offline, stop here
            if isinstance(e, LocalEntryNotFoundError):
                raise
    return Path(hf_hub_download(repo_id, names[-1], revision=revision))


def _read_file(path: Path) -> dict[str, torch.Tensor]:
    what = f"Weights file '{path}'"
    fix = ("It may be damaged, or pickle objects other than tensors; save model.state_dict() instead, or convert "
           "it to .safetensors.")
    return _decode(_read_bytes(path, what, fix), path, what, fix)


def _read_bytes(path: Path, what: str, fix: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{what} could not be opened ({_reason(e)}). {fix}") from None


def _decode(data: bytes, path: Path, what: str, fix: str) -> dict[str, torch.Tensor]:
    """The tensors in the bytes of a weights file, without running code (``what`` and ``fix`` word the error)."""
    if path.suffix.lower() == ".safetensors":

        try:
            return load(data)
        except (SafetensorError, ValueError) as e:
            raise CheckpointError(f"{what} is damaged or not a safetensors file ({e}). {fix}") from None
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError, EOFError... for damaged or code-carrying files
        raise CheckpointError(f"{what} could not be read with torch.load(weights_only=True), which runs no "
                              f"code ({_reason(e)}). {fix}") from None
    return _unwrap(obj, path)


def _reason(e: BaseException) -> str:
    """A one-line cause for a message; for files torch refuses, what it refused, not its advice to load anyway."""
    text = str(e)
    if "weights only load failed" in text.lower():  # torch's UnpicklingError for a file with code in it
        what = re.search(r"Unsupported (?:global: GLOBAL [\w.]+|operand \d+)", text)
        return f"it pickles more than tensors{f': {what.group(0)}' if what else ''}"
    return f"{type(e).__name__}: {text.strip().splitlines()[0][:200]}" if text.strip() else type(e).__name__


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    while isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict):
        raise ConfigError(f"Weights file '{path}' holds a {type(obj).__name__}, not a state dict of tensors. "
                          f"Save model.state_dict() instead.")
    if obj and all(k.startswith("module.") for k in obj):  # saved from DataParallel
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def _read_run(folder: Path, name: str) -> dict[str, torch.Tensor]:
    best = folder / "checkpoints" / "best.safetensors"
    if not best.is_file():
        raise ConfigError(f"model.pretrained: '{folder}' is a folder but not a finished medclass run: "
                          f"'{best}' does not exist. Give the --out folder of a training run, or a weights file.")
    state, meta = load_weights(best)
    trained = meta.get("model")
    if trained is not None and trained != name:
        raise ConfigError(f"model.pretrained: the run '{folder}' trained {trained}, but model.name is {name}. "
                          f"Set model.name={trained} to fine-tune from it.")
    return state


def adapt_input_channels(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Fit an input convolution ``(out, c, k, k)`` to ``in_chans`` channels.

    RGB -> other counts uses timm's ``adapt_input_conv`` (1 channel: the RGB filters summed, so a gray
    image gives what the colour network gave for the same gray RGB image; n channels: RGB repeated, scaled
    by 3/n); from any other count the filters are repeated (cycled) and scaled by c/n, so 1 -> 3 repeats
    the filter divided by 3.
    """
    c = weight.shape[1]
    if c == in_chans:
        return weight
    if c == 3:

        return adapt_input_conv(in_chans, weight)
    reps = -(-in_chans // c)
    return (weight.repeat(1, reps, 1, 1)[:, :in_chans] * (c / in_chans)).to(weight.dtype)


def _fit(model: nn.Module, card: ModelCard, state: dict[str, torch.Tensor], origin: str, in_chans: int | None,
         num_classes: int | None) -> tuple[dict[str, torch.Tensor], LoadReport]:
    own = model.state_dict()
    report = LoadReport(source=origin)
    head = card.classifier + "."
    first = card.first_conv + "." if card.first_conv else None
    fitted, wrong_shape = {}, []
    for key, target in own.items():
        if key not in state:
            continue
        src = state[key]
        if src.shape == target.shape:
            fitted[key] = src.to(target.dtype)
            report.loaded.append(key)
        elif key.startswith(head):
            n = num_classes if num_classes is not None else own[card.classifier + ".weight"].shape[0]
            report.skipped[key] = f"classifier re-initialised for {n} outputs; the weights have another number"
        elif first and key == first + "weight" and src.ndim == 4 and src.shape[0] == target.shape[0] \
                and src.shape[2:] == target.shape[2:]:
            fitted[key] = adapt_input_channels(src, target.shape[1]).to(target.dtype)
            report.adapted.append(f"{key} ({src.shape[1]} -> {target.shape[1]} channels)")
        elif first and key == first + "weight" and src.ndim == 4 and src.shape[0] == target.shape[0]:
            report.skipped[key] = (f"the input convolution is {'x'.join(map(str, target.shape[2:]))} here (small-image "
                                   f"stem), {'x'.join(map(str, src.shape[2:]))} in the weights")
        else:
            wrong_shape.append(f"{key}: {tuple(src.shape)} in the weights, {tuple(target.shape)} in the model")
    missing = [k for k in own if k not in state and not k.startswith(head) and not k.endswith("num_batches_tracked")]
    report.unexpected = [k for k in state if k not in own]
    if wrong_shape or missing:
        chans = f", in_chans={in_chans}" if in_chans is not None else ""
        problems = []
        if wrong_shape:
            problems.append(f"{len(wrong_shape)} tensors have other shapes ({'; '.join(wrong_shape[:4])}"
                            f"{'; ...' if len(wrong_shape) > 4 else ''})")
        if missing:
            problems.append(f"{len(missing)} tensors of the model are missing ({', '.join(missing[:6])}"
                            f"{', ...' if len(missing) > 6 else ''})")
        if report.unexpected:
            problems.append(f"{len(report.unexpected)} tensors of the weights are unknown to the model "
                            f"({', '.join(report.unexpected[:6])}{', ...' if len(report.unexpected) > 6 else ''})")
        raise ConfigError(f"The weights from {origin} do not fit {card.name}{chans}: " + "; ".join(problems)
                          + ". Were they saved from another architecture or another model.width? Only the "
                          "classifier and the input convolution may differ.")
    if report.unexpected:
        log.warning("%s: %d tensors in %s are not in the model and were ignored: %s", card.name,
                    len(report.unexpected), origin, ", ".join(report.unexpected[:10]))
    return fitted, report
