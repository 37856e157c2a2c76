"""Heatmaps point at the evidence (pointing game) and depend on the learned weights (randomisation test)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from medclass.errors import ConfigError
from medclass.interpret import compute_heatmaps, first_conv_filters, layer_activations
from medclass.models import create_model, get_model_card
from medclass.runs import train
from medclass.runs.predict import load_run
from tests.conftest import fast_config

SIZE, LESION = 32, 12


def _lesion_npz(path, n=(1600, 200, 200), seed=0):
    """Class 1 iff a bright square lesion (12 px) sits at a random position on a noisy background.
    Class-0 images get a dimmer square elsewhere, so "is there something bright" is not enough: the
    model has to look at the lesion itself.

    ResNet-9's last feature map is 4x4 at 32 px (8 px per cell), so a heatmap cannot be sharper than a
    cell: the lesion spans 1.5 cells. (With a 10 px lesion the maximum lands within 2 px of the lesion
    every time, but inside it only about 77% of the time: a resolution limit, not a wrong layer.)
    """
    rng = np.random.default_rng(seed)
    arrays, boxes = {}, {}
    for split, count in zip(("train", "val", "test"), n):
        images = rng.normal(90, 25, size=(count, SIZE, SIZE)).clip(0, 255)
        labels = rng.integers(0, 2, count)
        box = rng.integers(0, SIZE - LESION + 1, size=(count, 2))
        for i, (r, c) in enumerate(box):
            images[i, r:r + LESION, c:c + LESION] = 230 if labels[i] else 150
        arrays[f"{split}_images"] = images.astype(np.uint8)
        arrays[f"{split}_labels"] = labels.reshape(-1, 1).astype(np.uint8)
        boxes[split] = box
    np.savez(path, **arrays)
    return path, boxes


@pytest.fixture(scope="module")
def lesion_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lesion")
    path, boxes = _lesion_npz(tmp / "lesion.npz")
    cfg = fast_config(path, epochs=6, batch_size=64, lr=3e-3)
    from medclass.config import replace

    cfg = replace(cfg, model=replace(cfg.model, width=8))
    folder = train(cfg, tmp / "run")
    z = np.load(path)
    # validation AUC reaches 1.0 in the first epoch, so the AUC-chosen checkpoint is that early one; the
    # pointing game wants the fully trained network
    return load_run(folder.path, checkpoint="last"), z["test_images"], z["test_labels"][:, 0], boxes["test"]


def _pointing_rate(maps, boxes):
    hits = []
    for m, (r, c) in zip(maps, boxes):
        i, j = np.unravel_index(np.argmax(m), m.shape)
        hits.append(r <= i < r + LESION and c <= j < c + LESION)
    return float(np.mean(hits))


@pytest.mark.parametrize("method", ["cam", "gradcam"])
def test_pointing_game_on_planted_lesions(lesion_run, method):
    model, images, labels, boxes = lesion_run
    pos = np.flatnonzero(labels == 1)
    assert (model.predict(images) == labels).mean() > 0.95  # the model learned the task
    x = model.to_tensor(model.prepare(images[pos]))
    card = get_model_card(model.meta_["model"])
    maps = compute_heatmaps(model.model, x, method, class_idx=1, target_layer=card.cam_layer,
                            classifier=card.classifier)
    assert maps.shape == (len(pos), SIZE, SIZE) and maps.min() >= 0 and maps.max() <= 1
    rate = _pointing_rate(maps, boxes[pos])
    print(f"{method}: heatmap maximum inside the lesion for {rate:.1%} of {len(pos)} lesion images")
    assert rate >= 0.90


def test_randomised_weights_change_the_heatmaps(lesion_run):
    """Adebayo et al. 2018: maps that survive weight randomisation explain the architecture, not the model."""
    model, images, labels, _ = lesion_run
    pos = np.flatnonzero(labels == 1)[:40]
    x = model.to_tensor(model.prepare(images[pos]))
    card = get_model_card(model.meta_["model"])
    for method in ("cam", "gradcam"):
        a = compute_heatmaps(model.model, x, method, 1, card.cam_layer, card.classifier)
        rhos, n_flat = [], 0
        for seed in range(3):  # three independent re-initialisations of every weight
            torch.manual_seed(seed)
            rand = create_model(model.meta_["model"], num_classes=2, in_chans=1, input_size=SIZE, width=8).eval()
            b = compute_heatmaps(rand, x, method, 1, card.cam_layer, card.classifier)
            for u, v in zip(a, b):
                flat = np.ptp(v) == 0  # a random network can give a flat map (Grad-CAM's ReLU of a negative sum)
                n_flat += flat
                rhos.append(0.0 if flat else spearmanr(u.ravel(), v.ravel())[0])
        rho = float(np.mean(rhos))
        print(f"{method}: mean rank correlation trained vs randomised = {rho:.3f} over {len(rhos)} maps "
              f"({n_flat} randomised maps flat, counted as 0)")
        assert rho < 0.5


def test_occlusion_and_gradcampp_shapes_and_hooks_are_cleaned(lesion_run):
    model, images, labels, boxes = lesion_run
    pos = np.flatnonzero(labels == 1)[:6]
    x = model.to_tensor(model.prepare(images[pos]))
    card = get_model_card(model.meta_["model"])
    hooks = sum(len(m._forward_hooks) + len(m._backward_hooks) for m in model.model.modules())
    for method in ("gradcam++", "occlusion"):
        maps = compute_heatmaps(model.model, x, method, 1, card.cam_layer, card.classifier, occlusion_mask=8)
        assert maps.shape == (6, SIZE, SIZE) and np.isfinite(maps).all()
    assert sum(len(m._forward_hooks) + len(m._backward_hooks) for m in model.model.modules()) == hooks
    assert _pointing_rate(compute_heatmaps(model.model, x, "occlusion", 1, occlusion_mask=8), boxes[pos]) >= 0.5


def test_layer_errors_and_filters():
    m = create_model("resnet9", num_classes=2, width=4)
    with pytest.raises(ConfigError, match=r"no layer named 'layer9'\. Did you mean 'layer3'\?"):
        compute_heatmaps(m, torch.rand(1, 1, 28, 28), "gradcam", target_layer="layer9")
    with pytest.raises(ConfigError, match=r"Unknown explanation method 'gradcam\+'\. Did you mean"):
        compute_heatmaps(m, torch.rand(1, 1, 28, 28), "gradcam+", target_layer="layer3")
    name, w = first_conv_filters(m)
    assert name == "stem.0.0" and w.shape == (4, 1, 3, 3)
    acts = layer_activations(m, torch.rand(1, 1, 28, 28), "layer2")
    assert acts.shape == (16, 7, 7)


def test_gradcam_and_montage_for_3d_volumes():
    from torch import nn

    from medclass.reports.figures import volume_montage

    class Tiny3D(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, 4, 3, padding=1),
                                          nn.ReLU())
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(self.features(x).mean((2, 3, 4)))

    vol = torch.rand(2, 1, 8, 16, 16)
    maps = compute_heatmaps(Tiny3D().eval(), vol, "gradcam", class_idx=1, target_layer="features")
    assert maps.shape == (2, 8, 16, 16)
    png = volume_montage(vol[0, 0].numpy() * 255, maps[0], "Grad-CAM, 3D")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
