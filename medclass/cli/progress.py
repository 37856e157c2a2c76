"""Progress bars for the terminal (the library itself only logs)."""

from __future__ import annotations

import sys

from tqdm import tqdm

from ..training.callbacks import Callback

__all__ = ["TrainingProgress", "DownloadProgress"]


class TrainingProgress(Callback):
    """One bar over all remaining optimisation steps (so its ETA covers the whole run) plus a line per epoch."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.bar: tqdm | None = None

    def on_fit_start(self, trainer):
        per_epoch = len(trainer.train_loader)
        remaining = max(trainer.epochs - trainer.epoch, 0) * per_epoch
        self.bar = tqdm(total=remaining, unit="step", dynamic_ncols=True, disable=not self.enabled, file=sys.stderr,
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
        best = f" (best epoch {r['best_epoch']})" if r.get("best_epoch") else ""
        line = (f"epoch {r['epoch']:>3}/{trainer.epochs}  train_loss {r['train_loss']:.4f}"
                f"  val_loss {r['val_loss']:.4f}"
                + "".join(f"  {k} {v:.4f}" for k, v in r.items() if k.startswith("val_") and k not in
                          ("val_loss", "val_seconds")) + f"  {r['seconds']:.1f}s"
                f"  {r['images_per_s']:.0f} img/s{best}")
        if self.enabled and self.bar is not None:
            self.bar.write(line)
        elif self.enabled:
            print(line, file=sys.stderr)

    def on_fit_end(self, trainer):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


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
                            file=sys.stderr, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)
        if total is not None and done >= total:
            self.bar.close()


class DecodeProgress:
    """``fn(done, total)`` drawing an image-count bar with ETA; used while a manifest's files are decoded."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.bar: tqdm | None = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = tqdm(total=total, unit="img", desc="decode", file=sys.stderr, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)
        if done >= total:
            self.bar.close()
