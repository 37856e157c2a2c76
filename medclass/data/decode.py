"""Decode a manifest's files once, through the run's input pipeline, and cache the result.

Every usable row of a :class:`~medclass.data.manifest.Manifest` is read and preprocessed to a uint8 image by
:class:`~medclass.data.pipeline.InputPipeline` (the same object prediction uses later), hashed for the leakage
checks, and the stack is cached as a memory-mapped ``.npy`` keyed by every file's size and modification time
and the pipeline's settings, so later epochs and later runs never decode again. A file that cannot be used
becomes a :class:`~medclass.data.manifest.BadRow` naming the row, the file and the reason.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import DataConfig
from ..errors import ConfigError, DataError
from ..transforms.preprocess import output_channels
from ..utils.io import atomic_write_bytes, atomic_write_json, read_json
from .download import default_cache_dir
from .hashing import content_hash, perceptual_hash
from .manifest import BadRow, Manifest
from .pipeline import InputPipeline

__all__ = ["DecodedManifest", "decode_manifest", "decoding_pipeline"]

log = logging.getLogger(__name__)

CACHE_VERSION = 3  # bump when decoding or preprocessing changes what a cached array holds


@dataclass
class DecodedManifest:
    """Every usable row decoded and preprocessed, with the hashes the leakage checks need."""

    images: np.ndarray  # uint8 (N, size, size, C)
    content_hashes: list[str]
    perceptual_hashes: list[int]
    keep: list[int]  # manifest indices that decoded (the others are in bad)
    bad: list[BadRow]
    seconds: float
    cached: bool
    source_sizes: list[tuple[int, int]]
    expected: dict = field(default_factory=dict)  # file kinds, modalities, photometric interpretations seen
    spacings: list[tuple[float, float] | None] = field(default_factory=list)  # pixel spacing (mm) of each file
    modalities: list[str | None] = field(default_factory=list)  # each file's DICOM Modality (None: not DICOM)


def decoding_pipeline(cfg: DataConfig) -> InputPipeline:
    """The pipeline a manifest is decoded with (channels may still be ``None``: each file's natural count).

    Contradictory preprocessing settings fail here, once, not once per file.
    """
    if cfg.channels == 1 and output_channels(cfg.preprocess, 1) == 3:
        raise ConfigError("data.channels=1 cannot hold several stacked CT windows (data.preprocess). Use "
                          "data.channels=3, or a single window.")
    return InputPipeline(size=cfg.size, channels=cfg.channels, preprocess=cfg.preprocess, frame=cfg.frame)


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
                return DecodedManifest(images, facts["content_hashes"], [int(h) for h in facts["perceptual_hashes"]],
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
                                     "perceptual_hashes": [str(h) for h in d.perceptual_hashes],
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
    t0 = last = time.perf_counter()
    for i, (row, rel) in enumerate(zip(m.rows, m.paths)):
        full = m.root / rel
        try:
            if not full.is_file():
                raise DataError(f"file '{full}' does not exist" + (" (it is a folder)" if full.is_dir() else ""))
            dec = pipeline.read(full)
            img = pipeline.to_image(dec, where=str(full))
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
        phashes.append(perceptual_hash(dec.pixels))
        sizes.append(tuple(int(s) for s in dec.pixels.shape[:2]))
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
    size = pipeline.size
    stacked = np.stack(images) if images else np.zeros((0, size, size, pipeline.channels or 1), np.uint8)
    expected = {k: sorted(v) for k, v in kinds.items() if v}
    return DecodedManifest(stacked, chashes, phashes, keep, bad, time.perf_counter() - t0, False, sizes, expected,
                           spacings, modalities)


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
        try:
            st = full.stat()
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        h.update(f"{full.resolve()}|{stamp}\n".encode())
    return h.hexdigest()[:32]
