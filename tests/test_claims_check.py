"""The claims table of chapter 5 (allocsim.analysis.claims): the status rule, every claim evaluated, errors."""

import pandas as pd
import pytest

from allocsim.analysis import claims as C
from allocsim.analysis import runs as R
from allocsim.facts import kconfig
from allocsim.facts import thread
from allocsim.facts.errors import AllocsimError


@pytest.fixture(scope="module")
def rep():
    return R.reproduce(R.Setup(ios=6000), clock_ghz=3.0)


@pytest.fixture(scope="module")
def table(rep):
    return C.evaluate(rep, multi_threads=(2, 8), rounds=(10, 30))


def _claim(**kw):
    base = dict(value=1.0, unit="%", quote="", low=None, high=None, quantity="q", setup="s")
    base.update(kw)
    return base


def test_interval_rules():
    rng = C.interval(_claim(value=3.5, unit="x", low=3, high=4, quote="about 3-4x"))
    assert (rng.lo, rng.hi, rng.band_lo, rng.band_hi) == (3, 4, 1.5, 8)
    about = C.interval(_claim(value=12, quote="about 12% improvement"))
    assert (about.lo, about.hi) == pytest.approx((9.6, 14.4)) and about.band_lo == pytest.approx(4.8)
    null_io = C.interval(_claim(value=0, quote="doesn't show any improvement", setup="io_uring direct-IO reads"))
    assert null_io.hi == pytest.approx(C.NULL_IOPS_PCT) and null_io.band_hi == pytest.approx(2 * C.NULL_IOPS_PCT)
    null_mb = C.interval(_claim(value=0, quote="no noticeable difference", setup="kernel module"))
    assert null_mb.hi == C.NULL_MICRO_PCT
    lvl = C.interval(_claim(value=1.2, unit="M IOPS"))
    assert (lvl.lo, lvl.hi) == pytest.approx((1.195, 1.205)) and (lvl.band_lo, lvl.band_hi) == pytest.approx((1.185, 1.215))
    obj = C.interval(_claim(value=26, unit="objects"))
    assert (obj.lo, obj.hi, obj.band_hi) == (25.5, 26.5, 27.5)


def test_status_rule():
    iv = C.interval(_claim(value=12, quote="about 12%"))
    assert iv.status(12) == "reproduced" and iv.status(14.3) == "reproduced"
    assert iv.status(20) == "partly" and iv.status(5) == "partly"
    assert iv.status(40) == "not reproduced" and iv.status(-3) == "not reproduced"
    assert C.aggregate(["reproduced", "reproduced"]) == "reproduced"
    assert C.aggregate(["not reproduced", "partly"]) == "partly"
    assert C.aggregate(["not reproduced", "reproduced"]) == "partly"
    assert C.aggregate(["not reproduced"]) == "not reproduced"
    with pytest.raises(AllocsimError, match="statuses must be"):
        C.aggregate(["maybe"])


def test_every_claim_is_evaluated(table):
    claims = thread.claims()
    assert list(table["id"]) == list(claims["id"])
    assert set(table["status"]) <= set(C.STATUSES)
    assert table["modelled"].str.len().min() > 0 and table["how"].str.len().min() > 0
    s = C.summary(table)
    assert sum(s.values()) == len(claims)


def test_iops_claims_follow_the_rounding(rep, table):
    for r in table[table["claimed"].str.endswith("M")].to_dict("records"):
        c = thread.claims().set_index("id").loc[r["id"]]
        row = rep.row(kconfig.check_version(c["kernel"]), c["allocator"])
        assert (r["status"] == "reproduced") == bool(row["rounds to reported"]), r["id"]
        assert r["value"] == pytest.approx(row["predicted M IOPS"])


def test_derived_claims_use_the_predictions(rep, table):
    t = table.set_index("id")
    gain = (rep.predicted_miops("6.19", "per-CPU list") / rep.predicted_miops("6.19", "kmalloc") - 1) * 100
    assert t.loc["patch-gain", "value"] == pytest.approx(gain)
    assert t.loc["default-capacity-26", "value"] == kconfig.calculate_sheaf_capacity(256, 0, "7.0")
    # multithreaded claim: one value per thread count, and a note on where it holds
    assert len(t.loc["k128-multithread", "values"]) == 2 and t.loc["k128-multithread", "note"]


def test_microbenchmark_steady_state_is_per_round_and_thread():
    one = C.microbench_cycles("7.0", 32, 1, 256, rounds=(5, 15))
    assert one > 0
    assert C.microbench_cycles("7.0", 32, 1, 256, rounds=(5, 15)) == one  # deterministic
    with pytest.raises(AllocsimError, match="rounds must be two increasing positive counts"):
        C.microbench_cycles("7.0", 32, 1, 256, rounds=(25, 5))


def test_unknown_claim_and_bad_threads(rep, monkeypatch):
    with pytest.raises(AllocsimError, match="multi_threads must be thread counts >= 2"):
        C.evaluate(rep, multi_threads=(1,))
    real = thread.claims()
    extra = real.iloc[[0]].copy()
    extra["id"] = "new-claim"
    monkeypatch.setattr(thread, "claims", lambda: pd.concat([real, extra], ignore_index=True))
    with pytest.raises(AllocsimError, match="does not know how to evaluate claim 'new-claim'"):
        C.evaluate(rep, multi_threads=(2,), rounds=(5, 10))


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(st.floats(0.1, 500), st.sampled_from(["%", "x", "M IOPS", "objects"]), st.booleans(), st.floats(-1000, 1000))
def test_interval_nests_inside_its_band(value, unit, about, x):
    """Whatever the wording, the interval lies inside the partly band, and a value's status is consistent
    with where it falls."""
    iv = C.interval(_claim(value=value, unit=unit, quote="about it" if about else "it is"))
    assert iv.band_lo <= iv.lo <= value <= iv.hi <= iv.band_hi
    s = iv.status(x)
    assert (s == "reproduced") == (iv.lo <= x <= iv.hi)
    assert (s == "not reproduced") == (not iv.band_lo <= x <= iv.band_hi)


# ---- one evaluator, one status per claim ---------------------------------------------------------------

FAST = C.MicroSetup(rounds=(5, 10))


def test_micro_claims_are_the_rows_evaluate_gives(rep):
    ev = C.evaluate(rep, micro=FAST).set_index("id")
    mc = C.micro_claims(FAST, costs=rep.setup.costs()).set_index("id")
    assert list(mc.index) == list(C.MICRO_CLAIMS)
    for cid in C.MICRO_CLAIMS:
        assert mc.loc[cid, "status"] == ev.loc[cid, "status"]
        assert list(mc.loc[cid, "values"]) == pytest.approx(list(ev.loc[cid, "values"]))


def test_the_multithreaded_claim_follows_the_range_rule(rep):
    row = C.micro_claims(FAST).set_index("id").loc["k128-multithread"]
    iv = C.interval(thread.claims().set_index("id").loc["k128-multithread"].to_dict() | {"id": "k128-multithread"})
    per = [iv.status(v) for v in row["values"]]
    assert row["status"] == C.aggregate(per)
    if "reproduced" in per and not all(s == "reproduced" for s in per):
        assert row["status"] == "partly" and row["note"].startswith("in the interval at")


def test_statuses_and_details(rep):
    st = C.statuses(rep, FAST)
    assert list(st) == list(thread.claims()["id"]) and set(st.values()) <= set(C.STATUSES)
    det = C.status_details(rep, FAST)
    assert {k: v.status for k, v in det.items()} == st
    assert det["patch-gain"].label and det["patch-gain"].rule
    assert st == dict(zip(*[C.evaluate(rep, micro=FAST)[c] for c in ("id", "status")]))


def test_micro_setup_memoises_and_validates():
    a = FAST.cycles("7.0", 32, 1, 256)
    assert FAST.cycles("7.0", 32, 1, 256) == a == C.microbench_cycles("7.0", 32, 1, 256, rounds=(5, 10))
    assert FAST.speedup(32, 2) == pytest.approx(FAST.cycles("7.0", 32, 2, None) / FAST.cycles("7.0", 32, 2, 256))
    with pytest.raises(AllocsimError, match="multi_threads must be thread counts >= 2"):
        C.MicroSetup(threads=(1, 4)).validate()


def test_status_phrase():
    assert [C.status_phrase(s) for s in C.STATUSES] == ["reproduced", "partly reproduced", "not reproduced"]
    with pytest.raises(AllocsimError, match="status must be one of"):
        C.status_phrase("maybe")


def test_evaluate_runs_the_microbenchmark_with_the_setups_hierarchy(rep, monkeypatch):
    """One model state answers every claim: without a MicroSetup, evaluate() runs the microbenchmark claims with
    the reproduction's hierarchy switch and clock (chapter 4's default MicroSetup has the hierarchy on)."""
    seen = []
    real = C._micro_row
    monkeypatch.setattr(C, "_micro_row", lambda cid, ms, costs: (seen.append(ms), real(cid, ms, costs))[1])
    C.evaluate(rep, rounds=(5, 10), multi_threads=(2,))
    assert seen and all(ms.hierarchy == rep.setup.hierarchy and ms.clock_ghz == rep.clock_ghz for ms in seen)
    assert C.MicroSetup().hierarchy is True
