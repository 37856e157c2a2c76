"""Label-shift adaptation: EM and BBSE recover a known class balance from unlabelled posteriors; the adapted
metrics are reported beside, never instead of, the headline ones."""

from __future__ import annotations

import numpy as np
import pytest

from medclass.cli.main import main
from medclass.errors import ConfigError
from medclass.evaluation.label_shift import adapt_probabilities, bbse_priors, em_priors, estimate_priors
from medclass.runs import evaluate_run, train
from medclass.utils.io import read_json
from tests.conftest import fast_config, make_npz


def _sample(n: int, priors, rng) -> tuple[np.ndarray, np.ndarray]:
    """Two unit-variance Gaussians at -1 and +1: labels and the exact posteriors under balanced source priors."""
    y = rng.choice(2, size=n, p=priors)
    x = rng.normal(np.where(y == 1, 1.0, -1.0), 1.0)
    p1 = 1 / (1 + np.exp(-2 * x))  # exact p(y=1 | x) when p(y=1) = 0.5
    return y, np.stack([1 - p1, p1], 1)


@pytest.mark.parametrize("target", [0.2, 0.5, 0.8])
def test_em_and_bbse_recover_the_class_balance_of_unlabelled_images(target):
    rng = np.random.default_rng(0)
    y_val, p_val = _sample(4000, [0.5, 0.5], rng)
    _, p_new = _sample(4000, [1 - target, target], rng)
    em, iters = em_priors(p_new, np.array([0.5, 0.5]))
    assert abs(em[1] - target) < 0.03 and iters < 1000
    assert abs(bbse_priors(y_val, p_val, p_new)[1] - target) < 0.04
    info = estimate_priors("em", p_new, (y_val, p_val))
    assert abs(info["estimated_priors"][1] - target) < 0.04 and info["adapted"].shape == p_new.shape


def test_adaptation_is_bayes_rule_and_the_identity_at_the_source_priors():
    p = np.array([[0.5, 0.5], [0.9, 0.1]])
    assert np.allclose(adapt_probabilities(p, [0.5, 0.5], [0.5, 0.5]), p)
    assert np.allclose(adapt_probabilities(p, [0.5, 0.5], [0.2, 0.8])[0], [0.2, 0.8])


def test_bbse_needs_an_invertible_confusion_matrix():
    p = np.tile([[0.9, 0.1]], (10, 1))  # every validation image predicted class 0
    with pytest.raises(ConfigError, match="full rank"):
        bbse_priors(np.array([0, 1] * 5), p, p)
    with pytest.raises(ConfigError, match="Unknown label-shift method"):
        estimate_priors("oracle", p, (np.zeros(10), p))


def test_evaluate_reports_adapted_metrics_beside_unchanged_headline(tmp_path, capsys):
    run = train(fast_config(make_npz(tmp_path / "toy.npz", n=(96, 48, 48)), epochs=4), tmp_path / "run").path
    plain = evaluate_run(run, "test")
    shifted = evaluate_run(run, "test", label_shift="em")
    assert {k: shifted[k] for k in ("auc", "acc", "sensitivity")} == {k: plain[k] for k in ("auc", "acc", "sensitivity")}
    ls = read_json(run / "metrics" / "test.json")["label_shift"]
    assert ls["method"] == "em" and len(ls["estimated_priors"]) == 2 and abs(sum(ls["estimated_priors"]) - 1) < 1e-9
    assert set(ls["intervals"]) >= {"auc", "acc"} and "not adapted" in ls["note"]
    assert main(["evaluate", str(run), "--label-shift", "bbse"]) == 0
    assert "label shift (bbse): class shares" in capsys.readouterr().out
    assert "label_shift" not in evaluate_run(run, "val", label_shift="em")  # validation is where priors come from


def test_the_report_discloses_the_adaptation_beside_the_headline(tmp_path):
    from medclass.reports.html import build_report

    run = train(fast_config(make_npz(tmp_path / "toy.npz", n=(96, 48, 48)), epochs=4), tmp_path / "run").path
    evaluate_run(run, "test")
    html = build_report(run).read_text()
    assert "Label-shift adaptation" not in html  # off by default: nothing to disclose
    evaluate_run(run, "test", label_shift="em")
    html = build_report(run).read_text()
    assert "Label-shift adaptation (an option, off by default)" in html and "Saerens" in html
