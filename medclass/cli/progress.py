"""Progress for the terminal (the library itself only logs).

On a terminal, bars with an ETA; when stderr is redirected to a file (a log, a CI job), no carriage-return
frames: one line per epoch, and one line when a long count (decoding, predicting) starts and ends.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

from ..training.callbacks import Callback

__all__ = ["TrainingProgress", "DownloadProgress", "DecodeProgress", "CountProgress", "BudgetProgress", "interactive"]


def interactive() -> bool:
    """Whether progress bars can redraw in place (stderr is a terminal)."""
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class TrainingProgress(Callback):
    """One bar over all remaining optimisation steps (so its ETA covers the whole run) plus a line per epoch."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.bar: tqdm | None = None
        self.t0 = 0.0

    def on_fit_start(self, trainer):
        per_epoch = len(trainer.train_loader)
        remaining = max(trainer.epochs - trainer.epoch, 0) * per_epoch
        self.t0 = time.perf_counter()
        self.start_epoch = trainer.epoch
        self.bar = tqdm(total=remaining, unit="step", dynamic_ncols=True, file=sys.stderr,
                        disable=not (self.enabled and interactive()),
                        desc=f"epoch {trainer.epoch + 1}/{trainer.epochs}")

    def on_epoch_start(self, trainer, epoch):
        if self.bar is not None:
            self.bar.set_description(f"epoch {epoch + 1}/{trainer.epochs}")

    def on_batch_end(self, trainer, batch, loss):
        if self.bar is not None:
            self.bar.update(1)
            if batch % 5 == 0:
                self.bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

    def on_epoch_end(self, trainer, r):
        kept = r.get("best_epoch")
        note = f"  (kept epoch {kept})" if kept else ""
        done = trainer.epoch - self.start_epoch
        left = (time.perf_counter() - self.t0) / max(done, 1) * (trainer.epochs - trainer.epoch)
        line = (f"epoch {r['epoch']:>3}/{trainer.epochs}  train_loss {r['train_loss']:.4f}"
                f"  val_loss {r['val_loss']:.4f}"
                + "".join(f"  {k} {v:.4f}" for k, v in r.items() if k.startswith("val_") and k not in
                          ("val_loss", "val_seconds")) + f"  {r['seconds']:.1f}s"
                f"  {r['images_per_s']:.0f} img/s{note}" + (f"  ~{left:.0f}s left" if trainer.epoch < trainer.epochs
                                                             else ""))
        if not self.enabled:
            return
        if self.bar is not None and not self.bar.disable:
            self.bar.write(line)
        else:
            print(line, file=sys.stderr, flush=True)

    def on_fit_end(self, trainer):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class CountProgress:
    """``fn(done, total)`` drawing a count bar with ETA (decoding, predicting); two lines when not a terminal."""

    def __init__(self, desc: str, unit: str = "img", enabled: bool = True):
        self.desc, self.unit, self.enabled = desc, unit, enabled
        self.bar: tqdm | None = None
        self.t0 = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.t0 == 0.0:
            self.t0 = time.perf_counter()
            if interactive():
                self.bar = tqdm(total=total, unit=self.unit, desc=self.desc, file=sys.stderr, dynamic_ncols=True)
            else:
                print(f"{self.desc}: {total} {self.unit}...", file=sys.stderr, flush=True)
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
        if done >= total:
            if self.bar is not None:
                self.bar.close()
            else:
                print(f"{self.desc}: {total} {self.unit} in {time.perf_counter() - self.t0:.1f}s", file=sys.stderr,
                      flush=True)
            self.enabled = False


class DecodeProgress(CountProgress):
    """``fn(done, total)`` while a manifest's files are decoded."""

    def __init__(self, enabled: bool = True):
        super().__init__("decode", "img", enabled)


class DownloadProgress:
    """``fn(done, total)`` drawing a byte-count bar; used while a dataset downloads."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.bar: tqdm | None = None

    def __call__(self, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="download",
                            file=sys.stderr, dynamic_ncols=True, disable=not interactive())
        self.bar.update(done - self.bar.n)
        if total is not None and done >= total:
            self.bar.close()


class BudgetProgress(Callback):
    """A bar over a time budget (``medclass auto``): ``fn(phase, message, elapsed, budget)`` at each event writes a
    line above the bar, and every finished epoch of any run moves it. Without a terminal, one line per event."""

    def __init__(self, budget: float, enabled: bool = True):
        self.budget, self.enabled = float(budget), enabled
        self.bar: tqdm | None = None
        self.offset: float | None = None  # perf_counter() at the budget's start

    def __call__(self, phase: str, message: str, elapsed: float, budget: float) -> None:
        if not self.enabled:
            return
        if self.offset is None:
            self.offset = time.perf_counter() - elapsed
            if interactive():
                self.bar = tqdm(total=round(budget), unit="s", file=sys.stderr, dynamic_ncols=True, desc="budget",
                                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f}s")
        line = f"[{elapsed:5.0f}s /{budget:.0f}s] {phase}: {message}"
        if self.bar is not None:
            self._move(elapsed)
            self.bar.write(line)
        else:
            print(line, file=sys.stderr, flush=True)

    def on_epoch_end(self, trainer, record):
        if self.bar is not None and self.offset is not None:
            self._move(time.perf_counter() - self.offset)

    def _move(self, elapsed: float) -> None:
        if self.bar is None:
            return
        self.bar.n = min(round(elapsed), self.bar.total)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
