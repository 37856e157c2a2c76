"""``medclass auto`` (also ``medclass train --recipe auto``): choose, train and score a model within a time budget."""

from __future__ import annotations

import argparse
import logging
import math
import re
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..utils.io import read_json
from .options import config_from_args, config_parent
from .tables import simple_table

__all__ = ["add_parser", "add_auto_options", "parse_budget", "run", "DEFAULT_BUDGET"]

DEFAULT_BUDGET = "10m"

_EPILOG = """\
what it does: times the base configuration, then screens candidate recipes (widths 16/32/64 of ResNet-9, ResNet-18,
timm EfficientNet-B0 and ConvNeXt-Atto when fast enough, light/medium augmentation with mirrors only for
orientation-free images, label smoothing, class weights, learning rate x2 and x0.5, cosine schedule, 64 px when
that file is on this machine, ImageNet weights only when already cached) by successive halving on validation
(Optuna's SuccessiveHalvingPruner, rungs r, 3r, 9r epochs); ranks the finalists by 5-fold cross-validation on
train+val when the validation split is small (< 200 images); trains the winner into OUT/final; keeps an ensemble
of the top 3 only when validation says it helps (OUT/ensemble); scores the test split once, for that model only.

budget: seconds (600), or with a unit: 90s, 10m, 1h, 1h30m. It covers everything from loading the data to the test
metrics; auto.json records the plan and the seconds used per phase.

files: OUT/leaderboard.csv and .json (every candidate, its state: complete, pruned, failed or skipped, and its
validation value per rung), OUT/auto.json (budget, winner, ensemble evidence, test metrics), OUT/trials/<n>/ (run
folders). Then: medclass report OUT/final."""


def parse_budget(text: str) -> float:
    """``"90s"``, ``"10m"``, ``"1h"``, ``"1h30m"`` or plain seconds (``"600"``) -> seconds."""
    s = str(text).strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", s):
        seconds = float(s)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s)", s)
        if not parts or "".join(n + u for n, u in parts) != s:
            raise argparse.ArgumentTypeError(f"invalid budget {text!r}: give seconds (600) or a duration with a "
                                             f"unit: 90s, 10m, 1h, 1h30m")
        seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"invalid budget {text!r}: it must be more than 0 seconds")
    return seconds


def add_auto_options(p: argparse.ArgumentParser, *, for_train: bool = False) -> None:
    """``--budget``, ``--no-ensemble``, ``--candidates``, ``--folds``: shared by ``auto`` and
    ``train --recipe auto``."""
    g = p.add_argument_group("auto" + (" (with --recipe auto)" if for_train else ""))
    g.add_argument("--budget", type=parse_budget, default=None, metavar="DURATION",
                   help=f"time for everything, e.g. 90s, 10m, 1h (default {DEFAULT_BUDGET})")
    g.add_argument("--no-ensemble", action="store_true", help="never ensemble the top candidates")
    g.add_argument("--candidates", type=_names, metavar="A,B,...",
                   help="screen only these candidates (names as in the leaderboard; --print-config lists them)")
    g.add_argument("--folds", type=int, default=None,
                   help="K of the K-fold ranking when the validation split is small (default 5; 0: off)")


def add_parser(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("auto", help="screen candidate recipes within a time budget, train the winner, score test "
                                    "once", parents=[parent, config_parent()],
                       description="Choose a model for a dataset within a time budget: successive halving over "
                                   "candidate recipes on validation, the winner trained, the test split scored once. "
                                   "The base configuration resolves as for `medclass train`; candidates change it "
                                   "one knob at a time.",
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_auto_options(p)
    p.add_argument("--out", metavar="DIR", help="folder to create (final/, trials/, leaderboard.csv, auto.json)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier auto folder at --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar or event lines")
    p.add_argument("--print-config", action="store_true",
                   help="print what auto would do (base configuration and candidates) and exit")
    p.set_defaults(run=run)


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("--candidates needs at least one name, e.g. base,resnet9-w32")
    return names


def run(args: argparse.Namespace) -> int:
    """``medclass auto`` and ``medclass train --recipe auto``."""
    from ..runs.auto import auto  # imported when the command runs (PyTorch, Optuna)
    from .progress import BudgetProgress, DownloadProgress

    budget = args.budget if args.budget is not None else parse_budget(DEFAULT_BUDGET)
    folds = 5 if args.folds is None else args.folds
    if args.recipe == "auto":
        args.recipe = None  # the base configuration starts from the default recipe
    printing, args.print_config = getattr(args, "print_config", False), False
    cfg = config_from_args(args)
    if printing:
        print(describe(cfg, budget, folds, args.candidates, not args.no_ensemble), end="")
        return 0
    if not args.out:
        raise ConfigError("medclass auto needs --out DIR (the folder to create).")
    args.interrupt_hint = (f"Finished trials are in {args.out}/trials and {args.out}/leaderboard.csv; start again "
                           f"with --overwrite (auto does not resume).")
    progress = BudgetProgress(budget, enabled=not args.quiet)
    once = _Once()  # every trial loads the data: its warnings (e.g. MedMNIST's shared images) are said once
    handlers = logging.getLogger().handlers
    for h in handlers:
        h.addFilter(once)
    try:
        result = auto(cfg, args.out, budget, ensemble=not args.no_ensemble, candidates=args.candidates, folds=folds,
                      overwrite=args.overwrite, callbacks=[progress], on_event=progress,
                      download_progress=DownloadProgress(enabled=not args.quiet))
    finally:
        progress.close()
        for h in handlers:
            h.removeFilter(once)
    print(summary(result, args.out, read_json(Path(args.out) / "leaderboard.json")))
    return 0


class _Once(logging.Filter):
    """Lets each distinct log message through once."""

    def __init__(self):
        super().__init__()
        self.seen: set[tuple[str, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.getMessage())
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def describe(cfg: Any, budget: float, folds: int, names: list[str] | None, ensemble: bool) -> str:
    """``--print-config`` of auto: what it will do, the candidates, then the base configuration as YAML."""
    import yaml

    from ..config import config_to_dict
    from ..data.medmnist import MEDMNIST
    from ..runs.portfolio import build_portfolio, portfolio_facts, select
    from ..runs.volumes import match_model

    info = MEDMNIST.get(cfg.data.dataset) if cfg.data.manifest is None else None
    task = cfg.data.task or (info.task if info else "binary")
    dims = 3 if (info.spatial_dims == 3 if info else cfg.data.volumes) else 2  # a .npz path: read when auto runs
    cfg = match_model(cfg, dims, cfg.data.manifest or cfg.data.dataset)
    facts = portfolio_facts(cfg, task, dims)
    cands, absent = build_portfolio(cfg, facts)
    cands = select(cands, names)
    ens = "ensemble the top 3 if validation says it helps, " if ensemble else ""
    lines = [(f"# recipe auto: screen {len(cands)} candidate recipes within {budget:g}s by successive halving on "
              "validation (rungs r, 3r, 9r epochs,"),
             (f"# r from the budget), rank the finalists by {folds}-fold CV on train+val when the validation split "
              "has < 200 images, train the winner"),
             f"# for train.epochs (as many as fit), {ens}and score the test split once.",
             f"# mirrors: {'yes' if facts.mirror else 'no'} (modality: {facts.modality or 'unknown'})",
             "# candidates (changes from the base configuration below):"]
    lines += [f"#   {c.name:<22} {c.note}" for c in cands]
    lines += [f"#   (absent) {a['name']}: {a['reason']}" for a in absent]
    lines.append("# base configuration:")
    return "\n".join(lines) + "\n" + yaml.safe_dump(config_to_dict(cfg), sort_keys=False)


def summary(r: dict[str, Any], out: str, board: dict[str, Any] | None = None) -> str:
    """What auto prints at the end: the leaderboard, the decision, the test metrics, the time used."""
    lines = []
    if board:
        rungs = board["rungs"]
        rows = [[r_.get("rank") or "", r_["candidate"], r_["state"],
                 *[_cell(r_["rungs"].get(str(k))) for k in rungs], _cell(r_["val_score"]), _cell(r_.get("cv_score")),
                 r_["epochs"], f"{r_['seconds']:.0f}"] for r_ in board["rows"]]
        lines += [simple_table(["rank", "candidate", "state", *[f"val@{k}" for k in rungs], "val", "cv", "epochs",
                                "s"], rows), ""]
    sc = r["screening"]
    lines += [(f"budget {r['budget_seconds']:.0f}s, used {r['used_seconds']:.0f}s ({r['used_fraction']:.0%}); "
               f"screened {sc['candidates']}: {sc['complete']} complete, {sc['pruned']} pruned, {sc['failed']} "
               f"failed, {sc['skipped']} skipped"),
             f"ranked by {r['ranking']['by']}",
             f"winner: {r['winner']['candidate']} ({r['winner']['note']})"]
    f = r["final"]
    lines.append(f"final: {out}/final, {f.get('epochs')} epochs" + ("" if f.get("retrained") else
                                                                     f" (the winning trial {f.get('source')})"))
    lines.append(f"ensemble: {r['ensemble'].get('reason', '')}")
    t = r["test"]
    shown = ", ".join(f"{k} {t[k]:.4f}" + (f" [{t['intervals'][k]['low']:.3f}, {t['intervals'][k]['high']:.3f}]"
                                           if k in t.get("intervals", {}) else "")
                      for k in ("auc", "acc", "r2", "mae") if k in t)
    lines.append(f"test (scored once, {t['model']}): {shown}")
    lines.append(f"leaderboard: {out}/leaderboard.csv")
    lines.append(f"next: medclass report {out}/final" + (" --split val   (the test split was scored for the ensemble "
                                                          f"in {out}/ensemble)" if r["model"] == "ensemble" else ""))
    return "\n".join(lines)


def _cell(v: Any) -> str:
    return "" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)
