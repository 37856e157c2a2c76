"""3D heatmaps and slice weights point at the evidence in a toy volume dataset (pointing game).

Class 1 iff a bright 6³ cube sits at a random position in a noisy 24³ volume; class-0 volumes get a dimmer
cube elsewhere, so "is there something bright" is not enough. A 3D network (``cnn3d_small``) and the
attention-MIL slice model (``slices_resnet9_attn``) train for 50 steps; then Grad-CAM's hottest voxel must
lie near the cube and the attention must sit on the cube's slices. The last feature map is 3³ at 24³ (8
voxels a cell), so "near" is half a cell: within 4 voxels of the cube, where a random point lands about 16% of
the time.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medclass.errors import ConfigError
from medclass.interpret.volume import hottest_point, slice_weights, volume_heatmaps
from medclass.models import create_model, get_model_card

SIDE, CUBE = 24, 6


def blob_volumes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """``(x (n, 1, 24, 24, 24) in [0, 1], labels, cube corners (n, 3))``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.3, 0.1, size=(n, 1, SIDE, SIDE, SIDE)).astype(np.float32)
    y = rng.integers(0, 2, n)
    corners = rng.integers(0, SIDE - CUBE + 1, size=(n, 3))
    for i, (d, h, w) in enumerate(corners):
        x[i, 0, d:d + CUBE, h:h + CUBE, w:w + CUBE] = 1.0 if y[i] else 0.6
    return torch.from_numpy(x.clip(0, 1)), torch.from_numpy(y), corners


def _train(name: str, steps: int = 50) -> torch.nn.Module:
    x, y, _ = blob_volumes(384, seed=0)
    torch.manual_seed(0)
    model = create_model(name, num_classes=2, input_size=SIDE, width=4)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (16,), generator=g)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def test_set():
    x, y, corners = blob_volumes(64, seed=1)
    positive = (y == 1).numpy()
    return x, y, corners, positive


def _distance_to_cube(point, corner) -> int:
    p, lo = np.array(point), np.array(corner)
    return int(np.maximum(np.maximum(lo - p, p - (lo + CUBE - 1)), 0).max())


@pytest.mark.parametrize("name", ["cnn3d_small", "slices_resnet9_attn"])
def test_gradcam_points_at_the_cube(name, test_set):
    x, y, corners, positive = test_set
    model = _train(name)
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() >= 0.85
    maps = volume_heatmaps(model, x[positive], get_model_card(name), "gradcam", class_idx=1)
    assert maps.shape == (int(positive.sum()), SIDE, SIDE, SIDE) and maps.min() >= 0 and maps.max() <= 1
    hits = [_distance_to_cube(hottest_point(m), c) <= 4 for m, c in zip(maps, corners[positive])]
    assert np.mean(hits) >= 0.7, np.mean(hits)  # measured: 0.84 (cnn3d_small), 0.92 (slices)
    if name == "slices_resnet9_attn":  # the attention sits on the slices that hold the cube
        weights = slice_weights(model, x[positive])
        on_cube = [w[d:d + CUBE].sum() for w, (d, _, _) in zip(weights, corners[positive])]
        assert np.allclose(weights.sum(1), 1) and np.mean(on_cube) > 0.6  # uniform: 6/24 = 0.25; measured: 0.95


def test_2d_feature_maps_are_refused_with_occlusion_as_the_way_out():
    model = create_model("resnet9_25d", num_classes=2, input_size=16, width=4).eval()
    card = get_model_card("resnet9_25d")
    x = torch.rand(1, 1, 16, 16, 16)
    with pytest.raises(ConfigError, match=r"resnet9_25d: the output of 'backbone.layer3' is a 2D map .* Use "
                                          r"method='occlusion'"):
        volume_heatmaps(model, x, card, "gradcam")
    maps = volume_heatmaps(model, x, card, "occlusion", occlusion_mask=8)
    assert maps.shape == (1, 16, 16, 16) and np.isfinite(maps).all()


def test_misuse_is_explained():
    model = create_model("slices_resnet9_max", num_classes=2, input_size=16, width=4).eval()
    card = get_model_card("slices_resnet9_max")
    with pytest.raises(ConfigError, match=r"needs volumes \(N, C, D, H, W\)"):
        volume_heatmaps(model, torch.rand(1, 1, 16, 16), card)
    with pytest.raises(ConfigError, match="CAM needs a head that is global pooling then a linear layer"):
        volume_heatmaps(model, torch.rand(1, 1, 16, 16, 16), card, "cam")
    with pytest.raises(ConfigError, match="resnet9 is a 2D model"):
        volume_heatmaps(model, torch.rand(1, 1, 16, 16, 16), get_model_card("resnet9"))
    with pytest.raises(ConfigError, match="does not pool over slices"):
        slice_weights(create_model("cnn3d_small", num_classes=2, input_size=16), torch.rand(1, 1, 16, 16, 16))
    mean_model = create_model("slices_resnet9_mean", num_classes=2, input_size=16, width=4).eval()
    cam = volume_heatmaps(mean_model, torch.rand(2, 1, 16, 16, 16), get_model_card("slices_resnet9_mean"), "cam")
    assert cam.shape == (2, 16, 16, 16)
    assert hottest_point(np.pad(np.ones((1, 1, 1)), ((2, 3), (1, 0), (4, 0)))) == (2, 1, 4)
