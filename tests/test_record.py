"""The recorder against the real kernel: tracefs, the kmem events, fio. Where root, tracefs or fio are
missing the live tests skip with a message — and fail in CI (env CI), like the browser check."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from allocsim.facts import record, tracefs
from allocsim.facts.errors import AllocsimError
from allocsim.workloads import recorded

from conftest import ROOT, run_cli

ROOT_TRACEFS = tracefs.TRACEFS


def _live_missing() -> str | None:
    if os.geteuid() != 0:
        return "not root"
    if not ROOT_TRACEFS.is_dir():
        return f"{ROOT_TRACEFS} does not exist"
    if shutil.which("fio") is None:
        return "fio is not installed (apt-get install fio)"
    if not tracefs.BTF_VMLINUX.exists():
        return "the kernel has no BTF"
    return None


@pytest.fixture(scope="module")
def live():
    why = _live_missing()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"the live recording test needs root, tracefs and fio in CI: {why}")
        pytest.skip(f"live recording not possible here: {why}")
    tracefs.ensure_mounted()
    return ROOT_TRACEFS


def _all_off():
    """Nothing of ours is left switched on: top-level kmem enables are 0 and no recorder instance remains."""
    if not tracefs.mounted():
        return
    assert (ROOT_TRACEFS / "events/kmem/kmalloc/enable").read_text().strip() == "0"
    assert (ROOT_TRACEFS / "events/kmem/kfree/enable").read_text().strip() == "0"
    assert tracefs.leftover_instances() == []


def _one_line_error(proc):
    err = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(err) == 1, proc.stderr
    assert err[0].startswith("error: ")
    assert "Traceback" not in proc.stderr
    return err[0]


# --- the text parser ----------------------------------------------------------------------------------

SAMPLE = b"""# tracer: nop
#
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
             fio-13068   [000] .....   502.764224: kmalloc: call_site=__iomap_dio_rw+0xbb/0x8d0 ptr=ffff8882037335a0 bytes_req=96 bytes_alloc=96 gfp_flags=GFP_KERNEL node=-1 accounted=false
             pip-12924   [001] ..s..   502.766752: kfree: call_site=iomap_dio_complete+0xbf/0x1d0 ptr=ffff8882037335a0
 kworker/u8:2-my-job-77  [001] d.h1.   502.766800: kfree: call_site=iomap_dio_complete+0xbf/0x1d0 ptr=ffff888203733d20
          <idle>-0       [000] d.H2.   502.766900: kfree: call_site=iomap_dio_complete+0xbf/0x1d0 ptr=ffff888203733d80
"""


def test_parse_text_fields_and_contexts():
    p = tracefs.parse_text(SAMPLE)
    assert len(p) == 4 and p.skipped == 0
    assert p.cpu.tolist() == [0, 1, 1, 0]
    assert p.ctx.tolist() == [tracefs.CTX_TASK, tracefs.CTX_SOFTIRQ, tracefs.CTX_HARDIRQ, tracefs.CTX_HARDIRQ]
    assert p.op.tolist() == [tracefs.OP_ALLOC, tracefs.OP_FREE, tracefs.OP_FREE, tracefs.OP_FREE]
    assert p.ptr.tolist() == [0xffff8882037335a0, 0xffff8882037335a0, 0xffff888203733d20, 0xffff888203733d80]
    assert p.pid.tolist() == [13068, 12924, 77, 0]
    assert p.comm.tolist() == ["fio", "pip", "kworker/u8:2-my-job", "<idle>"]
    assert p.site.tolist() == ["__iomap_dio_rw", "iomap_dio_complete", "iomap_dio_complete", "iomap_dio_complete"]
    assert p.bytes_req.tolist() == [96, -1, -1, -1]
    assert p.t_ns.tolist() == [502_764_224_000, 502_766_752_000, 502_766_800_000, 502_766_900_000]


def test_parse_text_bulk_matches_small_path():
    # the vectorised hex/int conversions (used from 64 lines on) agree with the per-line ones
    lines = SAMPLE.split(b"\n")
    big = b"\n".join(lines[:3] + lines[3:7] * 40) + b"\n"
    p = tracefs.parse_text(big)
    small = tracefs.parse_text(b"\n".join(lines[:3] + lines[3:7]) + b"\n")
    assert len(p) == 160
    assert p.ptr[:4].tolist() == small.ptr.tolist() and p.bytes_req[:4].tolist() == small.bytes_req.tolist()


def test_parse_text_rejects_unknown_irq_flag():
    bad = SAMPLE.replace(b"..s..", b"..q..")
    with pytest.raises(AllocsimError, match="hardirq/softirq column"):
        tracefs.parse_text(bad)


def test_context_codes_agree_with_the_program_format():
    from allocsim.kernel import program

    assert (tracefs.CTX_TASK, tracefs.CTX_HARDIRQ, tracefs.CTX_SOFTIRQ) == (program.TASK, program.HARDIRQ, program.SOFTIRQ)
    assert (tracefs.OP_ALLOC, tracefs.OP_FREE) == (program.ALLOC, program.FREE)


# --- formats and filters ------------------------------------------------------------------------------

def test_filters_of_the_default_target():
    a, f = tracefs.Target(bytes_req=96).filters()
    assert a == "call_site.function == __iomap_dio_rw && bytes_req == 96"
    assert f == "( call_site.function == iomap_dio_complete || call_site.function == __iomap_dio_rw )"
    with pytest.raises(AllocsimError, match="kernel function name"):
        tracefs.Target(alloc_sites=("x; rm -rf /",)).filters()


def test_real_format_passes_and_an_altered_one_is_refused(live):
    text = tracefs.read_format("kmalloc")
    fields = tracefs.check_format("kmalloc", text)
    assert fields["ptr"][0] == "const void *"
    with pytest.raises(AllocsimError, match="has no field 'bytes_req'"):
        tracefs.check_format("kmalloc", text.replace("bytes_req", "bytes_wanted"))
    with pytest.raises(AllocsimError, match="field 'ptr' is 'unsigned int'"):
        tracefs.check_format("kmalloc", text.replace("const void * ptr", "unsigned int ptr"))
    h1 = tracefs.format_hash({"kmalloc": text})
    assert h1 == tracefs.format_hash({"kmalloc": text}) and h1 != tracefs.format_hash({"kmalloc": text + " "})


def test_iomap_dio_size_from_btf(live):
    from allocsim.facts import structs

    assert tracefs.iomap_dio_size() == structs.sizeof("iomap_dio") == 96


def test_instance_is_switched_off_and_removed(live):
    inst = tracefs.Instance(tracefs.Target(bytes_req=96))
    with inst:
        assert (inst.path / "events/kmem/kmalloc/enable").read_text().strip() == "1"
        assert "bytes_req == 96" in (inst.path / "events/kmem/kmalloc/filter").read_text()
    assert not inst.path.exists()
    _all_off()


def test_a_rejected_filter_leaves_nothing_on(live):
    with pytest.raises(AllocsimError, match="rejected the kmem:kmalloc filter"):
        tracefs.Instance(tracefs.Target(alloc_sites=("no_such_function_in_this_kernel",))).open()
    _all_off()


# --- live recording -----------------------------------------------------------------------------------

def test_live_recording_of_fio(live, tmp_path):
    out = tmp_path / "live.csv.gz"
    proc = run_cli("record", "--seconds", "2", "--size-mb", "64", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    _all_off()
    assert not (tmp_path / "allocsim-record.data").exists()
    tr = recorded.load(out, expect_sites=("__iomap_dio_rw",))
    m = tr.meta
    assert m["events"] == len(tr.events) > 1000
    assert m["tracefs"]["events_lost"] == 0
    assert m["load"]["t_io_uring"] == "-p0 -d128 -s32 -c32 -n1"
    assert m["target"]["bytes_req"] == 96 and m["machine"]["release"] == os.uname().release
    assert m["tracefs"]["formats_sha256"].startswith("sha256:")
    assert m["block"]["device"] and m["sites"][0] == "__iomap_dio_rw"
    prog, edges = recorded.to_program(tr)
    assert prog.n_slots == int((tr.events["op"] == 0).sum()) - 0
    # fio waits for its IOs before it exits, so nearly every allocation is freed in the recording
    assert edges.alive_at_end <= 128 * 2


def test_record_a_command_and_a_fixed_time(live, tmp_path):
    out = tmp_path / "cmd.csv.gz"
    data = tmp_path / "d.bin"
    data.write_bytes(os.urandom(8 << 20))
    os.sync()
    cmd = [shutil.which("fio"), "--name=x", f"--filename={data}", "--ioengine=io_uring", "--direct=1",
           "--rw=randread", "--bs=4k", "--iodepth=8", "--runtime=1", "--time_based", "--output-format=terse"]
    proc = run_cli("record", "--output", str(out), "--", *cmd)
    assert proc.returncode == 0, proc.stderr
    tr = recorded.load(out)
    assert tr.meta["load"]["kind"] == "command" and tr.meta["load"]["command"].startswith(cmd[0])
    _all_off()


# --- bad input: one sentence, exit 2, tracing off -----------------------------------------------------

def test_not_root_is_refused(tmp_path):
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop to another user")
    out = tmp_path / "x.csv.gz"
    os.chmod(tmp_path, 0o777)
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
                           "allocsim", "record", "--seconds", "1", "--output", str(out)], cwd=ROOT, text=True,
                          capture_output=True, timeout=300, env={**os.environ, "HOME": str(tmp_path),
                                                                 "NUMBA_CACHE_DIR": str(tmp_path / "nb")})
    assert proc.returncode == 2, proc.stderr
    assert "needs root" in _one_line_error(proc)
    _all_off()


def test_no_tracefs_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root (otherwise the root check comes first)")
    proc = run_cli("record", "--seconds", "1", "--output", str(tmp_path / "x.csv.gz"), "--tracefs",
                   str(tmp_path / "no-tracefs-here"), "--load", "none")
    assert proc.returncode == 2
    assert "has no tracefs" in _one_line_error(proc)
    _all_off()


def test_fio_missing_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root (otherwise the root check comes first)")
    proc = run_cli("record", "--seconds", "1", "--output", str(tmp_path / "x.csv.gz"),
                   env={"PATH": str(tmp_path)})
    assert proc.returncode == 2
    assert "fio is not installed" in _one_line_error(proc)
    _all_off()


def test_no_matching_event_is_one_sentence_and_tracing_off(live, tmp_path):
    proc = run_cli("record", "--output", str(tmp_path / "x.csv.gz"), "--", "true")
    assert proc.returncode == 2
    assert "no kmalloc or kfree event matched" in _one_line_error(proc)
    assert not (tmp_path / "x.csv.gz").exists()
    _all_off()


def test_bad_fio_options_are_one_sentence_and_tracing_off(live, tmp_path):
    proc = run_cli("record", "--seconds", "1", "--size-mb", "8", "-d", "4", "-s", "8",
                   "--output", str(tmp_path / "x.csv.gz"))
    assert proc.returncode == 2
    assert "must not exceed the depth" in _one_line_error(proc)
    _all_off()


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 130), (signal.SIGINT, 130)])
def test_signal_while_recording_switches_tracing_off(live, tmp_path, sig, code):
    out = tmp_path / "x.csv.gz"
    proc = subprocess.Popen([sys.executable, "-m", "allocsim", "record", "--load", "none", "--seconds", "60",
                             "--output", str(out)], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not any((p / "events/kmem/kmalloc/enable").exists()
                                            and (p / "tracing_on").read_text().strip() == "1"
                                            for p in tracefs.leftover_instances()):
        time.sleep(0.1)
    assert tracefs.leftover_instances(), "the recorder never started tracing"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert not out.exists()
    _all_off()


def test_fill_file_writes_real_blocks(tmp_path):
    f = tmp_path / "d"
    record.fill_file(f, 2)
    st = f.stat()
    assert st.st_size == 2 << 20 and st.st_blocks * 512 >= st.st_size
    assert np.frombuffer(f.read_bytes()[:4096], np.uint8).any()


def test_parse_text_in_pieces_equals_whole(monkeypatch):
    from allocsim.book.benchmarks.record import tracefs_text

    text = tracefs_text(recorded.load(), 20_000)
    whole = tracefs.parse_text(text)
    monkeypatch.setattr(tracefs, "CHUNK", 100_000)
    pieces = tracefs.parse_text(text)
    assert len(whole) == len(pieces) == 20_000
    for f in ("t_ns", "cpu", "ctx", "op", "ptr", "pid", "comm", "site", "bytes_req"):
        assert (getattr(whole, f) == getattr(pieces, f)).all(), f
    # and the rebuilt text parses back to the trace it came from
    ev = recorded.load().events.iloc[:20_000]
    assert (pieces.cpu == ev["cpu"].to_numpy()).all() and (pieces.ctx == ev["ctx"].to_numpy()).all()
    assert (pieces.op == ev["op"].to_numpy()).all()


def test_parse_text_kmem_cache_events_and_other_lines():
    text = (b"        kworker/0:1-12      [000] ..s1.   10.000001: kmem_cache_alloc: call_site=bio_alloc_bioset+0x1/0x2 "
            b"ptr=ffff888100000040 name=bio-248 bytes_req=248 bytes_alloc=256 gfp_flags=GFP_NOIO node=-1 accounted=false\n"
            b"        kworker/0:1-12      [000] d.h1.   10.000002: kmem_cache_free: call_site=bio_free+0x1/0x2 "
            b"ptr=ffff888100000040 name=bio-248\n"
            b"        kworker/0:1-12      [000] ..... 10.000003: sched_switch: prev_comm=x prev_pid=1\n")
    p = tracefs.parse_text(text)
    assert len(p) == 2 and p.skipped == 1
    assert p.op.tolist() == [tracefs.OP_ALLOC, tracefs.OP_FREE]
    assert p.bytes_req.tolist() == [248, -1] and p.site.tolist() == ["bio_alloc_bioset", "bio_free"]
    assert p.ctx.tolist() == [tracefs.CTX_SOFTIRQ, tracefs.CTX_HARDIRQ] and p.t_ns.tolist() == [10_000_001_000, 10_000_002_000]


def test_polled_load_records_or_fails_in_one_sentence(live, tmp_path):
    """-p1 needs a device with poll queues; without them fio's reads fail (EOPNOTSUPP) and record says so."""
    out = tmp_path / "p.csv.gz"
    proc = run_cli("record", "--seconds", "1", "--size-mb", "16", "-p", "1", "-d", "16", "-s", "4", "-c", "4",
                   "--output", str(out))
    if proc.returncode == 0:
        assert recorded.load(out).meta["load"]["t_io_uring"].startswith("-p1")
    else:
        assert proc.returncode == 2 and "fio failed (exit" in _one_line_error(proc)
        assert not out.exists()
    assert not (tmp_path / "allocsim-record.data").exists()
    _all_off()
