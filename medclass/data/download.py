"""Find a MedMNIST file on disk, or download it, and verify its MD5.

Folders are searched in this order: the ``data_dir`` argument (``--data-dir``), the ``MEDCLASS_DATA``
environment variable, then the user cache folder (``~/.cache/medclass`` on Linux). A missing file is
downloaded into the first of those folders, through a ``.part`` file that is renamed into place only
after its MD5 matched, so an interrupted download never leaves a file that looks complete.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import platformdirs

from ..errors import ChecksumError, DatasetNotFoundError
from .medmnist import DatasetInfo

__all__ = ["DATA_ENV", "candidate_dirs", "md5sum", "fetch_medmnist", "download_file"]

log = logging.getLogger(__name__)

DATA_ENV = "MEDCLASS_DATA"
CACHE_ENV = "MEDCLASS_CACHE"  # overrides the user cache folder (tests point it at a temporary one)
ProgressFn = Callable[[int, int | None], None]  # (bytes so far, total bytes or None)


def default_cache_dir() -> Path:
    """The user cache for downloads, decoded images and hashes: ``$MEDCLASS_CACHE``, else the platform's cache."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("medclass")) / "medmnist"


def candidate_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for dataset files, in order: ``data_dir``, ``$MEDCLASS_DATA``, the user cache."""
    dirs = []
    if data_dir:
        dirs.append(Path(data_dir).expanduser())
    env = os.environ.get(DATA_ENV)
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(default_cache_dir())
    out: list[Path] = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def md5sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fetch_medmnist(
    info: DatasetInfo,
    size: int = 28,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    progress: ProgressFn | None = None,
    url: str | None = None,
) -> Path:
    """Return the verified path of ``info``'s file at ``size`` px, downloading it when allowed.

    Raises:
        ChecksumError: a file was found (or downloaded) but its MD5 is not the published one.
        DatasetNotFoundError: the file is nowhere on disk and could not be downloaded.
    """
    fname, expected = info.filename(size), info.md5[size]
    dirs = candidate_dirs(data_dir)
    for d in dirs:
        path = d / fname
        if path.is_file():
            _verify(path, expected)
            log.debug("using %s", path)
            return path
    searched = ", ".join(f"'{d}'" for d in dirs)
    url = url or info.url(size)
    if not download:
        raise DatasetNotFoundError(
            f"{fname} (MD5 {expected}) is not in any of {searched}, and downloading is off (data.download=false). "
            f"Download it from {url} into one of those folders, or point --data-dir or ${DATA_ENV} at it."
        )
    target = dirs[0] / fname
    try:
        download_file(url, target, expected, progress)
    except OSError as e:  # URLError, timeouts and unwritable folders are all OSErrors
        reason = getattr(e, "reason", None) or e
        raise DatasetNotFoundError(
            f"{fname} (MD5 {expected}) is not in any of {searched}, and downloading it from {url} failed "
            f"({reason}). If this machine is offline, download the file elsewhere and copy it into one of "
            f"those folders, or point --data-dir or ${DATA_ENV} at the folder that holds it."
        ) from None
    return target


def _verify(path: Path, expected: str) -> None:
    got = md5sum(path)
    if got != expected:
        raise ChecksumError(
            f"{path} has MD5 {got}, but the published MD5 is {expected}: the file is corrupted, truncated or a "
            f"different release. Delete it and run again to download a fresh copy."
        )


def download_file(url: str, target: Path, expected_md5: str, progress: ProgressFn | None = None,
                  timeout: float = 60.0) -> Path:
    """Download ``url`` to ``target`` through ``target.part``; keep it only if its MD5 matches."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    log.info("downloading %s to %s", url, target)
    h = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(part, "wb") as out:
            total = resp.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            done = 0
            while block := resp.read(1 << 20):
                out.write(block)
                h.update(block)
                done += len(block)
                if progress:
                    progress(done, total)
            out.flush()
            os.fsync(out.fileno())
        if h.hexdigest() != expected_md5:
            raise ChecksumError(
                f"The file downloaded from {url} has MD5 {h.hexdigest()}, but the published MD5 is {expected_md5}. "
                f"It was not kept. Try again later; if it persists, the release may have changed."
            )
        shutil.move(part, target)  # same folder: an atomic rename
    finally:
        part.unlink(missing_ok=True)
    return target
