"""``medclass compare``: paired bootstrap differences and DeLong's test between two runs."""

from __future__ import annotations

import argparse

from ..utils.io import atomic_write_json


def add_parser(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("compare", help="compare two scored runs on the same split (paired bootstrap, DeLong)",
                       parents=[parent],
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")
    p.add_argument("--split", default="test", choices=("val", "test"))
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap replicates")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--out", metavar="FILE.json", help="also write the comparison as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluation.assess import AssessConfig  # imported when the command runs
    from ..runs.compare import compare_runs
    from .tables import simple_table

    r = compare_runs(args.run_a, args.run_b, args.split, AssessConfig(n_boot=args.n_boot, seed=args.seed))
    rows = [[k, d["a"], d["b"], d["estimate"], f"[{d['low']:.4f}, {d['high']:.4f}]"]
            for k, d in r["difference"].items()]
    print(f"{r['dataset']} / {r['split']} (n={r['n']}): A = {r['a']}, B = {r['b']}")
    print(simple_table(["metric", "A", "B", "A - B", "95% interval (paired bootstrap)"], rows))
    if "delong" in r:
        d = r["delong"]
        print(f"DeLong's test of AUC(A) = AUC(B): difference {d['difference']:.4f} (SE {d['se']:.4f}), "
              f"z = {d['z']:.2f}, p = {d['p_value']:.4g}")
    if args.out:
        atomic_write_json(args.out, r)
        print(f"wrote {args.out}")
    return 0
