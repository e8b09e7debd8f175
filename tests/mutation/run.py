"""Re-run a small mutation sample of the allocator models (see README.md in this folder).

    .venv/bin/python tests/mutation/run.py              # every mutant
    .venv/bin/python tests/mutation/run.py --list       # their names
    .venv/bin/python tests/mutation/run.py both-sheaf-leak crash-capacity   # some of them

Each mutant is a set of text edits. The script copies lib/, data/, tests/ and pyproject.toml to a temporary
folder once, applies one mutant there, runs the mutant's tests with pytest (numba bounds checking on, as
tests/conftest.py sets it), reverts, and prints for each mutant whether it was caught, the exit status, and
the tests that failed. Kinds:

* ``one-side``: the numba model (or an oracle) alone is changed — the differential tests should see it;
* ``both-side``: the model and its oracle are changed identically — only tests that are not differential
  (hand-computed totals, the invariants of ``slub.audit``) can see it;
* ``crash``: an out-of-range write in a model — it must fail cleanly (exit status 1, an AllocsimError
  naming the model state), not abort or segfault (a negative exit status).

Not collected by pytest (the file name does not start with ``test_``) and not run in CI: a run compiles the
models once per mutant and takes several minutes.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
K = "lib/allocsim/kernel/"
SLUB_TESTS = ("tests/test_hand_totals.py", "tests/test_slab_pages.py", "tests/test_cpu_slab.py",
              "tests/test_sheaves.py", "tests/test_slub.py")
PCPU_TESTS = ("tests/test_pcpu_list.py",)
#: A failed test counts as differential (it compares a model with its oracle) when its name says so; a
#: both-side mutant must make some other test fail: a hand-computed total, a hand trace or an invariant.
DIFFERENTIAL = re.compile(r"reference|oracle|numba_matches|match_the")


@dataclass(frozen=True)
class Mutant:
    name: str
    kind: str                   # one-side | both-side | crash
    what: str
    edits: tuple                # (path, old text, new text)
    tests: tuple


SHEAF_LEAK_MODEL = (K + "sheaves.py", "        t = barn_put_empty_sheaf(I, F, node, main, cpu, t)\n    I[p + PCS_MAIN] = empty",
                    "        pass\n    I[p + PCS_MAIN] = empty")
SHEAF_LEAK_ORACLE = (K + "oracle/sheaves.py", "        t = barn_put_empty_sheaf(m, node, p.main, cpu, t)\n    p.main = empty",
                     "        pass\n    p.main = empty")
BARN_RACY_MODEL = (K + "barn.py", "    b = bnb(I, node)\n    t += F[C_L1]\n    if I[b + B_NR_EMPTY] == 0:",
                   "    b = bnb(I, node)\n    if I[b + B_NR_EMPTY] == 0:")
BARN_RACY_ORACLE = (K + "oracle/sheaves.py", "def barn_get_empty_sheaf(m, node, cpu, t):\n    t += m.c[\"l1_hit\"]\n",
                    "def barn_get_empty_sheaf(m, node, cpu, t):\n")
STOP_MODEL = (K + "cpu_slab.py", "if partial_slabs > I[CFG + CF_CPU_PARTIAL_SLABS] // 2:",
              "if partial_slabs >= I[CFG + CF_CPU_PARTIAL_SLABS] // 2:")
STOP_ORACLE = (K + "oracle/cpu_slab.py", "if moved > m.cpu_partial_slabs // 2:", "if moved >= m.cpu_partial_slabs // 2:")

MUTANTS = (
    Mutant("one-sheaf-leak", "one-side", "6.19 refill: the replaced empty main never goes back to the barn (model)",
           (SHEAF_LEAK_MODEL,), SLUB_TESTS),
    Mutant("one-barn-racy-cost", "one-side", "barn_get_empty_sheaf(): the racy pre-check's l1_hit dropped (model)",
           (BARN_RACY_MODEL,), SLUB_TESTS),
    Mutant("one-partial-stop", "one-side", "get_partial_node(): stop threshold > becomes >= (model)",
           (STOP_MODEL,), SLUB_TESTS),
    Mutant("one-min-partial", "one-side", "7.0 __slab_free(): discard when nr_partial > min_partial, not >= (model)",
           ((K + "slab_pages.py", "if new_inuse == 0 and I[ndb(I, node) + ND_NR_PARTIAL] >= I[CFG + CF_MIN_PARTIAL]:",
             "if new_inuse == 0 and I[ndb(I, node) + ND_NR_PARTIAL] > I[CFG + CF_MIN_PARTIAL]:"),), SLUB_TESTS),
    Mutant("one-oracle-irq-stream", "one-side", "the oracle's interrupt draws from another seeded stream (oracle)",
           ((K + "oracle/slub.py", "default_rng([int(seed), 0x5EAF])", "default_rng([int(seed), 0x5EAE])"),),
           ("tests/test_sheaves.py", "tests/test_slub.py")),
    Mutant("both-sheaf-leak", "both-side", "(a) the empty main never goes back to the barn after a refill",
           (SHEAF_LEAK_MODEL, SHEAF_LEAK_ORACLE), SLUB_TESTS),
    Mutant("both-barn-racy-cost", "both-side", "(b) the barn's racy pre-check costs nothing",
           (BARN_RACY_MODEL, BARN_RACY_ORACLE), SLUB_TESTS),
    Mutant("both-partial-stop", "both-side", "(c) get_partial_node()'s stop threshold > becomes >=",
           (STOP_MODEL, STOP_ORACLE), SLUB_TESTS),
    Mutant("both-pcpu-splice-cost", "both-side", "the per-CPU list's splice without local_irq_save's cost",
           ((K + "pcpu_list.py", '"alloc_splice": (("preempt_pair", 1), ("l1_hit", 2), ("irq_save_restore", 1)),',
             '"alloc_splice": (("preempt_pair", 1), ("l1_hit", 2)),'),
            (K + "oracle/pcpu_list.py", '"alloc_splice": call + c["l1_hit"] + c["irq_save_restore"],',
             '"alloc_splice": call + c["l1_hit"],')), PCPU_TESTS),
    Mutant("crash-capacity", "crash", "pcpu_list free: the capacity test off by one (nr + nr_irq > max_nr)",
           ((K + "pcpu_list.py", "if nr_irq[cpu] + nr[cpu] >= max_nr:", "if nr_irq[cpu] + nr[cpu] > max_nr:"),),
           PCPU_TESTS),
    Mutant("crash-wrong-cpu", "crash", "pcpu_list free: pushed on the next CPU's list",
           ((K + "pcpu_list.py", "task[cpu, nr[cpu]] = e", "task[cpu + 1, nr[cpu]] = e"),), PCPU_TESTS),
)


def copy_repo(dst: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc", ".pytest_cache", ".hypothesis")
    for name in ("lib", "data", "tests"):
        shutil.copytree(ROOT / name, dst / name, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", dst / "pyproject.toml")


def apply(tree: Path, edits) -> list:
    saved = []
    for path, old, new in edits:
        f = tree / path
        text = f.read_text()
        if text.count(old) != 1:
            raise SystemExit(f"mutation/run.py: {path} does not contain the text to mutate exactly once: {old!r}")
        saved.append((f, text))
        f.write_text(text.replace(old, new))
    return saved


def run_one(tree: Path, m: Mutant, timeout: int) -> dict:
    saved = apply(tree, m.edits)
    env = dict(os.environ, PYTHONPATH=str(tree / "lib"), ALLOCSIM_ROOT=str(tree))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", *m.tests],
                              cwd=tree, env=env, text=True, capture_output=True, timeout=timeout)
        rc, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired:
        rc, out = None, ""
    finally:
        for f, text in saved:
            f.write_text(text)
    failed = sorted(set(re.findall(r"^FAILED (\S+)", out, re.M)))
    return {"rc": rc, "failed": failed, "seconds": time.perf_counter() - t0,
            "clean": "indexed outside its state" in out, "out": out}


def verdict(m: Mutant, r: dict) -> str:
    if r["rc"] is None:
        return "TIMEOUT"
    if r["rc"] == 0:
        return "SURVIVED"
    if m.kind == "crash":
        return "caught, failed cleanly" if r["rc"] == 1 and r["clean"] else f"CRASHED (exit status {r['rc']})"
    if m.kind == "both-side" and all(DIFFERENTIAL.search(t.split("::")[-1]) for t in r["failed"]):
        return "SURVIVED the non-differential tests"
    return "caught"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="mutants to run (default: all)")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per mutant")
    args = ap.parse_args(argv)
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:<24} {m.kind:<10} {m.what}")
        return 0
    chosen = [m for m in MUTANTS if not args.names or m.name in args.names]
    unknown = set(args.names) - {m.name for m in MUTANTS}
    if unknown:
        print(f"error: unknown mutant(s) {', '.join(sorted(unknown))}; see --list", file=sys.stderr)
        return 2
    bad = 0
    with tempfile.TemporaryDirectory(prefix="allocsim-mutants-") as tmp:
        tree = Path(tmp)
        copy_repo(tree)
        for m in chosen:
            r = run_one(tree, m, args.timeout)
            v = verdict(m, r)
            bad += not v.startswith("caught")
            print(f"{m.name:<24} {m.kind:<10} {v:<34} exit {r['rc']}, {r['seconds']:.0f} s — {m.what}", flush=True)
            for t in r["failed"][:12]:
                print(f"    {t}")
            if len(r["failed"]) > 12:
                print(f"    … and {len(r['failed']) - 12} more")
    print(f"{len(chosen) - bad} of {len(chosen)} mutants caught as they should be")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
