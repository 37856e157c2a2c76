"""The report's *model selection* section, for a run that ``medclass auto`` chose and trained.

It reads the auto folder's files only: the run's parent holds ``auto.json`` naming this run as its final model
(``final_run``), and ``leaderboard.json`` beside it lists every candidate. Any other run has no such section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..utils.io import read_json
from ._render import num

__all__ = ["auto_selection"]

_PHASES = (("start", "loading the data and timing it"), ("screening", "screening (successive halving)"),
           ("cv", "K-fold ranking of the finalists"), ("final", "final training"),
           ("ensemble", "ensemble members and the decision"), ("test", "scoring the test split once"))


def auto_selection(run_dir: str | Path) -> dict[str, Any] | None:
    """The section's content when ``run_dir`` is the final model of a ``medclass auto`` folder, else ``None``."""
    run = Path(run_dir).resolve()
    path = run.parent / "auto.json"
    if not path.is_file():
        return None
    a = read_json(path)
    if (run.parent / a.get("final_run", "final")).resolve() != run:
        return None
    board_path = run.parent / "leaderboard.json"
    board = read_json(board_path) if board_path.is_file() else {"rows": [], "rungs": [], "absent": []}
    monitor = a.get("monitor", "val_auc").removeprefix("val_")
    rungs = board.get("rungs", [])
    rows = [{"rank": r.get("rank") or "", "candidate": r["candidate"], "note": r.get("note", ""),
             "state": r["state"], "reason": r.get("reason", ""),
             "rungs": [num(r.get("rungs", {}).get(str(k))) if str(k) in r.get("rungs", {}) else "" for k in rungs],
             "val": num(r.get("val_score")) if r.get("val_score") is not None else "",
             "cv": (f"{num(r['cv_score'])} ± {num(r.get('cv_sd'))}" if r.get("cv_score") is not None
                    else r.get("cv_state") or ""),
             "epochs": r.get("epochs", 0), "seconds": f"{r.get('seconds') or 0:.0f}",
             "winner": r["candidate"] == a["winner"]["candidate"]} for r in board.get("rows", [])]
    final, ens, test = a["final"], a["ensemble"], a["test"]
    planned = a.get("planned", {})
    plan = {"start": planned.get("spent_before"), "screening": planned.get("screen_seconds"),
            "cv": planned.get("cv_seconds"), "final": planned.get("final_seconds"), "test": planned.get("end_seconds")}
    times = [{"phase": label, "planned": f"{plan[k]:.0f}" if plan.get(k) is not None else "",
              "used": f"{a['seconds'].get(k, 0.0):.0f}"} for k, label in _PHASES if k in a["seconds"]]
    counts = a["screening"]
    return {
        "budget": f"{a['budget_seconds']:.0f}", "used": f"{a['used_seconds']:.0f}",
        "fraction": f"{a['used_fraction']:.0%}", "machine": a.get("machine", {}).get("cpu") or "this machine",
        "n": counts["candidates"], "complete": counts["complete"], "pruned": counts["pruned"],
        "failed": counts["failed"], "skipped": counts["skipped"],
        "rung_list": ", ".join(map(str, rungs)) or "none (the budget allowed no screening)",
        "ranking": a["ranking"]["by"], "monitor": monitor,
        "winner": a["winner"]["candidate"], "winner_note": a["winner"].get("note", ""),
        "final": (f"trained for {final.get('epochs')} epochs" + (" (stopped early to stay within the budget)"
                                                                  if final.get("stopped_early") else "")
                  if final.get("retrained") else f"the winning trial itself ({final.get('reason', '')})"),
        "ensemble": ens.get("reason", ""), "ensemble_chosen": bool(ens.get("chosen")),
        "model": a["model"], "test_n": test.get("n"), "times": times, "rows": rows,
        "rung_headers": [f"{monitor} @ {k}" for k in rungs], "absent": board.get("absent", []),
    }
