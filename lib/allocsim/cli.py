"""The command line: ``python -m allocsim COMMAND`` (also installed as ``allocsim``).

  build              execute every chapter (papermill) and render the book to _build/html
  run SLUG -p N V …  re-execute one chapter with other parameters into _build/runs/<chapter>-<hash>/
                     (--book: rebuild the book showing it; --estimate: time and memory only;
                     run --list: the kept runs)
  params [SLUG]      list every chapter's parameters: name, type, default, allowed values, meaning
                     (--write-cells: regenerate the chapters' parameters cells from the specs)
  bench NAME         run a benchmark that prints figures (see `bench --list`)
  inspect …          read this machine's kernel slab caches and BTF and hold the models against them
  numbers [--diff F] every glued value of the built book as CSV (chapter, name, value), or what changed
  record …           record the running kernel's iomap_dio allocations and frees (root, tracefs, fio)
  replay TRACE       measure a recorded trace and replay it through every allocator model
  calibrate CSV      fit the IOPS model on your own (kernel, allocator, IOPS) figures and predict the rest
  sweep …            sample the whole cost table jointly and rerun the six configurations (Dask)

Bad input (an unknown chapter or parameter, a parameter given twice, a value of the wrong type, out of
range, NaN or infinite, an unwritable build folder) stops with one sentence and exit status 2, before any
kernel is started; a chapter that fails exits 1 with one line; Ctrl-C prints one line and exits 130.
The build folder is _build, or ALLOCSIM_BUILD / --build-dir. `build` executes one chapter per CPU at once
(ALLOCSIM_JOBS / --jobs N to change it); the results do not depend on it.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

from allocsim.facts.errors import AllocsimError


def _check_data() -> None:
    """Every data file against its schema, before a kernel starts (a bad file: one sentence, exit 2)."""
    from allocsim.facts.validate import validate_all

    validate_all()


def _use_build_dir(args) -> None:
    """``--build-dir DIR`` is the command-line form of ``ALLOCSIM_BUILD``."""
    import os

    if getattr(args, "build_dir", None):
        os.environ["ALLOCSIM_BUILD"] = str(Path(args.build_dir).expanduser().absolute())


def _cmd_build(args) -> int:
    from allocsim.book import runner as book

    _use_build_dir(args)
    if args.jobs is not None:
        import os

        os.environ["ALLOCSIM_JOBS"] = args.jobs
    book.jobs()  # a bad --jobs / ALLOCSIM_JOBS: one sentence before anything runs
    _check_data()
    book.build(force=args.force, log=lambda m: print(m, flush=True))
    return 0


def _fmt_duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _list_runs() -> int:
    from allocsim.book import runner as book

    rows = book.runs()
    if not rows:
        print(f"no runs kept in {book.runs_dir()} yet; `run CHAPTER -p NAME VALUE` makes one")
        return 0
    print(f"{'run':<20} {'status':<11} {'when':<24} parameters")
    for r in rows:
        changed = ", ".join(f"{k}={v!r}" for k, v in (r.get("changed") or {}).items()) or "defaults"
        status = r.get("status", "?")
        if status == "ok" and isinstance(r.get("duration_s"), (int, float)):
            status = f"ok {_fmt_duration(r['duration_s'])}"
        print(f"{Path(r['folder']).name:<20} {status:<11} {r.get('started', '?'):<24} {changed}")
    print(f"(notebooks in {book.runs_dir()}/<run>/)")
    return 0


def _cmd_run(args) -> int:
    from allocsim.book import runner as book

    _use_build_dir(args)
    if args.list:
        return _list_runs()
    if not args.chapter:
        raise AllocsimError("run needs a chapter (see `params`), or --list to show the kept runs")
    _check_data()
    values = book.parse_overrides(args.chapter, args.param or [])
    page = book.chapter_pages().get(args.chapter)
    if page is None:
        raise AllocsimError(f"unknown chapter {args.chapter!r}; chapters in _toc.yml are: {', '.join(book.chapter_pages())}")
    run = book.run_id(args.chapter, values)
    if args.output:
        out = Path(args.output)
        if out.suffix != ".ipynb":
            raise AllocsimError(f"--output must name a .ipynb file, not {str(out)!r}")
        book.check_writable(out.absolute().parent, "the executed notebook", "choose another --output FILE")
    else:
        out = book.runs_dir() / run / f"{page.stem}.ipynb"
        book.check_writable(out.parent, "the run", "pass --output FILE, or set ALLOCSIM_BUILD=DIR or --build-dir DIR")
    if args.book:
        book.check_writable(book.build_root(), "the book", book.BUILD_ELSEWHERE)
    shown = ", ".join(f"{k}={v!r}" for k, v in values.items()) or "defaults"
    guess = book.estimate(args.chapter, values)
    long_run = guess is not None and guess[0] > 60
    if args.estimate:
        if guess is None:
            print(f"{args.chapter}: no estimate (the chapter declares no work measure); its default run is short")
        else:
            over = " — over a minute" if long_run else ""
            print(f"{args.chapter} with {shown}: about {_fmt_duration(guess[0])} and {guess[1] / 1024:.1f} GB of memory{over}")
        return 0
    if long_run:
        seconds, mib = guess
        print(f"note: this run is estimated to take about {_fmt_duration(seconds)} and {mib / 1024:.1f} GB of "
              f"memory (scaled from measured runs by the events it simulates); Ctrl-C stops it", flush=True)
    print(f"[1/1] {args.chapter}: executing {page.path} with {shown} …", flush=True)
    path, _ = book.execute(args.chapter, values, out=out.absolute(), force=True, progress=long_run, run=run)
    print(f"wrote {book._rel(path)}", flush=True)
    if args.book:
        book.build(replace={args.chapter: path}, log=lambda m: print(m, flush=True))
    return 0


def _cmd_params(args) -> int:
    from allocsim.pages import params

    specs = params.specs()
    slugs = [args.chapter] if args.chapter else list(specs)
    if args.write_cells:
        for slug in slugs:
            changed = params.write_cell(slug)
            print(f"{params.spec(slug).source}: parameters cell {'rewritten' if changed else 'already up to date'}")
        return 0
    for slug in slugs:
        s = params.spec(slug)
        print(f"{slug}  ({s.source}) — {s.title}")
        if not s.params:
            print("    (no parameters)")
        for p in s.params:
            print(f"    {p.name:<22} {p.type.__name__:<6} default {p.default!r:<12} {p.allowed()}")
            print(f"    {'':<22} {p.help}")
        print()
    return 0


def _benchmarks() -> list[str]:
    from allocsim.book import benchmarks

    return sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__))


def _cmd_bench(args) -> int:
    names = _benchmarks()
    if args.all:
        for name in names:
            print(f"== {name} ==", flush=True)
            importlib.import_module(f"allocsim.book.benchmarks.{name}").run([])
        return 0
    if args.list or not args.name:
        print("benchmarks: " + ", ".join(names))
        return 0
    if args.name not in names:
        raise AllocsimError(f"unknown benchmark {args.name!r}; available: {', '.join(names)}")
    importlib.import_module(f"allocsim.book.benchmarks.{args.name}").run(args.rest)
    return 0


def _cmd_inspect(args) -> int:
    try:
        mod = importlib.import_module("allocsim.facts.inspect")
    except ModuleNotFoundError:
        raise AllocsimError("the inspect command is not available in this version") from None
    return mod.main(args.rest) or 0


def _cmd_numbers(args) -> int:
    from allocsim.book import numbers

    rows = numbers.collect(Path(args.executed) if args.executed else None)
    if args.diff:
        old = numbers.read_csv(Path(args.diff))
        print(numbers.diff_text(numbers.diff(old, rows), len(old), len(rows)))
        return 0
    text = numbers.to_csv(rows)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {len(rows)} values to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


# -- record / replay / calibrate (issue 12) ---------------------------------------------------------
def _cmd_record(args) -> int:
    from allocsim.facts import record

    return record.main(args)


def _cmd_replay(args) -> int:
    from allocsim.analysis import workload

    return workload.main(args)


def _cmd_calibrate(args) -> int:
    from allocsim.analysis import calibrate

    return calibrate.main(args)


def _add_workload_commands(sub) -> None:
    from allocsim.facts import record

    rec = sub.add_parser("record", help="record iomap_dio allocations/frees from the running kernel (root)",
                         description="Record kmem:kmalloc/kfree of struct iomap_dio while fio (or `-- CMD`) runs.")
    record.add_arguments(rec)
    rec.set_defaults(func=_cmd_record)
    rp = sub.add_parser("replay", aliases=["workload"], help="measure a trace and replay it through every allocator model")
    rp.add_argument("trace", nargs="?", default=None, help="a trace written by `record` (default: the shipped one)")
    rp.add_argument("--edges", choices=("trim", "strict"), default="trim",
                    help="trim (default): leave out frees of objects allocated before recording began and report "
                         "them; strict: refuse such a trace")
    rp.add_argument("--clock-ghz", type=float, default=3.0, help="cycles per ns for the recorded gaps and the ns figures")
    rp.add_argument("--timing", choices=("recorded", "none"), default="recorded",
                    help="recorded: the time between a CPU's events becomes non-allocator cycles; none: back to back")
    rp.add_argument("--no-replay", action="store_true", help="print the measurement only")
    rp.add_argument("--alloc-site", default="__iomap_dio_rw",
                    help="the allocation call site the trace must be of (default __iomap_dio_rw; 'any' accepts all)")
    rp.set_defaults(func=_cmd_replay)
    ca = sub.add_parser("calibrate", help="fit the IOPS model on your own figures (CSV: kernel,allocator,miops)")
    ca.add_argument("figures", help="CSV with columns kernel, allocator, miops (or iops)")
    ca.add_argument("--clock-ghz", type=float, default=3.0, help="the clock the model's cycles are turned into ns with")
    ca.add_argument("--ios", type=int, default=20_000, help="IOs per configuration simulated")
    ca.set_defaults(func=_cmd_calibrate)


def _cmd_sweep(args) -> int:
    """The uncertainty sweep (chapter 6): local worker processes, or a Dask cluster by address."""
    from allocsim.analysis import runs, sweep, uncertainty

    setup = runs.Setup(ios=args.ios, cost_table=args.cost_table)
    study = uncertainty.Study(setup=setup, clock_ghz=args.clock_ghz, samples=args.samples, seed=args.seed,
                              distributions=args.distributions or "")
    res = sweep.run(study, scheduler=args.scheduler, workers=args.workers, connect_timeout=args.connect_timeout,
                    cache_dir=Path(args.cache_dir) if args.cache_dir else None, progress=not args.quiet)
    how = "reused" if res.reused else f"{res.computed} computed on {res.engine} in {res.seconds:.1f} s ({res.rate:.1f} samples/s)"
    print(f"{len(res.frame)} samples ({args.samples} Sobol' base samples): {how}")
    print(f"results: {res.path}")
    for note in res.notes():
        print(f"note: {note}")
    p = uncertainty.probabilities(res.frame, study.clock_ghz)
    lo, hi = p["edge_interval"]
    print(f"P(every figure reproduced at 0.01M) = {p['p_all_six']:.3f}")
    print(f"per-CPU list over sheaf-256 on 7.0: median {p['edge_median']:+.4f}M IOPS, 90 % interval "
          f"{lo:+.4f}..{hi:+.4f}M; P(> half a step) = {p['p_edge_half']:.3f}, P(> one step) = {p['p_edge_step']:.3f}")
    glo, ghi = p["gain_interval"]
    print(f"the patch's 6.19 gain: median {p['gain_median']:+.2f} %, 90 % interval {glo:+.2f}..{ghi:+.2f} %")
    sob = uncertainty.sobol(res.frame, study)
    top = sob[sob["output"] == "edge ns/IO"].head(3)
    print("Sobol' total indices of the edge (ns/IO): " + "; ".join(
        f"{r['input']} {r['ST']:.2f} ± {r['ST ±']:.2f}" for r in top.to_dict("records")))
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m allocsim", description=__doc__.split("\n\n")[0].replace("``", ""),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    b = sub.add_parser("build", help="execute every chapter and render the book to _build/html")
    b.add_argument("--force", action="store_true", help="re-execute chapters even if unchanged")
    b.add_argument("--build-dir", metavar="DIR", help="build folder (default _build; or set ALLOCSIM_BUILD)")
    b.add_argument("--jobs", metavar="N", help="chapters executed at once (default: one per CPU; or set ALLOCSIM_JOBS)")
    b.set_defaults(func=_cmd_build)

    r = sub.add_parser("run", help="re-execute one chapter with other parameters")
    r.add_argument("chapter", nargs="?", help="chapter slug (see `params`)")
    r.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="set a parameter (once each)")
    r.add_argument("-o", "--output", help="executed notebook to write (default _build/runs/<chapter>-<hash>/)")
    r.add_argument("--book", action="store_true", help="then rebuild the book showing this run for the chapter")
    r.add_argument("--list", action="store_true", help="list the kept runs: chapter, parameters, when, status")
    r.add_argument("--estimate", action="store_true", help="only print the estimated time and memory of the run")
    r.add_argument("--build-dir", metavar="DIR", help="build folder (default _build; or set ALLOCSIM_BUILD)")
    r.set_defaults(func=_cmd_run)

    p = sub.add_parser("params", help="list chapters' parameters")
    p.add_argument("chapter", nargs="?")
    p.add_argument("--write-cells", action="store_true",
                   help="rewrite each chapter's parameters cell from its spec (names, types, defaults, meanings)")
    p.set_defaults(func=_cmd_params)

    be = sub.add_parser("bench", help="run a benchmark that prints figures")
    be.add_argument("name", nargs="?")
    be.add_argument("--list", action="store_true", help="list the benchmarks")
    be.add_argument("--all", action="store_true", help="run every benchmark")
    be.add_argument("rest", nargs=argparse.REMAINDER)
    be.set_defaults(func=_cmd_bench)

    nu = sub.add_parser("numbers", help="every glued value of the built book as CSV, or its difference from an export")
    nu.add_argument("--executed", metavar="DIR", help="folder of executed notebooks (default _build/executed)")
    nu.add_argument("-o", "--output", metavar="FILE", help="write the CSV here instead of to standard output")
    nu.add_argument("--diff", metavar="OTHER.csv", help="show what changed from an earlier export instead")
    nu.set_defaults(func=_cmd_numbers)
    sw = sub.add_parser("sweep", help="joint uncertainty of the cost table: rerun the six configurations per sample (Dask)")
    sw.add_argument("--samples", type=int, default=64,
                    help="Sobol' base samples N, a power of two (the sweep runs N × (inputs + 2) samples; default 64)")
    sw.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                    help="run on an existing Dask cluster (default: DASK_SCHEDULER_ADDRESS, else local workers)")
    sw.add_argument("--workers", type=int, help="local worker processes (default: one per core)")
    sw.add_argument("--seed", type=int, default=0, help="seed of the sample design (default 0)")
    sw.add_argument("--ios", type=int, default=8000, help="IOs simulated per configuration and sample (default 8000)")
    sw.add_argument("--clock-ghz", type=float, default=3.0, help="clock that turns cycles into ns (default 3.0)")
    sw.add_argument("--cost-table", default="default", help="cost table (data/costs.csv or data/costs-<name>.csv)")
    sw.add_argument("--cache-dir", help="where the Parquet results go (default _build/sweeps)")
    sw.add_argument("--distributions", help="a distributions file instead of data/cost_uncertainty.yaml")
    sw.add_argument("--connect-timeout", type=float, default=10.0, help="seconds to wait for the scheduler (default 10)")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")
    sw.set_defaults(func=_cmd_sweep)

    ins = sub.add_parser("inspect", help="compare the running kernel's slab caches with the models", add_help=False)
    ins.add_argument("rest", nargs=argparse.REMAINDER)
    ins.set_defaults(func=_cmd_inspect)
    _add_workload_commands(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "inspect":  # its own options (--json, --help …) go straight to it
        args = argparse.Namespace(func=_cmd_inspect, rest=argv[1:])
    else:
        args = parser().parse_args(argv)
    try:
        return args.func(args)
    except AllocsimError as exc:
        from allocsim.book.runner import ChapterFailed

        print(f"error: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, ChapterFailed) else 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
