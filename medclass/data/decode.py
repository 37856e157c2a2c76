"""Decode a manifest's files once, through the run's input pipeline, and cache the result.

Every usable row of a :class:`~medclass.data.manifest.Manifest` is read and preprocessed to a uint8 image by
:class:`~medclass.data.pipeline.InputPipeline` (the same object prediction uses later), hashed for the leakage
checks, and the stack is cached as a memory-mapped ``.npy`` keyed by every file's size and modification time
and the pipeline's settings, so later epochs and later runs never decode again. A file that cannot be used
becomes a :class:`~medclass.data.manifest.BadRow` naming the row, the file and the reason.

Volumes (``data.volumes``): each row is a NIfTI file, a DICOM series folder or a multi-frame DICOM file, read
whole and preprocessed to a uint8 ``(size, size, size, C)`` cube by the same pipeline (``spatial_dims=3``). A
series folder's cache key covers every file in it (name, size, modification time), so an added, removed or
rewritten slice decodes again. A series the reader refuses (missing or duplicated slices, uneven spacing, mixed
orientations, several series) and an ordinary 2D image are bad rows with the reader's one-line reason. The
content hash is taken of the voxels as read, so identical scans are found across splits; near-duplicates are
not looked for (a perceptual hash describes a 2D image), which the leakage facts record. A dataset of volumes
that would not fit in memory is refused before decoding, with a size that fits.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import DataConfig
from ..errors import ConfigError, DataError
from ..transforms.preprocess import output_channels
from ..transforms.volume import DEFAULT_MAX_VOXELS
from ..utils.io import atomic_write_bytes, atomic_write_json, read_json
from .download import default_cache_dir
from .hashing import content_hash, perceptual_hash
from .manifest import BadRow, Manifest
from .pipeline import InputPipeline
from .readers import Decoded

__all__ = ["DecodedManifest", "decode_manifest", "decoding_pipeline"]

log = logging.getLogger(__name__)

CACHE_VERSION = 3  # bump when decoding or preprocessing changes what a cached array holds
MEMORY_SHARE = 4  # a dataset of volumes may take 1/4 of the memory: decoding holds the list, the stack and a copy


@dataclass
class DecodedManifest:
    """Every usable row decoded and preprocessed, with the hashes the leakage checks need."""

    images: np.ndarray  # uint8 (N, size, size, C); volumes (N, size, size, size, C)
    content_hashes: list[str]
    perceptual_hashes: list[int | None]  # None for volumes (not checked for near-duplicates)
    keep: list[int]  # manifest indices that decoded (the others are in bad)
    bad: list[BadRow]
    seconds: float
    cached: bool
    source_sizes: list[tuple[int, ...]]  # (rows, columns); volumes (D, H, W)
    expected: dict = field(default_factory=dict)  # file kinds, modalities, photometric interpretations seen
    spacings: list[tuple[float, ...] | None] = field(default_factory=list)  # pixel (voxel) spacing (mm) of each file
    modalities: list[str | None] = field(default_factory=list)  # each file's DICOM Modality (None: not DICOM)


def decoding_pipeline(cfg: DataConfig) -> InputPipeline:
    """The pipeline a manifest is decoded with (channels may still be ``None``: each file's natural count).

    Contradictory preprocessing settings fail here, once, not once per file.
    """
    if cfg.channels == 1 and output_channels(cfg.preprocess, 1) == 3:
        raise ConfigError("data.channels=1 cannot hold several stacked CT windows (data.preprocess). Use "
                          "data.channels=3, or a single window.")
    if cfg.volumes and cfg.size ** 3 > DEFAULT_MAX_VOXELS:
        side = round(DEFAULT_MAX_VOXELS ** (1 / 3))
        raise ConfigError(f"data.size={cfg.size} with data.volumes makes cubes of {cfg.size}³ = "
                          f"{cfg.size ** 3 / 1e6:.0f}M voxels, more than the budget of {side}³. Every volume is "
                          f"resampled to data.size³: choose data.size <= {side} (64 or 128 are usual).")
    return InputPipeline(size=cfg.size, channels=cfg.channels, preprocess=cfg.preprocess, frame=cfg.frame,
                         spatial_dims=3 if cfg.volumes else 2)


def decode_manifest(m: Manifest, cfg: DataConfig, progress: Callable[[int, int], None] | None = None,
                    pipeline: InputPipeline | None = None) -> DecodedManifest:
    """Decode and preprocess every row of ``m`` (or load the cached result of an identical earlier decode).

    Args:
        m: the validated manifest.
        cfg: the data settings (cache switches and folder; the pipeline's settings when ``pipeline`` is None).
        progress: ``fn(done, total)`` while decoding.
        pipeline: decode with this pipeline instead of the one ``cfg`` describes (external validation uses
            the trained run's own pipeline).
    """
    pipeline = pipeline or decoding_pipeline(cfg)
    key, cache_dir = _cache_key(m, pipeline), _cache_dir(cfg)
    npy, info = cache_dir / f"{key}.npy", cache_dir / f"{key}.json"
    if cfg.cache and npy.is_file() and info.is_file():
        t0 = time.perf_counter()
        try:
            facts = read_json(info)
            images = np.load(npy, mmap_mode="r")
            if len(images) == len(facts["keep"]):
                log.info("decoded images from the cache %s (%d images)", npy, len(images))
                return DecodedManifest(images, facts["content_hashes"], [None if h is None else int(h)
                                                                         for h in facts["perceptual_hashes"]],
                                       facts["keep"], [BadRow(**b) for b in facts["bad"]], time.perf_counter() - t0,
                                       True, [tuple(s) for s in facts["source_sizes"]], facts["expected"],
                                       [tuple(s) if s else None for s in facts["spacings"]],
                                       facts.get("modalities") or [None] * len(images))
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("ignoring a damaged decode cache %s (%s); decoding again", npy, e)
    d = _decode_all(m, pipeline, progress)
    if cfg.cache and len(d.keep):
        try:
            buf = io.BytesIO()
            np.save(buf, d.images)
            atomic_write_bytes(npy, buf.getvalue())
            atomic_write_json(info, {"keep": d.keep, "content_hashes": d.content_hashes,
                                     "perceptual_hashes": [None if h is None else str(h)
                                                           for h in d.perceptual_hashes],
                                     "bad": [b.__dict__ for b in d.bad], "source_sizes": d.source_sizes,
                                     "expected": d.expected, "spacings": d.spacings, "modalities": d.modalities,
                                     "seconds": round(d.seconds, 3)})
            d.images = np.load(npy, mmap_mode="r")
        except OSError as e:
            log.warning("could not write the decode cache in %s (%s); the next run will decode again", cache_dir, e)
    return d


def _decode_all(m: Manifest, pipeline: InputPipeline, progress: Callable[[int, int], None] | None) -> DecodedManifest:
    images, chashes, phashes, keep, bad, sizes, natural, spacings, modalities = [], [], [], [], [], [], [], [], []
    kinds: dict[str, set[str]] = {"sources": set(), "modalities": set(), "photometric": set()}
    volumes = pipeline.spatial_dims == 3
    if volumes:
        _check_memory(m, pipeline)
    t0 = last = time.perf_counter()
    for i, (row, rel) in enumerate(zip(m.rows, m.paths)):
        full = m.root / rel
        try:
            dec, img = _read_volume(pipeline, full) if volumes else _read_image(pipeline, full)
        except DataError as e:
            bad.append(BadRow(row, rel, str(e)))
            continue
        except (ConfigError, MemoryError, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001 - a third-party decoder failing on one file must not stop the rest
            bad.append(BadRow(row, rel, f"could not be decoded ({type(e).__name__}: {str(e)[:200]})"))
            continue
        images.append(img)
        chashes.append(content_hash(dec.pixels))
        phashes.append(None if volumes else perceptual_hash(dec.pixels))
        sizes.append(tuple(int(s) for s in dec.pixels.shape[:pipeline.spatial_dims]))
        spacings.append(dec.spacing)
        modalities.append(dec.modality)
        natural.append((row, rel))
        for key, value in (("sources", dec.source), ("modalities", dec.modality), ("photometric", dec.photometric)):
            if value is not None:
                kinds[key].add(value)
        keep.append(i)
        now = time.perf_counter()
        if progress is not None:
            progress(i + 1, len(m))
        elif now - last > 10:
            rate = (i + 1) / (now - t0)
            log.info("decoded %d/%d images (%.0f/s, about %.0fs left)", i + 1, len(m), rate, (len(m) - i - 1) / rate)
            last = now
    if pipeline.channels is None and len({img.shape[-1] for img in images}) > 1:
        grey = next(n for n, img in zip(natural, images) if img.shape[-1] == 1)
        colour = next(n for n, img in zip(natural, images) if img.shape[-1] == 3)
        raise DataError(f"Manifest '{m.source}' mixes grey and colour images, e.g. row {grey[0]} ('{grey[1]}') is "
                        f"grey and row {colour[0]} ('{colour[1]}') is colour. Set data.channels=1 to convert all to "
                        f"grey or data.channels=3 to treat all as colour.")
    empty = (0, *(pipeline.size,) * pipeline.spatial_dims, pipeline.channels or 1)
    stacked = np.stack(images) if images else np.zeros(empty, np.uint8)
    expected = {k: sorted(v) for k, v in kinds.items() if v}
    return DecodedManifest(stacked, chashes, phashes, keep, bad, time.perf_counter() - t0, False, sizes, expected,
                           spacings, modalities)


def _read_image(pipeline: InputPipeline, full: Path) -> tuple[Decoded, np.ndarray]:
    if not full.is_file():
        hint = (" (it is a folder; a folder of DICOM slices is a volume: set data.volumes=true for a 3D model)"
                if full.is_dir() else "")
        raise DataError(f"file '{full}' does not exist{hint}")
    dec = pipeline.read(full)
    return dec, pipeline.to_image(dec, where=str(full))


def _read_volume(pipeline: InputPipeline, full: Path) -> tuple[Decoded, np.ndarray]:
    """A volume row read and preprocessed by the pipeline, its facts in a :class:`Decoded` (pixels: the voxels)."""
    volume, facts = pipeline.read_volume(full)
    if volume.ndim != 3 or min(volume.shape) < 2:
        raise DataError(f"'{full}' holds a single 2D image (shape {tuple(volume.shape)}), not a volume; a volume "
                        f"manifest (data.volumes) needs NIfTI volumes, DICOM series folders or multi-frame DICOM "
                        f"files. Remove the row, or train a 2D model on a manifest of images.")
    img = pipeline.volume_to_image(volume, facts, where=str(full))
    spacing = facts.get("spacing")
    dec = Decoded(volume, str(facts.get("source") or "volume"), facts.get("modality"),
                  bool(facts.get("hounsfield", False)), None, 0, None, int(volume.shape[0]),
                  spacing=None if spacing is None else tuple(float(v) if v else 0.0 for v in spacing))
    return dec, img


def _check_memory(m: Manifest, pipeline: InputPipeline) -> None:
    """Refuse, before decoding, a dataset of volumes whose uint8 cubes would not fit in memory."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX: nothing to check against
        return
    channels = pipeline.channels or output_channels(pipeline.preprocess, 1)
    need = len(m) * pipeline.size ** 3 * channels
    if need * MEMORY_SHARE > total:
        fits = int((total / MEMORY_SHARE / max(len(m) * channels, 1)) ** (1 / 3))
        raise DataError(f"Manifest '{m.source}': {len(m)} volumes of {pipeline.size}³ x {channels} channel(s) take "
                        f"{need / 2 ** 30:.1f} GiB, more than 1/{MEMORY_SHARE} of this machine's "
                        f"{total / 2 ** 30:.0f} GiB of memory (decoding holds them about three times). Every volume is "
                        f"resampled to data.size³: choose data.size <= {fits}, or fewer rows.")


def _cache_dir(cfg: DataConfig) -> Path:
    if cfg.cache_dir:
        return Path(cfg.cache_dir)
    return Path(default_cache_dir()) / "decoded"


def _cache_key(m: Manifest, pipeline: InputPipeline) -> str:
    """Changes when any file (size, modification time), the row order or the pipeline's settings change."""
    h = hashlib.sha256()
    settings = {"version": CACHE_VERSION, **{k: v for k, v in pipeline.to_dict().items()
                                             if k not in ("normalize", "expected")}}
    h.update(json.dumps(settings, sort_keys=True).encode())
    for rel in m.paths:
        full = m.root / rel
        h.update(f"{full.resolve()}|{_stamp(full)}\n".encode())
    return h.hexdigest()[:32]


def _stamp(full: Path) -> str:
    """A file's size and modification time; a folder's (a DICOM series) for each file in it, by name."""
    try:
        if full.is_dir():
            entries = sorted((e for e in os.scandir(full) if e.is_file()), key=lambda e: e.name)
            return ";".join(f"{e.name}:{e.stat().st_size}:{e.stat().st_mtime_ns}" for e in entries) or "empty"
        st = full.stat()
        return f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        return "missing"
