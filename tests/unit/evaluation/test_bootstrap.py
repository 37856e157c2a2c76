import time

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score

from medclass.evaluation.assess import AssessConfig, assess
from medclass.evaluation.bootstrap import bootstrap, resample_counts, weighted_auc, weighted_average_precision
from medclass.evaluation.compare import delong_auc_variance, delong_test


def test_weighted_auc_and_ap_equal_sklearn_with_sample_weights():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300) + 0.3 * y, 1)  # many ties
    w = next(resample_counts(300, 25, rng))
    for fn, ref in ((weighted_auc, roc_auc_score), (weighted_average_precision, average_precision_score)):
        got = fn(y, s, w)
        want = [ref(y, s, sample_weight=row) for row in w]
        assert np.allclose(got, want, atol=1e-12)


def test_undefined_replicates_are_counted_not_fatal():
    y = np.array([0] * 2 + [1] * 38)  # two negatives: some replicates draw none
    s = np.linspace(0, 1, 40)
    r = bootstrap({"auc": lambda w: weighted_auc(y, s, w)}, len(y), n_boot=500, seed=1)["auc"]
    assert 0 < r["n_undefined"] < 500 and r["low"] <= r["estimate"] <= r["high"]


def test_interval_contains_estimate_and_is_seeded():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + 0.7 * rng.random(200), 0, 1)
    cfg = AssessConfig(n_boot=500, seed=7)
    a = assess(y, np.stack([1 - p, p], 1), "binary", ("a", "b"), cfg=cfg)
    b = assess(y, np.stack([1 - p, p], 1), "binary", ("a", "b"), cfg=cfg)
    assert a["intervals"] == b["intervals"]
    for k, iv in a["intervals"].items():
        assert iv["low"] <= iv["estimate"] <= iv["high"], k
    assert a["intervals"]["auc"]["estimate"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def _correlated_patients(rng, n_patients=60, per_patient=8):
    """Images of one patient share a patient effect in both label and score: strongly correlated."""
    pid = np.repeat(np.arange(n_patients), per_patient)
    y_pat = rng.integers(0, 2, n_patients)
    effect = rng.normal(scale=1.0, size=n_patients)
    y = y_pat[pid]
    s = y + effect[pid] + rng.normal(scale=0.3, size=len(pid))
    return y, 1 / (1 + np.exp(-s)), pid


def test_patient_level_bootstrap_is_wider_when_images_are_correlated():
    rng = np.random.default_rng(0)
    y, p, pid = _correlated_patients(rng)
    proba = np.stack([1 - p, p], 1)
    img = assess(y, proba, "binary", ("a", "b"), cfg=AssessConfig(n_boot=1000))
    pat = assess(y, proba, "binary", ("a", "b"), groups=pid, cfg=AssessConfig(n_boot=1000))
    width = {k: r["intervals"]["auc"]["high"] - r["intervals"]["auc"]["low"] for k, r in (("img", img), ("pat", pat))}
    assert pat["bootstrap"]["unit"] == "patient" and pat["bootstrap"]["n_units"] == 60
    assert width["pat"] > 1.5 * width["img"]


def test_delong_variance_agrees_with_bootstrap_and_detects_a_difference():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 800)
    a = y + rng.normal(size=800)
    b = y + rng.normal(scale=2.0, size=800)
    _, var = delong_auc_variance(y, a)
    boot = bootstrap({"auc": lambda w: weighted_auc(y, a, w)}, 800, n_boot=2000, seed=0)["auc"]
    boot_sd = (boot["high"] - boot["low"]) / (2 * norm.ppf(0.975))
    assert np.sqrt(var) == pytest.approx(boot_sd, rel=0.15)
    t = delong_test(y, a, b)
    assert t["difference"] == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b), abs=1e-12)
    assert t["p_value"] < 1e-4
    same = delong_test(y, a, a + 1e-9 * rng.normal(size=800))
    assert same["p_value"] > 0.5


def test_vectorised_auc_is_fast():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 10_000)
    s = rng.random(10_000) + 0.2 * y
    t = time.perf_counter()
    r = bootstrap({"auc": lambda w: weighted_auc(y, s, w)}, 10_000, n_boot=1000, seed=0)
    assert time.perf_counter() - t < 20  # about 0.3 s here; a loop of roc_auc_score takes ~10x longer
    assert r["auc"]["low"] < r["auc"]["estimate"] < r["auc"]["high"]


@pytest.mark.slow
def test_percentile_interval_coverage_on_simulated_data():
    """Binormal model with known AUC = Phi(d / sqrt(2)): the 95% interval covers it in 93-97% of 400 datasets."""
    d = 1.2
    true_auc = norm.cdf(d / np.sqrt(2))
    rng = np.random.default_rng(2024)
    hits = 0
    for sim in range(400):
        y = np.r_[np.zeros(150, int), np.ones(150, int)]
        s = rng.normal(size=300) + d * y
        iv = bootstrap({"auc": lambda w: weighted_auc(y, s, w)}, 300, n_boot=1000, seed=sim)["auc"]
        hits += iv["low"] <= true_auc <= iv["high"]
    coverage = hits / 400
    print(f"coverage {coverage:.3f} over 400 simulations (true AUC {true_auc:.4f})")
    assert 0.93 <= coverage <= 0.97
