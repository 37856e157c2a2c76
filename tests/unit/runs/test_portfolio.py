"""The candidates ``medclass auto`` screens (medclass/runs/portfolio.py) and how it divides a budget (budget.py)."""

from __future__ import annotations

import pytest

from medclass.config import build_config
from medclass.errors import ConfigError
from medclass.runs import portfolio as pf
from medclass.runs.budget import Plan, Probe, plan_budget
from medclass.runs.portfolio import Candidate, PortfolioFacts, build_portfolio, candidate_config, combine, select
from medclass.runs.volumes import match_model


def _base(**data):
    return build_config(overrides={"data": {"dataset": "breastmnist", **data}})


def _names(cands):
    return [c.name for c in cands]


def test_the_portfolio_turns_one_knob_at_a_time_from_the_base():
    cands, absent = build_portfolio(_base(), PortfolioFacts(task="binary"))
    names = _names(cands)
    assert names[0] == "base" and cands[0].overrides == {}
    assert {"smoothing-0.1", "class-weights-balanced", "augment-light", "augment-medium", "lr-x2", "lr-x0.5",
            "schedule-cosine", "resnet9-w16", "resnet9-w32", "resnet9-w64", "resnet18", "efficientnet_b0",
            "convnext_atto"} <= set(names)
    assert "resnet9-w24" not in names  # the base's own width is the base
    for c in cands:  # every candidate is a valid configuration
        cfg = candidate_config(_base(), c, epochs=3)
        assert cfg.train.epochs == 3
    assert candidate_config(_base(), next(c for c in cands if c.name == "lr-x2")).train.lr == pytest.approx(4e-3)
    assert {a["name"] for a in absent} >= {"resnet18-imagenet", "efficientnet_b0-imagenet", "convnext_atto-imagenet"}


@pytest.mark.parametrize("dataset, mirror", [("breastmnist", False), ("pneumoniamnist", False), ("organamnist", False),
                                             ("retinamnist", False), ("dermamnist", True), ("pathmnist", True),
                                             ("bloodmnist", True)])
def test_mirrors_only_for_orientation_free_modalities(dataset, mirror, tmp_path):
    base = _base(dataset=dataset, data_dir=str(tmp_path))
    facts = pf.portfolio_facts(base, "multiclass")
    assert facts.mirror is mirror
    cands, _ = build_portfolio(base, facts)
    for c in cands:
        aug = candidate_config(base, c).train.augment
        assert aug.hflip is (mirror and c.group == "augmentation")
        assert aug.vflip is (mirror and c.name == "augment-medium")


def test_manifests_mirror_only_with_the_dermatology_preset():
    base = build_config(overrides={"data": {"manifest": "x.csv", "preprocess": {"preset": "xray"}}})
    facts = pf.portfolio_facts(base, "binary")
    assert not facts.mirror and facts.other_sizes == (64,)
    base = build_config(overrides={"data": {"manifest": "x.csv", "preprocess": {"preset": "dermatology"}}})
    assert pf.portfolio_facts(base, "binary").mirror


def test_sizes_only_when_the_file_is_on_this_machine(tmp_path, monkeypatch):
    monkeypatch.delenv("MEDCLASS_DATA", raising=False)
    base = _base(data_dir=str(tmp_path))
    facts = pf.portfolio_facts(base, "binary")
    assert facts.other_sizes == () and "breastmnist_64.npz is not on this machine" in facts.size_note
    (tmp_path / "breastmnist_64.npz").write_bytes(b"")
    facts = pf.portfolio_facts(base, "binary")
    assert facts.other_sizes == (64,)
    assert "size-64" in _names(build_portfolio(base, facts)[0])


def test_imagenet_candidates_only_when_cached(monkeypatch):
    monkeypatch.setattr(pf, "imagenet_cached", lambda name: name == "resnet18")
    facts = pf.portfolio_facts(_base(), "binary")
    cands, absent = build_portfolio(_base(), facts)
    r18 = next(c for c in cands if c.name == "resnet18-imagenet")
    assert r18.overrides["model"]["pretrained"] == "imagenet"
    assert "efficientnet_b0-imagenet" not in _names(cands)
    assert any(a["name"] == "efficientnet_b0-imagenet" and "not in the local cache" in a["reason"] for a in absent)


def test_volumes_screen_3d_designs_not_2d_models(monkeypatch):
    monkeypatch.setattr(pf, "imagenet_cached", lambda name: name == "resnet18_25d")
    base = match_model(_base(dataset="adrenalmnist3d"), 3, "adrenalmnist3d")
    assert (base.model.name, base.model.width) == ("cnn3d_small", 8)
    facts = PortfolioFacts(task="binary", modality="Shape from Abdominal CT", other_sizes=(64,), spatial_dims=3,
                           imagenet={"resnet18_25d": True, "resnet18_acs": False})
    cands, absent = build_portfolio(base, facts)
    names = _names(cands)
    assert {"cnn3d_small-w16", "resnet10_3d", "resnet9_acs", "resnet9_25d", "slices_resnet9_mean",
            "slices_resnet9_attn", "resnet18_25d-imagenet", "augment-light", "lr-x2"} <= set(names)
    assert not {"resnet9-w16", "resnet18", "efficientnet_b0", "convnext_atto"} & set(names)
    assert {a["name"] for a in absent} >= {"resnet18_3d", "resnet18_acs", "resnet18_acs-imagenet"}
    size = next(c for c in cands if c.name == "size-64")
    assert size.cost == pytest.approx((64 / 28) ** 3) and "voxel" in size.note
    for c in cands:  # every candidate is a valid configuration with a 3D model
        cfg = candidate_config(base, c, epochs=2)
        assert match_model(cfg, 3, "adrenalmnist3d") is cfg


def test_another_input_size_carries_its_cost():
    cands, _ = build_portfolio(_base(), PortfolioFacts(task="binary", other_sizes=(64,)))
    assert next(c for c in cands if c.name == "size-64").cost == pytest.approx((64 / 28) ** 2)
    assert all(c.cost == 1.0 for c in cands if c.name != "size-64")


def test_regression_has_no_classification_knobs():
    cands, _ = build_portfolio(_base(), PortfolioFacts(task="regression"))
    assert not {"smoothing-0.1", "class-weights-balanced", "class-weights-none"} & set(_names(cands))


def test_combination_takes_the_best_change_of_each_group_that_beat_the_base():
    a = Candidate("augment-light", "augmentation", {"train": {"augment": {"rotate": 5.0}}})
    b = Candidate("augment-medium", "augmentation", {"train": {"augment": {"rotate": 15.0}}})
    w = Candidate("resnet9-w32", "model", {"model": {"name": "resnet9", "width": 32}})
    s = Candidate("smoothing-0.1", "label-smoothing", {"train": {"label_smoothing": 0.1}})
    combo = combine([(a, 0.91), (b, 0.93), (w, 0.92), (s, 0.80)], base_score=0.90)
    assert combo is not None and combo.group == "combination"
    assert combo.overrides == {"train": {"augment": {"rotate": 15.0}}, "model": {"name": "resnet9", "width": 32}}
    assert combine([(a, 0.91), (b, 0.93)], base_score=0.90) is None  # one group only: nothing to combine


def test_select_keeps_the_portfolio_order_and_names_unknown_ones():
    cands, _ = build_portfolio(_base(), PortfolioFacts(task="binary"))
    mine = Candidate("mine", "learning-rate", {"train": {"lr": 1e-4}})
    assert _names(select(cands, ["lr-x2", "base", mine])) == ["base", "lr-x2", "mine"]
    with pytest.raises(ConfigError, match="Did you mean 'lr-x2'"):
        select(cands, ["lr-2x"])
    with pytest.raises(ConfigError, match="given twice"):
        select(cands, ["base", Candidate("base", "base")])


def _probe(epoch=1.0, overhead=1.0, test=1.0):
    return Probe(epoch_seconds=epoch, step_seconds=epoch / 10, overhead=overhead, test_seconds=test,
                 inference_per_image=1e-4, n_train=500, n_val=80, n_test=150, batches=10, task="binary",
                 monitor="val_auc", seconds=1.0)


def test_plan_rungs_grow_by_three_and_fit_the_budget():
    plan = plan_budget(_probe(), 600, 5, recipe_epochs=30, n_candidates=14, small_val=False, folds=5, dataset="x")
    assert isinstance(plan, Plan) and plan.rungs == (plan.rung_unit, 3 * plan.rung_unit, 9 * plan.rung_unit)
    assert plan.max_epochs <= plan.final_epochs <= 30
    assert plan.final_seconds <= 0.35 * 600 + 1e-9 and plan.cv_seconds == 0
    total = plan.spent_before + plan.end_seconds + plan.final_seconds + plan.cv_seconds + plan.screen_seconds
    assert total == pytest.approx(600)
    small = plan_budget(_probe(), 600, 5, recipe_epochs=30, n_candidates=14, small_val=True, folds=5, dataset="x")
    assert small.cv_seconds == pytest.approx(240) and small.screen_seconds < plan.screen_seconds
    short = plan_budget(_probe(), 600, 5, recipe_epochs=4, n_candidates=14, small_val=False, folds=5, dataset="x")
    assert short.rungs == (1, 3)


def test_a_tight_budget_screens_nothing_and_a_tiny_one_is_refused():
    tight = plan_budget(_probe(epoch=3.0), 20, 2, recipe_epochs=30, n_candidates=14, small_val=False, folds=5,
                        dataset="x")
    assert tight.rungs == () and tight.final_epochs >= 1 and tight.screen_seconds == 0
    with pytest.raises(ConfigError, match=r"A budget of 5s is too small to train anything on x here.*"
                                          r"Pass --budget \d+s or more"):
        plan_budget(_probe(epoch=3.0), 5, 2, recipe_epochs=30, n_candidates=14, small_val=False, folds=5, dataset="x")
