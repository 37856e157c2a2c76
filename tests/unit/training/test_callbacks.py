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
