"""``medclass auto`` (and ``medclass train --recipe auto``): choose, train and score a model within a time budget.

Given a dataset and a budget (600 s by default), :func:`auto`

1. **probes** the base configuration's speed and divides the budget (:mod:`medclass.runs.budget`);
2. **screens** the portfolio of candidate recipes (:mod:`medclass.runs.portfolio`) with asynchronous successive
   halving: every candidate is an ordinary run folder ``OUT/trials/<n>`` trained for the screening length
   (the last rung), and a callback reports its validation AUC (the task's monitor: R^2 for regression) after
   every epoch to an Optuna trial whose pruner is ``optuna.pruners.SuccessiveHalvingPruner`` (rungs r, 3r, 9r
   epochs, reduction factor 3). A trial that does not reach the top third at a rung is stopped there and
   marked *pruned* (its run folder too), as is one the budget cannot afford: projected after three batches to
   overrun its share (too slow), or reaching the screening deadline. A trial that raises is *failed*, and the
   search goes on. Then, when two or more groups had a change that beat the base, their combination is one
   more trial;
3. when the validation split is small (fewer than 200 images: BreastMNIST has 78), **ranks the finalists**
   (the best three complete trials) by K-fold cross-validation on train+val (:func:`medclass.runs.cross_validate`,
   folds of ``data.folds``), as far as the budget allows; with fewer than two finalists cross-validated the
   screening order stands, and ``auto.json`` says so;
4. **trains the winner** into ``OUT/final`` for the recipe's epochs, or as many as fit in the time left (the plan
   reserves up to 35% of the budget for it); a final that could not train longer than the screening did is the
   winning trial itself, copied;
5. optionally **ensembles the top k** (3): the final run and the next two candidates (retrained like the final
   when the budget allows, else their trials) or, where fewer candidates completed, the winner trained again
   from other seeds as far as the time left allows; kept only when the averaged validation predictions beat
   the final model's own validation score by at least 0.002;
6. **scores the test split once**, for the chosen model only (``OUT/final`` or ``OUT/ensemble``): no trial,
   fold or member is ever scored on test.

::

    OUT/
      auto.json           budget, plan and seconds used per phase, winner, ensemble evidence, the test metrics
      leaderboard.json    every candidate: settings, state, validation value per rung, final / CV score, seconds
      leaderboard.csv     the same as a table
      trials/<n>/         the screening runs (ordinary run folders; pruned ones say so in status.json)
      cv/<candidate>/     K-fold cross-validations of the finalists (small validation splits)
      final/              the final model: an ordinary run folder (medclass evaluate / report / predict OUT/final)
      members/<candidate>/  retrained ensemble members; ensemble/ when the ensemble was chosen

Every choice (pruning, ranking, final epochs, ensemble) is made on validation data; test is read once at
the end.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import RunConfig, build_config, replace, validate
from ..data.build import build_dataset
from ..data.download import ProgressFn
from ..errors import ConfigError, MedclassError, RunFolderError
from ..models import read_weights_metadata
from ..run_folder import RunFolder, read_predictions
from ..tasks import task_from_meta
from ..training import Callback
from ..utils.io import atomic_write_json, atomic_write_text
from .budget import ETA, BudgetStop, Clock, Deadline, Plan, Probe, final_epochs_for, plan_budget, probe
from .crossval import cross_validate
from .ensemble import ensemble_runs
from .environment import collect_environment, resolve_device
from .evaluate import evaluate_run
from .leaderboard import candidate_row, leaderboard_csv, metric_name
from .portfolio import Candidate, build_portfolio, candidate_config, combine, portfolio_facts, select
from .train import train
from .volumes import match_model

__all__ = ["auto", "SMALL_VAL", "CV_FOLDS"]

log = logging.getLogger(__name__)

SMALL_VAL = 200  # fewer validation images than this: rank the finalists by K-fold cross-validation
CV_FOLDS = 5
FINALISTS = 3
ENSEMBLE_K = 3
ENSEMBLE_MIN_GAIN = 0.002  # the ensemble's validation score must beat the final model's by this much
SLOW_SHARE = 0.1  # a trial whose first rung would take more of the screening time than this is too slow
OPTUNA_HINT = 'pip install "medclass[search]"'
EventFn = Callable[[str, str, float, float], None]  # (phase, message, elapsed seconds, budget seconds)


def auto(cfg: RunConfig | Mapping[str, Any], out: str | os.PathLike, budget_s: float = 600, *,
         ensemble: bool = True, candidates: Sequence[str | Candidate] | None = None, folds: int = CV_FOLDS,
         overwrite: bool = False, callbacks: Sequence[Callback] = (), on_event: EventFn | None = None,
         download_progress: ProgressFn | None = None) -> dict[str, Any]:
    """Screen candidate recipes, train the winner (or an ensemble) and score test once, within ``budget_s``.

    Args:
        cfg: the base configuration (a :class:`~medclass.config.RunConfig`), or overrides of the ``default``
            recipe (``{"data": {"dataset": "breastmnist"}}``); its ``train.epochs`` is the final training's length.
        out: the folder to create (see the module for its layout).
        budget_s: seconds for everything, from this call to the test metrics.
        ensemble: consider an ensemble of the top candidates (chosen only when validation says it helps).
        candidates: screen only these portfolio candidates (names as in the leaderboard), and any
            :class:`~medclass.runs.portfolio.Candidate` of your own given here; ``None``: the whole portfolio.
        folds: K of the K-fold ranking on small validation splits; 0 turns it off.
        overwrite: replace an existing ``out`` made by ``auto``.
        callbacks: extra training callbacks for every run (progress).
        on_event: ``fn(phase, message, elapsed, budget)`` at each step (a trial starts or ends, ...).
        download_progress: ``fn(done, total)`` while a missing MedMNIST file downloads.

    Returns:
        The dict written to ``out/auto.json``.

    Raises:
        ConfigError: bad arguments, Optuna missing, or a budget too small to train anything (the message
        gives the minimum). RunFolderError: ``out`` exists. What :func:`~medclass.runs.train` raises for
        the data.

    Example:
        >>> result = auto({"data": {"dataset": "breastmnist"}}, "runs/auto", budget_s=600)  # doctest: +SKIP
        >>> result["winner"]["candidate"], result["test"]["auc"]  # doctest: +SKIP
    """
    if isinstance(budget_s, bool) or not (isinstance(budget_s, (int, float)) and math.isfinite(budget_s)
                                          and budget_s > 0):
        raise ConfigError(f"The 'budget_s' parameter of auto must be a positive number of seconds (--budget 10m). "
                          f"Got {budget_s!r} instead.")
    clock = Clock(budget_s)
    if isinstance(folds, bool) or not isinstance(folds, int) or folds == 1 or folds < 0:
        raise ConfigError(f"The 'folds' parameter of auto must be 0 (off) or an integer >= 2. Got {folds!r} instead.")
    optuna = _import_optuna()
    base = cfg if isinstance(cfg, RunConfig) else build_config(overrides=cfg)
    validate(base)
    for bad, why in ((base.data.folds, "data.folds"), (base.data.refit, "data.refit")):
        if bad:
            raise ConfigError(f"{why} is set, but auto makes its own folds and final training. Unset {why}.")
    out = Path(out)
    _check_out(out, overwrite)
    say = _Say(on_event, clock)
    say("start", f"loading {base.data.manifest or base.data.dataset}")
    ds = build_dataset(base.data, progress=download_progress)  # a download happens here, once
    base = match_model(base, ds.spatial_dims, ds.name)  # volumes: the base is a 3D model, its candidates too
    say("probe", "timing the base configuration")
    p = probe(base)
    cands, absent = build_portfolio(base, portfolio_facts(base, p.task, ds.spatial_dims))
    cands = select(cands, candidates)
    small = bool(folds) and p.n_val < SMALL_VAL
    name = base.data.manifest or base.data.dataset
    plan = plan_budget(p, budget_s, clock.elapsed(), base.train.epochs, len(cands), small, folds, name)
    say("plan", _plan_text(plan, p, len(cands), small, folds))
    _prepare_out(out, overwrite)
    with RunFolder(out).lock("auto"):
        return _Auto(optuna, base, out, clock, p, plan, cands, absent, small, folds, ensemble, list(callbacks),
                     say).run()


class _Say:
    def __init__(self, fn: EventFn | None, clock: Clock):
        self.fn, self.clock = fn, clock

    def __call__(self, phase: str, message: str) -> None:
        log.info("[%5.0fs] %s: %s", self.clock.elapsed(), phase, message)
        if self.fn is not None:
            self.fn(phase, message, self.clock.elapsed(), self.clock.budget)


class _Auto:
    """One ``auto`` run: the phases in order, sharing what was measured."""

    def __init__(self, optuna: Any, base: RunConfig, out: Path, clock: Clock, p: Probe, plan: Plan,
                 cands: list[Candidate], absent: list[dict], small: bool, folds: int, ensemble: bool,
                 callbacks: list[Callback], say: _Say):
        self.optuna, self.base, self.out, self.clock, self.p, self.plan = optuna, base, out, clock, p, plan
        self.cands, self.absent, self.small, self.folds, self.ensemble = cands, absent, small, folds, ensemble
        self.callbacks, self.say = callbacks, say
        self.rows: dict[str, dict[str, Any]] = {}
        self.speed: dict[str, float] = {}  # measured seconds per epoch, per candidate
        self.overhead = p.overhead
        self.seconds: dict[str, float] = {"start": round(clock.elapsed(), 2)}
        self.cv_done = False
        self.metric = metric_name(p.monitor)
        self.ranking_by = f"validation {self.metric} of the checkpoint each complete trial kept"

    # --- the phases --------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        for c in self.cands:
            self.rows[c.name] = candidate_row(c)
        self._phase("screening", self._screen)
        ranked = self._ranked()
        if not ranked and self.plan.rungs:
            reasons = "; ".join(f"{r['candidate']}: {r['state']} ({r['reason']})" for r in self.rows.values())
            raise MedclassError(f"No candidate completed its screening ({reasons}). "
                                f"See {self.out / 'leaderboard.csv'}.")
        if self.small and self.plan.cv_seconds and len(ranked) >= 2:
            self._phase("cv", lambda: self._cross_validate(ranked[:FINALISTS]))
            ranked = self._ranked()
        elif self.small and self.plan.cv_seconds:
            self.ranking_by += "; only one candidate completed, so there was nothing for cross-validation to rank"
        winner = ranked[0] if ranked else self.rows[self.cands[0].name]
        final = self._phase("final", lambda: self._final(winner))
        model, evidence = self._phase("ensemble", lambda: self._ensemble(final, ranked))
        test = self._phase("test", lambda: self._score_test(model, evidence))
        return self._write(winner, final, model, evidence, test, "complete")

    def _phase(self, name: str, fn: Callable[[], Any]) -> Any:
        t = self.clock.elapsed()
        try:
            return fn()
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + self.clock.elapsed() - t, 2)
            self._write_leaderboard()

    def _screen(self) -> None:
        plan, optuna = self.plan, self.optuna
        if not plan.rungs:
            for r in self.rows.values():
                r.update(state="skipped", reason="the budget is too small to screen anything")
            self.rows[self.cands[0].name]["reason"] += f": {self.cands[0].name} is trained as the final model"
            return
        pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=plan.rung_unit, reduction_factor=ETA)
        self.study = optuna.create_study(direction="maximize", pruner=pruner,
                                         sampler=optuna.samplers.RandomSampler(seed=self.base.seed))
        for cand in self.cands:
            self._trial(cand)
        scored = [(c, self.rows[c.name]["val_score"]) for c in self.cands if self.rows[c.name]["state"] == "complete"]
        base_score = self.rows.get("base", {}).get("val_score")
        combo = combine(scored, base_score) if base_score is not None else None
        if combo is not None:
            self.cands.append(combo)
            self.rows[combo.name] = candidate_row(combo)
            self._trial(combo)

    def _trial(self, cand: Candidate) -> None:
        row, plan = self.rows[cand.name], self.plan
        rung = plan.rungs[0] * self._speed(cand)
        first = rung + self.overhead
        if self.clock.elapsed() + first > self._screen_deadline():
            row.update(state="skipped", reason=f"budget: its first rung (~{first:.0f}s) would end after the "
                                               f"screening deadline")
            self.say("trial", f"{cand.name}: skipped (budget)")
            return
        if cand.cost > 1 and self._ranked() and rung > self._slow_limit():  # known to be too slow: not started
            row.update(state="skipped", reason=f"too slow for this budget: its first rung would take ~{rung:.0f}s "
                                               f"({cand.cost:.1f} times the base's epoch; "
                                               f"{self._slow_limit():.0f}s allowed)")
            self.say("trial", f"{cand.name}: skipped (too slow)")
            return
        trial = self.study.ask()
        trial.set_user_attr("candidate", cand.name)
        folder = self.out / "trials" / str(trial.number)
        row.update(trial=trial.number, folder=str(folder.relative_to(self.out)))
        self.say("trial", f"{cand.name} (trial {trial.number}): {cand.note}")
        watch = _TrialWatch(self, trial, cand)
        t0 = self.clock.elapsed()
        state, value = "failed", None
        try:
            cfg = candidate_config(self.base, cand, epochs=plan.max_epochs)
            train(cfg, folder, callbacks=[watch, *self.callbacks])
            st = RunFolder(folder).read_status()
            value = float(st[f"best_{self.p.monitor}"])
            state, reason = "complete", f"{st.get('epochs_completed')} epochs, kept epoch {st.get('best_epoch')}"
            reason += f"; {watch.stopped}" if watch.stopped else ""
        except self.optuna.TrialPruned as e:
            state, reason = "pruned", str(e)
        except BudgetStop as e:
            state, reason = "pruned", str(e)
        except Exception as e:  # a candidate that cannot train is recorded, and the search goes on
            log.debug("trial %s failed", cand.name, exc_info=True)
            reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        seconds = self.clock.elapsed() - t0
        if watch.epoch_seconds:
            self.speed[cand.name] = float(np.mean(watch.epoch_seconds))
            self.overhead = max(0.5, seconds - sum(watch.epoch_seconds)) if state == "complete" else self.overhead
        if state == "pruned" and RunFolder(folder).is_run():
            RunFolder(folder).write_status("pruned", pruned=reason, error=None)
        history = list(watch.values.values())
        row.update(state=state, reason=reason, rungs={str(k): v for k, v in watch.values.items()
                                                      if k in plan.rungs},
                   history=history, val_score=value if state == "complete" else (history[-1] if history else None),
                   epochs=len(history), seconds=round(seconds, 2),
                   epoch_seconds=round(self.speed[cand.name], 3) if cand.name in self.speed else None)
        if state == "complete":
            self.study.tell(trial, value)
        else:
            self.study.tell(trial, state=self.optuna.trial.TrialState.PRUNED if state == "pruned"
                            else self.optuna.trial.TrialState.FAIL)
        shown = f"{self.metric} {row['val_score']:.4f}" if row["val_score"] is not None else ""
        self.say("trial", f"{cand.name}: {state} {shown} ({reason}, {seconds:.0f}s)")
        self._write_leaderboard()

    def _cross_validate(self, finalists: list[dict[str, Any]]) -> None:
        cands = {c.name: c for c in self.cands}
        frac = (self.p.n_train + self.p.n_val) / max(self.p.n_train, 1)
        for row in finalists:
            cand = cands[row["candidate"]]
            need = self.folds * (self.plan.max_epochs * self._speed(cand) * frac + self.overhead)
            if self.clock.elapsed() + need > self._final_deadline():
                row["cv_state"] = f"skipped: {self.folds}-fold CV (~{need:.0f}s) does not fit the budget"
                continue
            self.say("cv", f"{cand.name}: {self.folds}-fold cross-validation on train+val")
            guard = Deadline(self.clock, self._final_deadline)
            try:
                cv = cross_validate(candidate_config(self.base, cand, epochs=self.plan.max_epochs),
                                    self.out / "cv" / cand.name, folds=self.folds, refit=False,
                                    callbacks=[guard, *self.callbacks])
            except BudgetStop as e:
                row["cv_state"] = f"stopped: {e}"
                continue
            except Exception as e:  # noqa: BLE001 - recorded; the screening ranking stands for this one
                row["cv_state"] = f"failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                continue
            stats = cv["across_folds"].get(f"best_{self.p.monitor}", {})
            row.update(cv_score=stats.get("mean"), cv_sd=stats.get("sd"), cv_state="complete",
                       cv_folder=str(Path("cv") / cand.name))
            self.say("cv", f"{cand.name}: mean {self.metric} {row['cv_score']:.4f} over {self.folds} folds")
        done = [r for r in finalists if r.get("cv_state") == "complete"]
        self.cv_done = len(done) >= 2
        if self.cv_done:
            self.ranking_by = (f"mean validation {self.metric} over {self.folds}-fold cross-validation on "
                               f"train+val ({len(done)} finalists; the validation split has {self.p.n_val} images)")
        else:
            self.ranking_by += (f"; {self.folds}-fold cross-validation could rank only {len(done)} finalist(s) "
                                f"within the budget, so the screening order stands")

    def _final(self, winner: dict[str, Any]) -> dict[str, Any]:
        cand = next(c for c in self.cands if c.name == winner["candidate"])
        s, o, budget = self._speed(cand), self.overhead, self.clock.budget
        fits = math.floor((budget - self.plan.end_seconds - self.clock.elapsed() - o) / max(s, 1e-6))
        epochs = min(self.base.train.epochs, fits) if self.plan.rungs else max(1, min(self.plan.final_epochs, fits))
        dest = self.out / "final"
        epochs = max(epochs, 0)
        info = {"run": "final", "candidate": cand.name, "settings": cand.settings(), "planned_epochs": epochs}
        if self.plan.rungs and epochs <= self.plan.max_epochs:
            why = (f"the recipe's {self.base.train.epochs} epochs" if epochs == self.base.train.epochs else
                   f"the {epochs} epochs that fit the time left")
            return self._copy_trial(winner, dest, info, f"{why} are no more than the {self.plan.max_epochs} it "
                                                        f"trained for in screening")
        self.say("final", f"training {cand.name} for {epochs} epochs (~{epochs * s + o:.0f}s)")
        try:
            train(candidate_config(self.base, cand, epochs=epochs), dest,
                  callbacks=[Deadline(self.clock, lambda: budget - self.plan.end_seconds, soft=True),
                             *self.callbacks])
        except Exception as e:  # fall back to the winning trial rather than lose the run
            if not winner.get("folder"):
                raise
            log.warning("the final training failed (%s); the winning trial is used instead", e)
            shutil.rmtree(dest, ignore_errors=True)
            return self._copy_trial(winner, dest, info, f"the final training failed: {type(e).__name__}: {e}")
        st = RunFolder(dest).read_status()
        return {**info, "retrained": True, "epochs": st.get("epochs_completed"), "best_epoch": st.get("best_epoch"),
                "stopped_early": bool(st.get("stopped_early")), "val_score": st.get(f"best_{self.p.monitor}"),
                "seconds": st.get("wall_seconds")}

    def _copy_trial(self, winner: dict[str, Any], dest: Path, info: dict[str, Any], why: str) -> dict[str, Any]:
        src = self.out / winner["folder"]
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".lock", "*.tmp"))
        st = RunFolder(dest).read_status()
        self.say("final", f"the winning trial {winner['folder']} is the final model ({why})")
        return {**info, "retrained": False, "source": winner["folder"], "reason": why,
                "epochs": st.get("epochs_completed"), "best_epoch": st.get("best_epoch"),
                "val_score": st.get(f"best_{self.p.monitor}"), "seconds": 0.0}

    def _ensemble(self, final: dict[str, Any], ranked: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        evidence: dict[str, Any] = {"considered": False, "chosen": False, "k": ENSEMBLE_K,
                                    "min_gain": ENSEMBLE_MIN_GAIN}
        if not self.ensemble:
            evidence["reason"] = "turned off (--no-ensemble)"
            return "final", evidence
        members = [self.out / "final"]
        epochs = final.get("epochs") or 0
        for r in (r for r in ranked[1:ENSEMBLE_K] if r.get("folder")):
            cand = next(c for c in self.cands if c.name == r["candidate"])
            dest = self.out / "members" / cand.name
            if (final.get("retrained") and self._fits(epochs * self._speed(cand) + self.overhead)
                    and self._train_member(candidate_config(self.base, cand, epochs=epochs), dest,
                                           f"{cand.name} for {epochs} epochs")):
                members.append(dest)
            else:
                members.append(self.out / r["folder"])  # its trial stands in for it
        members += self._seed_members(final, ENSEMBLE_K - len(members), epochs)
        if len(members) < 2:
            evidence["reason"] = ("fewer than two candidates completed, and the time left cannot train the winner "
                                  "again with another seed")
            return "final", evidence
        rel = [str(m.relative_to(self.out)) for m in members]
        try:
            single, combined = _val_scores(members)
        except (MedclassError, ValueError) as e:
            evidence.update(considered=True, members=rel, reason=f"not comparable on validation: {e}")
            return "final", evidence
        chosen = combined >= single + ENSEMBLE_MIN_GAIN
        evidence.update(considered=True, chosen=bool(chosen), members=rel, val_score_final=single,
                        val_score_ensemble=combined, reason=(
                            f"validation {self.metric}: ensemble {combined:.4f}, final model {single:.4f}; "
                            f"{'kept' if chosen else 'not kept'} (it must gain at least {ENSEMBLE_MIN_GAIN})"))
        self.say("ensemble", evidence["reason"])
        return ("ensemble" if chosen else "final"), evidence

    def _seed_members(self, final: dict[str, Any], wanted: int, epochs: int) -> list[Path]:
        """Fill the ensemble with the winner trained again from other seeds, while the budget allows: when
        successive halving left fewer than k complete candidates, the time left would otherwise go unused
        (a seed ensemble of the default recipe gained on validation and test: benchmarks/results/ensembles.md)."""
        winner = next(c for c in self.cands if c.name == final["candidate"])
        epochs = max(epochs, 1)
        out: list[Path] = []
        for seed in range(self.base.seed + 1, self.base.seed + wanted + 1):
            dest = self.out / "members" / f"{winner.name}-seed{seed}"
            cfg = replace(candidate_config(self.base, winner, epochs=epochs), seed=seed)
            if not (self._fits(epochs * self._speed(winner) + self.overhead)
                    and self._train_member(cfg, dest, f"{winner.name} with seed {seed} for {epochs} epochs")):
                break
            out.append(dest)
        return out

    def _fits(self, seconds: float) -> bool:
        """Whether ``seconds`` more of training still leave time for the test scoring and the margin."""
        return self.clock.elapsed() + seconds + self.plan.end_seconds <= self.clock.budget

    def _train_member(self, cfg: RunConfig, dest: Path, what: str) -> bool:
        """Train one ensemble member into ``dest`` (cut short softly at the budget); on failure remove the
        folder and say so. The ensemble is only an option: a failure never ends the run."""
        self.say("ensemble", f"training member {what}")
        try:
            train(cfg, dest, callbacks=[Deadline(self.clock, lambda: self.clock.budget - self.plan.end_seconds,
                                                 soft=True), *self.callbacks])
        except Exception as e:  # noqa: BLE001 - recorded; the caller falls back
            log.warning("ensemble member %s failed (%s)", dest.name, e)
            shutil.rmtree(dest, ignore_errors=True)
            return False
        return True

    def _score_test(self, model: str, evidence: dict[str, Any]) -> dict[str, Any]:
        self.say("test", f"scoring the test split once, for {model}")
        if model == "ensemble":
            m = ensemble_runs([self.out / x for x in evidence["members"]], "test", out=self.out / "ensemble")
        else:
            m = evaluate_run(self.out / "final", "test")
        keys = [k for k in ("auc", "acc", "r2", "mae", "quadratic_weighted_kappa") if k in m]
        return {"model": model, "folder": model, "n": m.get("n"), **{k: m[k] for k in keys},
                "intervals": {k: m["intervals"][k] for k in keys if k in m.get("intervals", {})},
                "scored": "once, at the end, for the chosen model only"}

    # --- budget --------------------------------------------------------------------------------

    def _speed(self, cand: Candidate) -> float:
        """Seconds per epoch: measured for this candidate, else the base's (measured, or probed) times the
        candidate's known relative cost (another input size)."""
        return self.speed.get(cand.name) or (self.speed.get("base") or self.p.epoch_seconds) * cand.cost

    def _slow_limit(self) -> float:
        """The longest first rung a trial may take once another is complete: a share of the screening time, or
        what the base's first rung takes when that is more."""
        base = self.speed.get("base") or self.p.epoch_seconds
        return max(SLOW_SHARE * self.plan.screen_seconds, self.plan.rungs[0] * base)

    def _leader(self) -> dict[str, Any] | None:
        done = self._ranked()
        return done[0] if done else None

    def _final_reserve(self) -> float:
        lead = self._leader()
        s = self.speed.get(lead["candidate"]) if lead else None
        s = s or self.speed.get("base") or self.p.epoch_seconds
        epochs = final_epochs_for(s, self.overhead, self.clock.budget, self.base.train.epochs)
        return 0.0 if epochs <= self.plan.max_epochs else epochs * s + self.overhead

    def _final_deadline(self) -> float:
        return self.clock.budget - self.plan.end_seconds - self._final_reserve()

    def _screen_deadline(self) -> float:
        """Screening ends in time for the final training and, once two candidates are complete (something to
        rank), the K-fold ranking."""
        cv = self.plan.cv_seconds if self.small and len(self._ranked()) >= 2 else 0.0
        return self._final_deadline() - cv

    def _ranked(self) -> list[dict[str, Any]]:
        done = [r for r in self.rows.values() if r["state"] == "complete" and r["val_score"] is not None]
        order = {c.name: i for i, c in enumerate(self.cands)}
        if self.cv_done:
            return sorted(done, key=lambda r: (r.get("cv_score") is None, -(r.get("cv_score") or 0.0),
                                               -r["val_score"], order[r["candidate"]]))
        return sorted(done, key=lambda r: (-r["val_score"], order[r["candidate"]]))

    # --- files ---------------------------------------------------------------------------------

    def _write_leaderboard(self) -> None:
        ranked = {r["candidate"]: i + 1 for i, r in enumerate(self._ranked())}
        rows = [{"rank": ranked.get(r["candidate"]), **r} for r in self.rows.values()]
        rows.sort(key=lambda r: (r["rank"] is None, r["rank"] or 0))
        atomic_write_json(self.out / "leaderboard.json", {
            "monitor": self.p.monitor, "rungs": list(self.plan.rungs), "eta": ETA, "ranking_by": self.ranking_by,
            "rows": rows, "absent": self.absent})
        atomic_write_text(self.out / "leaderboard.csv", leaderboard_csv(rows, self.plan.rungs))

    def _write(self, winner: dict, final: dict, model: str, evidence: dict, test: dict, state: str) -> dict[str, Any]:
        used = self.clock.elapsed()
        env = collect_environment(resolve_device(self.base.train.device), self.base.seed)
        counts = {s: sum(r["state"] == s for r in self.rows.values()) for s in ("complete", "pruned", "failed",
                                                                              "skipped")}
        result = {
            "state": state, "dataset": self.base.data.manifest or self.base.data.dataset, "task": self.p.task,
            "monitor": self.p.monitor, "seed": self.base.seed,
            "budget_seconds": self.clock.budget, "used_seconds": round(used, 2),
            "used_fraction": round(used / self.clock.budget, 3),
            "planned": self.plan.to_dict(), "seconds": {**self.seconds, "total": round(used, 2)},
            "probe": {"epoch_seconds": round(self.p.epoch_seconds, 3), "overhead": round(self.p.overhead, 3),
                      "n_train": self.p.n_train, "n_val": self.p.n_val},
            "screening": {"candidates": len(self.rows), **counts, "rungs": list(self.plan.rungs), "eta": ETA,
                          "pruner": f"optuna.pruners.SuccessiveHalvingPruner(min_resource={self.plan.rung_unit}, "
                                    f"reduction_factor={ETA})", "absent": self.absent},
            "ranking": {"by": self.ranking_by, "small_validation": self.small, "cv_folds": self.folds,
                        "cross_validated": self.cv_done},
            "winner": {k: winner.get(k) for k in ("candidate", "group", "note", "settings", "val_score", "cv_score")},
            "final": final, "final_run": "final", "ensemble": evidence, "model": model, "test": test,
            "machine": {"cpu": env.get("cpu"), "cpu_count": env.get("cpu_count"),
                        "torch_threads": env.get("torch_threads")},
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        atomic_write_json(self.out / "auto.json", result)
        self._write_leaderboard()
        return result


class _TrialWatch(Callback):
    """Report the monitor each epoch to the Optuna trial; prune; stop a trial the budget cannot afford."""

    def __init__(self, run: _Auto, trial: Any, cand: Candidate):
        self.run, self.trial, self.cand = run, trial, cand
        self.values: dict[int, float] = {}
        self.epoch_seconds: list[float] = []  # wall time per epoch, checkpoints and callbacks included
        self.t_batch = self.t_epoch = 0.0
        self.stopped = ""  # why the first trial ended early (budget), if it did

    def on_fit_start(self, trainer):
        self.t_epoch = time.perf_counter()

    def on_batch_end(self, trainer, batch, loss):
        run = self.run
        if trainer.epoch == 0 and batch == 0:
            self.t_batch = time.perf_counter()  # the first batch warms up: timed from its end
        if trainer.epoch == 0 and batch == 3 and len(trainer.train_loader) >= 8:
            per_batch = (time.perf_counter() - self.t_batch) / 3
            first = per_batch * len(trainer.train_loader) * run.plan.rungs[0]
            allowed = run._slow_limit()
            if run._ranked() and (first > allowed or run.clock.elapsed() + first > run._screen_deadline()):
                raise BudgetStop(f"too slow for this budget: its first rung would take ~{first:.0f}s "
                                 f"(projected after 3 batches; {allowed:.0f}s allowed)")
        if run.clock.elapsed() > run._screen_deadline() and run._ranked():
            raise BudgetStop("budget: the screening deadline passed")

    def on_epoch_end(self, trainer, record):
        epoch, run = int(record["epoch"]), self.run
        value = float(record[run.p.monitor])
        self.values[epoch] = value
        now = time.perf_counter()
        self.epoch_seconds.append(now - self.t_epoch)
        self.t_epoch = now
        if epoch >= run.plan.max_epochs:
            return
        self.trial.report(value, step=epoch)
        if self.trial.should_prune():
            raise run.optuna.TrialPruned(f"pruned at epoch {epoch}: {run.metric} {value:.4f} not in the top "
                                         f"1/{ETA} at this rung")
        if run.clock.elapsed() + self.epoch_seconds[-1] > run._screen_deadline():
            if not run._ranked():  # without one complete trial there is nothing to train: end this one here
                self.stopped = f"stopped after epoch {epoch} of {run.plan.max_epochs} (budget)"
                trainer.should_stop = True
                return
            raise BudgetStop(f"budget: stopped after epoch {epoch}, the next would end after the screening deadline")


def _val_scores(members: list[Path]) -> tuple[float, float]:
    """The task's validation monitor of the first member alone and of the members' averaged probabilities."""
    meta = read_weights_metadata(RunFolder(members[0]).best_weights)
    task = task_from_meta(meta)
    ys, ps = [], []
    for m in members:
        y, p, _ = read_predictions(RunFolder(m).predictions("val"), values=task.regression)
        ys.append(y)
        ps.append(p)
    if any(y.shape != ys[0].shape or not np.array_equal(y, ys[0]) for y in ys[1:]):
        raise ValueError("the members' validation labels differ")
    one = task.validation_metrics(ys[0], ps[0])[task.monitor]
    mean = task.validation_metrics(ys[0], np.mean(ps, axis=0))[task.monitor]
    return float(one), float(mean)


def _plan_text(plan: Plan, p: Probe, n: int, small: bool, folds: int) -> str:
    if not plan.rungs:
        return (f"~{p.epoch_seconds:.1f}s per epoch: too little time to screen; the base configuration trains for "
                f"{plan.final_epochs} epochs")
    cv = f", {folds}-fold ranking ~{plan.cv_seconds:.0f}s" if small else ""
    return (f"~{p.epoch_seconds:.1f}s per epoch; {n} candidates, rungs at {', '.join(map(str, plan.rungs))} epochs "
            f"(~{plan.screen_seconds:.0f}s){cv}, final {plan.final_epochs} epochs (~{plan.final_seconds:.0f}s), "
            f"test and margin ~{plan.end_seconds:.0f}s")


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError(f"medclass auto needs Optuna (its successive-halving pruner), which is not installed. "
                          f"Install it with: {OPTUNA_HINT}") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuse an existing folder (unless ``overwrite`` and it was made by auto) before any data is loaded."""
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"Output path '{out}' exists and is a file, not a folder. Choose another --out.")
    entries = [e for e in out.iterdir() if e.name != ".lock"] if out.is_dir() else []
    if entries and not overwrite:
        raise RunFolderError(f"Folder '{out}' already exists. Choose another --out, or pass --overwrite to replace "
                             f"an earlier auto run there.")
    if entries and not any((out / n).exists() for n in ("auto.json", "leaderboard.json", "trials")):
        raise RunFolderError(f"Refusing to overwrite '{out}': it is not empty and was not made by medclass auto "
                             f"(no auto.json, leaderboard.json or trials/). Choose another --out.")


def _prepare_out(out: Path, overwrite: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if overwrite:
        with RunFolder(out).lock("auto --overwrite"):
            for e in out.iterdir():
                if e.name != ".lock":
                    shutil.rmtree(e) if e.is_dir() and not e.is_symlink() else e.unlink()
