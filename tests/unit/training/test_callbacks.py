import math

import pytest

from medclass.training import BestCheckpoint, EarlyStopping


class _T:
    should_stop = False


def test_early_stopping_counts_epochs_without_improvement_and_resumes():
    es, t = EarlyStopping(patience=2), _T()
    for epoch, auc in enumerate([0.6, 0.7, 0.69, 0.7], 1):
        es.on_epoch_end(t, {"epoch": epoch, "val_auc": auc})
    assert t.should_stop and es.best == 0.7  # 0.69 and an equal 0.7 are not improvements
    es2 = EarlyStopping(patience=2)
    es2.load_state_dict({"best": 0.7, "bad_epochs": 1})
    t2 = _T()
    es2.on_epoch_end(t2, {"epoch": 5, "val_auc": 0.65})
    assert t2.should_stop


def test_early_stopping_off_and_missing_metric():
    t = _T()
    es = EarlyStopping(patience=0)
    for e in range(10):
        es.on_epoch_end(t, {"epoch": e, "val_auc": 0.5})
    assert not t.should_stop
    with pytest.raises(KeyError, match="monitors 'val_auc', which the epoch record lacks. Available: epoch, loss"):
        EarlyStopping(patience=1).on_epoch_end(t, {"epoch": 1, "loss": 0.3})


def test_best_checkpoint_saves_only_on_improvement_and_skips_nan():
    saved = []
    cb = BestCheckpoint(lambda trainer, rec: saved.append(rec["epoch"]))
    for epoch, auc in enumerate([math.nan, 0.6, 0.6, 0.8, 0.7], 1):
        rec = {"epoch": epoch, "val_auc": auc}
        cb.on_epoch_end(None, rec)
    assert saved == [2, 4] and cb.best_epoch == 4 and rec["best_epoch"] == 4


def _history(cb, rows):
    saved = []
    cb.save = lambda trainer, rec: saved.append(rec["epoch"])
    for epoch, (auc, se) in enumerate(rows, 1):
        cb.on_epoch_end(None, {"epoch": epoch, "val_auc": auc, "val_auc_se": se})
    return saved


def test_best_checkpoint_with_tolerance_keeps_the_latest_epoch_tied_with_the_best():
    rows = [(0.90, 0.01), (0.995, 0.002), (0.9974, 0.002), (0.996, 0.002), (0.9972, 0.002), (0.990, 0.003)]
    # plain rule: the first highest AUC (epoch 3); with one standard error: epoch 5, the latest within 0.002 of
    # 0.9974 (epoch 6 is 3.7 standard errors below it)
    assert _history(BestCheckpoint(None), rows)[-1] == 3
    cb = BestCheckpoint(None, tolerance=1.0)
    assert _history(cb, rows) == [1, 2, 3, 4, 5] and cb.best_epoch == 5
    assert cb.best == 0.9972 and cb.top == 0.9974  # the kept epoch's AUC and the highest
    # the online rule equals the rule applied to the whole history
    top = max(a for a, _ in rows)
    assert cb.best_epoch == max(e for e, (a, _) in enumerate(rows, 1) if a >= top - 0.002)


def test_best_checkpoint_tolerance_needs_a_standard_error_and_resumes():
    cb = BestCheckpoint(None, tolerance=1.0)
    saved = []
    cb.save = lambda trainer, rec: saved.append(rec["epoch"])
    for epoch, auc in enumerate([0.8, 0.79, 0.81], 1):  # no val_auc_se in the records: only new bests count
        cb.on_epoch_end(None, {"epoch": epoch, "val_auc": auc})
    assert saved == [1, 3]
    a = BestCheckpoint(None, tolerance=2.0)
    _history(a, [(0.9, 0.01), (0.95, 0.01)])
    b = BestCheckpoint(None, tolerance=2.0)
    b.load_state_dict(a.state_dict())
    assert _history(b, [(0.935, 0.02)]) == [1] and b.best_epoch == 1 and b.top == 0.95  # 0.935 >= 0.95 - 2 * 0.01
    assert _history(b, [(0.92, 0.02)]) == []  # 0.92 < 0.93: outside the tolerance of the top's se
    old = BestCheckpoint(None, tolerance=1.0)
    old.load_state_dict({"best": 0.9, "best_epoch": 4})  # a resume state written before the tolerance existed
    assert old.top == 0.9
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        BestCheckpoint(None, tolerance=-1)


# The final run of `medclass auto` on AdrenalMNIST3D, seed 1 (benchmarks/runs/auto): epochs 11-14 of cnn3d_small
# (validation AUC, its standard error, validation loss). At epoch 14 the highest AUC, 0.902, came with a validation
# loss of 6.0 and every volume called positive (validation accuracy 0.224; test accuracy 0.232 when it was kept).
SPIKE = [(0.4, 0.07, 0.87), (0.42, 0.07, 0.62), (0.76, 0.06, 0.62), (0.83, 0.05, 0.41), (0.84, 0.05, 0.64),
         (0.85, 0.05, 0.58), (0.854, 0.05, 0.40), (0.886, 0.05, 0.66), (0.795, 0.05, 0.58), (0.807, 0.05, 0.72),
         (0.856, 0.05, 2.13), (0.859, 0.05, 0.71), (0.847, 0.05, 3.14), (0.902, 0.04, 5.99), (0.832, 0.05, 0.75),
         (0.831, 0.05, 0.49), (0.840, 0.05, 0.74), (0.826, 0.05, 0.55), (0.838, 0.05, 0.58), (0.836, 0.05, 0.42)]


def _lossy(cb, rows):
    saved = []
    cb.save = lambda trainer, rec: saved.append(rec["epoch"])
    for epoch, (auc, se, loss) in enumerate(rows, 1):
        cb.on_epoch_end(None, {"epoch": epoch, "val_auc": auc, "val_auc_se": se, "val_loss": loss})
    return saved


def test_an_epoch_worse_than_uniform_probabilities_is_not_kept_however_high_its_auc():
    plain = BestCheckpoint(None, tolerance=1.0)
    _lossy(plain, SPIKE)
    assert plain.best_epoch == 14  # without the guard: the degenerate spike
    guarded = BestCheckpoint(None, tolerance=1.0, max_loss=math.log(2))
    _lossy(guarded, SPIKE)
    # epoch 8 (0.886, loss 0.66 < ln 2) is the best sound epoch; the latest within one SE (0.05) of it is epoch 20
    assert guarded.best_epoch == 20 and guarded.top == 0.886 and guarded.passed_over == [14]
    assert not guarded.provisional


def test_degenerate_epochs_are_kept_only_until_a_sound_one_and_the_guard_resumes():
    cb = BestCheckpoint(None, tolerance=1.0, max_loss=0.69)
    saved = _lossy(cb, [(0.7, 0.05, 1.5), (0.8, 0.05, 1.2)])
    assert saved == [1, 2] and cb.provisional and cb.top is None  # nothing sound yet: the best of them, for now
    resumed = BestCheckpoint(None, tolerance=1.0, max_loss=0.69)
    resumed.load_state_dict(cb.state_dict())
    assert resumed.provisional
    assert _lossy(resumed, [(0.6, 0.05, 0.5)]) == [1]  # the first sound epoch replaces them, though its AUC is lower
    assert not resumed.provisional and resumed.best == 0.6 and resumed.top == 0.6
    nan = BestCheckpoint(None, max_loss=0.69)  # no loss in the record (no loss function): the guard stays out
    assert _lossy(nan, [(0.7, 0.05, math.nan)]) == [1] and not nan.provisional
    last = BestCheckpoint(None, keep="last", max_loss=0.69)  # refit: every epoch is saved, the guard stays out
    assert _lossy(last, [(0.7, 0.05, 3.0), (0.6, 0.05, 3.0)]) == [1, 2]


def test_checkpoint_rule_text_names_the_rule():
    from medclass.run_folder import checkpoint_rule_text

    assert checkpoint_rule_text({"chosen_by": "val_auc"}) == "chosen by validation AUC"
    assert checkpoint_rule_text({"chosen_by": "val_auc", "tolerance_se": 1.0}) == (
        "chosen by validation AUC (the latest epoch within 1 standard error of the highest)")
    assert "2 standard errors" in checkpoint_rule_text({"chosen_by": "val_auc", "tolerance_se": 2})
    assert "worse than uniform probabilities were passed over" in checkpoint_rule_text(
        {"chosen_by": "val_auc", "tolerance_se": 1.0, "guard": "uninformative_loss"})
    assert checkpoint_rule_text({"chosen_by": "last_epoch"}).startswith("the last epoch")


def test_the_guard_is_the_loss_of_uniform_probabilities():
    import numpy as np

    from medclass.config import TrainConfig
    from medclass.runs.train import uninformative_loss
    from medclass.tasks import get_task
    from medclass.training.losses import build_loss

    def ref(task, labels, k, **train):
        t = get_task(task)
        return uninformative_loss(t, build_loss(t, TrainConfig(**train)), np.asarray(labels), k)

    assert ref("binary", [0, 1, 1], 2) == pytest.approx(math.log(2))  # single-label datasets hold (n,) labels
    assert ref("multiclass", [0, 1, 2, 2], 3) == pytest.approx(math.log(3))
    assert ref("multilabel", [[0, 1, 1], [1, 0, 0]], 3) == pytest.approx(math.log(2))
    assert ref("regression", [0.3, 1.2], 1) is None
    assert ref("binary", [0, 1], 2, loss="hinge") == pytest.approx(0.5)  # any loss: zero outputs, (K-1)/K here
