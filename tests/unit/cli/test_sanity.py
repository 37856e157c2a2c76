"""``medclass sanity`` and ``medclass lr-find``, and the library functions behind them."""

from medclass.cli.main import main
from medclass.runs.diagnostics import sanity_check
from tests.conftest import fast_config

SMALL = ["--set", "model.width=4", "--batch-size", "16", "--quiet"]


def test_sanity_check_passes_on_learnable_data_and_fails_with_a_learning_rate_too_low(toy_npz):
    ok = sanity_check(fast_config(toy_npz), steps=60)
    assert ok.passed and ok.end_loss < 0.05 < ok.start_loss and ok.n_images == 16 and ok.batch_accuracy == 1.0
    assert ok.lr == 3e-3  # the configured rate, constant
    low = sanity_check(fast_config(toy_npz, lr=1e-8), steps=30)
    assert not low.passed and "too low" in low.advice[0]


def test_sanity_command_exit_status_and_report(toy_npz, capsys):
    assert main(["sanity", "--dataset", str(toy_npz), *SMALL, "--steps", "60", "--batches", "2"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "2 batch(es)" in out and "32 images" in out and "->" in out
    assert main(["sanity", "--dataset", str(toy_npz), *SMALL, "--steps", "20", "--lr", "1e-9"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "too low" in out
    assert main(["sanity", "--dataset", str(toy_npz), *SMALL, "--set", "train.loss=cross-entropy",
                 "--set", "train.optimizer=adma"]) == 2
    assert "Did you mean 'adam'?" in capsys.readouterr().err


def test_lr_find_command_prints_a_suggestion_and_draws_the_curve(toy_npz, tmp_path, capsys):
    plot = tmp_path / "lr.png"
    assert main(["lr-find", "--dataset", str(toy_npz), *SMALL, "--steps", "60", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("suggested lr"))
    lr = float(line.split(":")[1].split()[0])
    assert 1e-5 < lr < 10 and plot.read_bytes()[:4] == b"\x89PNG"
    assert main(["lr-find", "--dataset", str(toy_npz), "--start", "1", "--end", "0.1"]) == 2
    assert "0 < --start < --end" in capsys.readouterr().err
