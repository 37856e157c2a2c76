"""Weights files that carry code (issue 13): every path that reads weights refuses them, and runs nothing.

Each payload is a pickle whose ``__reduce__`` calls ``pathlib.Path.touch(marker)``: loading it the way
torch.hub does (``weights_only=False``) creates the marker file, which :func:`test_the_payloads_are_live`
checks, so the other tests mean something when they assert that the marker is absent. The paths: the
torch hub cache (torchvision's ImageNet weights), the Hugging Face cache (timm's), weights files given as
``model.pretrained=PATH``, and medclass run folders (weights and resume state). No test touches the
network: sockets are refused, torch hub's download raises, and Hugging Face runs offline on a private cache.
"""

from __future__ import annotations

import hashlib
import pathlib
import pickle
import re
import socket
import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save as st_save

from medclass.errors import CheckpointError, ConfigError
from medclass.models import create_model
from medclass.training.state import load_state

pytestmark = pytest.mark.faults

RESNET18_FILE = "resnet18-f37072fd.pth"  # the published name: https://download.pytorch.org/models/resnet18-f37072fd.pth
TIMM_REPO = "timm/convnext_atto.d2_in1k"  # convnext_atto's ImageNet weights on the Hugging Face Hub


class Payload:
    """Unpickling this creates ``marker``: a stand-in for any code a weights file could run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def _offline(*args, **kwargs):
    raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """No network; torch hub and Hugging Face caches in tmp_path (huggingface_hub reads its env at import)."""
    import huggingface_hub.constants

    def refuse(*args, **kwargs):
        raise OSError("network access is disabled in the fault tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _offline)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for var, value in (("HF_HOME", tmp_path / "hf_home"), ("HF_HUB_CACHE", tmp_path / "hf"), ("HF_HUB_OFFLINE", 1)):
        monkeypatch.setenv(var, str(value))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "payload-ran"


def torch_payload(path: Path, marker: Path) -> Path:
    """A torch.save file: a plausible state dict with the payload beside the tensors."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "meta": Payload(marker)}, path)
    return path


def pickle_payload(path: Path, marker: Path) -> Path:
    """A bare pickle (no torch zip container), as old checkpoints and many ``.bin`` files are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(Payload(marker), protocol=2))  # torch.save's protocol
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def put_in_hf_cache(repo_id: str, filename: str, data: bytes, *, blob: str | None = None,
                    link: bool = True) -> Path:
    """Store ``data`` as huggingface_hub does: ``snapshots/<commit>/<file>`` -> ``blobs/<sha256>``.

    ``blob`` names the blob otherwise (a file that is not what its name says); ``link=False`` writes the
    snapshot file itself, as a cache without symlinks (Windows) does.
    """
    import huggingface_hub.constants
    from huggingface_hub.file_download import repo_folder_name

    repo = Path(huggingface_hub.constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model")
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit / filename
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    if link:
        name = blob or hashlib.sha256(data).hexdigest()
        (repo / "blobs").mkdir(exist_ok=True)
        (repo / "blobs" / name).write_bytes(data)
        snapshot.symlink_to(Path("..", "..", "blobs", name))
    else:
        snapshot.write_bytes(data)
    return snapshot


def test_the_payloads_are_live(tmp_path, marker):
    """Loaded as torch.hub loads (weights_only=False), each payload runs: the other tests are not vacuous."""
    torch.load(torch_payload(tmp_path / "a.pth", marker), weights_only=False)
    assert marker.exists()
    marker.unlink()
    with pytest.raises(RuntimeError, match="Invalid magic number"):  # torch sees it is no checkpoint too late
        torch.load(pickle_payload(tmp_path / "b.pt", marker), weights_only=False)
    assert marker.exists()


# --- the torch hub cache: torchvision's ImageNet weights ----------------------------------------------------------

def test_torchvision_cache_payload_under_the_published_name_is_refused_by_its_hash(marker):
    cached = torch_payload(hub_checkpoints() / RESNET18_FILE, marker)
    with pytest.raises(CheckpointError) as e:
        create_model("resnet18", num_classes=2, in_chans=3, input_size=224, pretrained="imagenet")
    assert not marker.exists()
    msg = str(e.value)
    assert f"'{cached}', is not the published file: its SHA-256 begins with {sha256(cached)[:8]}, but the file " \
           f"name says f37072fd. It was not loaded. Delete the file so it is downloaded again" in msg
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in msg


@pytest.mark.parametrize("write", [torch_payload, pickle_payload], ids=["torch.save", "pickle"])
def test_torchvision_cache_payload_that_matches_its_hash_is_not_unpickled(monkeypatch, marker, write):
    """Eight hex digits of SHA-256 can be matched by brute force: weights_only=True is what stops the code."""
    payload = write(hub_checkpoints() / "payload.pth", marker)
    cached = payload.rename(payload.with_name(f"resnet18-{sha256(payload)[:8]}.pth"))
    monkeypatch.setattr(torchvision.models.ResNet18_Weights.DEFAULT.value, "url",
                        f"https://download.pytorch.org/models/{cached.name}")
    with pytest.raises(CheckpointError, match="could not be read with torch.load.weights_only=True.") as e:
        create_model("resnet18", num_classes=2, in_chans=3, input_size=224, pretrained="imagenet")
    assert not marker.exists()
    msg = str(e.value)
    assert f"'{cached}'" in msg and "it pickles more than tensors" in msg and "Delete the file" in msg
    assert "can still be loaded" not in msg  # torch's advice to retry with weights_only=False is not passed on


def test_torchvision_cache_file_with_a_wrong_hash_is_refused():
    """Real tensors, not a payload: a damaged or replaced file is refused all the same, before it is read."""
    cached = hub_checkpoints() / RESNET18_FILE
    cached.parent.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), cached)
    with pytest.raises(CheckpointError, match=rf"resnet18-f37072fd\.pth', is not the published file: its SHA-256 "
                                              rf"begins with {sha256(cached)[:8]}, but the file name says f37072fd"):
        create_model("resnet18", num_classes=2, pretrained="imagenet")


def test_torchvision_cache_file_that_matches_its_hash_is_loaded(monkeypatch):
    torch.manual_seed(0)
    published = torchvision.models.resnet18().state_dict()
    saved = hub_checkpoints() / "saved.pth"
    saved.parent.mkdir(parents=True)
    torch.save(published, saved)
    # The real file is 45 MB and offline here: stand a random resnet18 in for it, named by its own hash, and
    # point the published URL at that name. The hash check and the loading are the real ones.
    cached = saved.rename(saved.with_name(f"resnet18-{sha256(saved)[:8]}.pth"))
    monkeypatch.setattr(torchvision.models.ResNet18_Weights.DEFAULT.value, "url",
                        f"https://download.pytorch.org/models/{cached.name}")
    model = create_model("resnet18", num_classes=2, in_chans=3, input_size=224, pretrained="imagenet")
    assert torch.equal(model.conv1.weight, published["conv1.weight"])
    assert torch.equal(model.layer4[1].bn2.running_var, published["layer4.1.bn2.running_var"])


def test_offline_message_says_the_placed_file_is_checked_and_runs_no_code():
    with pytest.raises(ConfigError) as e:
        create_model("resnet18", num_classes=2, pretrained="imagenet")
    msg = str(e.value)
    assert f"put it at '{hub_checkpoints() / RESNET18_FILE}'" in msg
    assert "its SHA-256 must begin with f37072fd, and it is read with torch.load(weights_only=True), so no code in " \
           "it runs" in msg


# --- the Hugging Face cache: timm's ImageNet weights --------------------------------------------------------------

@pytest.mark.parametrize("write", [torch_payload, pickle_payload], ids=["torch.save", "pickle"])
def test_hf_cache_payload_bin_is_not_unpickled(tmp_path, marker, write):
    data = write(tmp_path / "pytorch_model.bin", marker).read_bytes()
    snapshot = put_in_hf_cache(TIMM_REPO, "pytorch_model.bin", data)  # blob named by its own SHA-256: it passes
    with pytest.raises(CheckpointError) as e:
        create_model("convnext_atto", num_classes=2, in_chans=3, input_size=224, pretrained="imagenet")
    assert not marker.exists()
    msg = str(e.value)
    assert f"'{snapshot}', could not be read with torch.load(weights_only=True), which runs no code (it pickles " \
           f"more than tensors" in msg
    assert f"Delete the folder '{snapshot.parents[2]}' so it is downloaded again" in msg


def test_hf_cache_blob_that_is_not_its_sha256_is_refused_before_it_is_read(tmp_path, marker):
    data = torch_payload(tmp_path / "pytorch_model.bin", marker).read_bytes()
    published = "0123456789abcdef" * 4
    snapshot = put_in_hf_cache(TIMM_REPO, "pytorch_model.bin", data, blob=published)
    expected = (rf"'{re.escape(str(snapshot))}', is not the file the hub published: its SHA-256 is "
                rf"{hashlib.sha256(data).hexdigest()[:16]}\.\.\., but it is stored as blob '{published}'\. It was "
                rf"not loaded\. Delete the folder")
    with pytest.raises(CheckpointError, match=expected):
        create_model("convnext_atto", num_classes=2, pretrained="imagenet")
    assert not marker.exists()


def test_hf_cache_without_symlinks_is_read_without_running_code(tmp_path, marker, caplog):
    data = torch_payload(tmp_path / "pytorch_model.bin", marker).read_bytes()
    put_in_hf_cache(TIMM_REPO, "pytorch_model.bin", data, link=False)
    with pytest.raises(CheckpointError, match="it pickles more than tensors"):
        create_model("convnext_atto", num_classes=2, pretrained="imagenet")
    assert not marker.exists()
    assert "its hash was not checked" in caplog.text


def test_hf_cache_safetensors_is_preferred_and_loaded(tmp_path, marker):
    import timm

    torch.manual_seed(0)
    published = timm.create_model("convnext_atto", pretrained=False).state_dict()
    put_in_hf_cache(TIMM_REPO, "model.safetensors", st_save(published))
    put_in_hf_cache(TIMM_REPO, "pytorch_model.bin", torch_payload(tmp_path / "p.bin", marker).read_bytes())
    model = create_model("convnext_atto", num_classes=2, in_chans=3, input_size=224, pretrained="imagenet")
    assert not marker.exists()
    assert torch.equal(model.stages[2].blocks[5].conv_dw.weight, published["stages.2.blocks.5.conv_dw.weight"])


# --- weights files and run folders given as model.pretrained -----------------------------------------------------

@pytest.mark.parametrize("write", [torch_payload, pickle_payload], ids=["torch.save", "pickle"])
@pytest.mark.parametrize("suffix", [".pth", ".pt", ".bin"])
def test_user_weights_file_payload_is_not_unpickled(tmp_path, marker, suffix, write):
    path = write(tmp_path / f"weights{suffix}", marker)
    with pytest.raises(CheckpointError) as e:
        create_model("resnet18", num_classes=2, pretrained=path)
    assert not marker.exists()
    msg = str(e.value)
    assert f"Weights file '{path}' could not be read with torch.load(weights_only=True), which runs no code (it " \
           f"pickles more than tensors" in msg
    assert "save model.state_dict() instead, or convert it to .safetensors" in msg


@pytest.mark.parametrize("damage", ["truncated", "bad header", "pickle"])
def test_damaged_safetensors_file_is_a_clear_error(tmp_path, marker, damage):
    good = st_save({"conv1.weight": torch.zeros(64, 3, 7, 7)})
    data = {"truncated": good[: len(good) // 2],
            "bad header": (1 << 40).to_bytes(8, "little") + good[8:],
            "pickle": pickle.dumps(Payload(marker), protocol=2)}[damage]
    path = tmp_path / "weights.safetensors"
    path.write_bytes(data)
    expected = rf"Weights file '{re.escape(str(path))}' is damaged or not a safetensors file \(Error while .+\)\. It"
    with pytest.raises(CheckpointError, match=expected):
        create_model("resnet18", num_classes=2, pretrained=path)
    assert not marker.exists()


@pytest.mark.parametrize("content", ["garbage", "payload"])
def test_run_folder_with_a_bad_best_checkpoint(tmp_path, marker, content):
    best = tmp_path / "run" / "checkpoints" / "best.safetensors"
    if content == "garbage":
        best.parent.mkdir(parents=True)
        best.write_bytes(b"\x00not a safetensors file at all")
    else:
        torch_payload(best, marker)
    with pytest.raises(CheckpointError, match=rf"Checkpoint '{re.escape(str(best))}' is corrupted .*Re-run training"):
        create_model("resnet9", num_classes=2, width=8, pretrained=tmp_path / "run")
    assert not marker.exists()


def test_run_folder_resume_state_payload_is_not_unpickled(tmp_path, marker):
    state = torch_payload(tmp_path / "run" / "checkpoints" / "last_state.pt", marker)
    with pytest.raises(CheckpointError, match=rf"Resume state '{re.escape(str(state))}' is corrupted or truncated"):
        load_state(state)
    assert not marker.exists()
