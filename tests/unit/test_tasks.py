import numpy as np
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight

from medclass.errors import ConfigError
from medclass.tasks import get_task


def test_balanced_weights_match_sklearn_and_chexnet():
    y = np.array([0] * 30 + [1] * 90 + [2] * 5)
    w = get_task("multiclass").balanced_weights(y, 4)
    assert np.allclose(w[:3].numpy(), compute_class_weight("balanced", classes=np.arange(3), y=y) * 3 / 4)
    assert w[3] == 1.0  # absent class
    ml = np.array([[1, 0], [0, 0], [0, 1], [1, -1]])
    pw = get_task("multilabel").balanced_weights(ml, 2)
    assert torch.allclose(pw, torch.tensor([2 / 2, 2 / 1]))


def test_weighted_loss_and_probabilities():
    t = get_task("binary")
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    y = torch.tensor([0, 1])
    assert torch.allclose(t.probabilities(logits).sum(1), torch.ones(2))
    plain = t.loss()(logits, y)
    heavy = t.loss(class_weights=torch.tensor([1.0, 3.0]))(logits, y)
    assert torch.isclose(plain, heavy)  # both examples have the same loss, so the weighted mean is equal
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.5]])  # now the class-1 example has the larger loss
    per = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    assert per[1] > per[0]
    heavy = t.loss(class_weights=torch.tensor([1.0, 3.0]))(logits, y)
    assert torch.isclose(heavy, (per[0] + 3 * per[1]) / 4)  # each example weighted by its class's weight
    assert heavy > t.loss()(logits, y)  # so weighting the worse-predicted class raises the loss
    ml = get_task("multilabel")
    assert ml.target(torch.tensor([[1, 0]])).dtype == torch.float32
    with pytest.raises(ConfigError, match="Did you mean 'binary'"):
        get_task("binray")
