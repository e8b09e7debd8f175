"""The default CPU of the memory hierarchy: cache geometry, latencies and transfer costs (``data/kernel/cpu.yaml``).

Every parameter is one row with a unit, a low..high range of real measurements, the measuring machine, a
source a reader can open and a status (``V`` read in the source, ``I`` inferred, the note says how)::

    from allocsim.facts import cpu
    c = cpu.load()                  # the checked file
    g = cpu.geometry(clock_ghz=3.0) # sets, ways and latencies in cycles for allocsim.kernel.cache

Level latencies are core cycles of the measured machine and are used as they are; the core-to-core
transfers and the memory latency are nanoseconds, turned into cycles with the book's clock (``ns x GHz``).
A malformed file stops with one :class:`~allocsim.facts.errors.DataError` sentence naming the file, the row
and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache

from allocsim.facts import paths
from allocsim.facts.datafile import label, on_clear, read_yaml
from allocsim.facts.errors import AllocsimError, DataError
from allocsim.facts.schema import Field, check_record, check_rows, fail

#: Every key the file must define, with its unit (in the order of the methods table).
KEYS = {
    "line_bytes": "B",
    "l1d_size": "KiB", "l1d_ways": "ways", "l1d_latency": "cycles",
    "l2_size": "KiB", "l2_ways": "ways", "l2_latency": "cycles",
    "llc_size": "KiB", "llc_ways": "ways", "llc_latency": "cycles",
    "cpus_per_llc": "CPUs", "llcs_per_node": "LLCs",
    "transfer_same_llc": "ns", "transfer_cross_llc": "ns", "transfer_cross_node": "ns",
    "memory": "ns",
}
#: Keys whose value must be a whole number (sizes, ways, counts).
INTEGER_KEYS = ("line_bytes", "l1d_size", "l1d_ways", "l2_size", "l2_ways", "llc_size", "llc_ways",
                "cpus_per_llc", "llcs_per_node")
STATUS = ("I", "V")
#: The sharer set of an LLC entry is one int64 bit mask over the CPUs of its domain.
MAX_CPUS_PER_LLC = 62

_NUMBER = (int, float)
ROW_SCHEMA = {
    "key": Field((str,), allowed=tuple(KEYS), allowed_name="keys"),
    "value": Field(_NUMBER, low=0), "low": Field(_NUMBER, low=0), "high": Field(_NUMBER, low=0),
    "unit": Field((str,)),
    "machine": Field((str,)), "source": Field((str,)),
    "status": Field((str,), allowed=STATUS, allowed_name="statuses (V verified, I inferred)"),
    "note": Field((str,), required=False, default=""),
}
FILE_SCHEMA = {"source": Field((str,)), "machine": Field((str,)), "params": Field((list,))}


def path():
    return paths.DATA / "kernel" / "cpu.yaml"


@dataclass(frozen=True)
class CPU:
    """The checked file: ``rows[key]`` is the row (value, low, high, unit, machine, source, status, note)."""

    machine: str
    source: str
    rows: dict = field(repr=False)

    def value(self, key: str) -> float:
        if key not in self.rows:
            raise DataError(f"unknown CPU parameter '{key}'; {label(path())} defines: {', '.join(KEYS)}")
        return self.rows[key]["value"]

    def frame(self):
        import pandas as pd

        return pd.DataFrame([{"key": k, **self.rows[k]} for k in KEYS])


def _check(doc, where: str) -> dict:
    check_record(doc, FILE_SCHEMA, where)
    rows = check_rows(doc["params"], ROW_SCHEMA, where, key="key")
    out = {}
    for i, row in enumerate(rows, start=1):
        rw = f"{where}, row {i} (key '{row['key']}')"
        k = row["key"]
        if row["unit"] != KEYS[k]:
            fail(rw, "unit", f"is {row['unit']!r}; {k} is given in {KEYS[k]}")
        for col in ("value", "low", "high"):
            if k in INTEGER_KEYS and (isinstance(row[col], float) and not row[col].is_integer()):
                fail(rw, col, f"is {row[col]}, which is not a whole number of {KEYS[k]}")
        if not row["low"] <= row["value"] <= row["high"]:
            fail(rw, "value", f"({row['value']}) must lie within low..high ({row['low']}..{row['high']})")
        if row["value"] <= 0:
            fail(rw, "value", f"is {row['value']}; a {KEYS[k]} figure must be above 0")
        out[k] = dict(row)
    missing = [k for k in KEYS if k not in out]
    if missing:
        fail(where, "params", f"has no row for {', '.join(missing)}; every key of allocsim.facts.cpu.KEYS needs a cited value")
    line = out["line_bytes"]["value"]
    if line & (line - 1):
        fail(f"{where}, key 'line_bytes'", "value", f"is {line}, which is not a power of two")
    for lvl in ("l1d", "l2", "llc"):
        size, ways = out[f"{lvl}_size"]["value"] * 1024, out[f"{lvl}_ways"]["value"]
        if size % (ways * line):
            fail(f"{where}, key '{lvl}_size'", "value", f"({out[f'{lvl}_size']['value']} KiB) is not a whole number of "
                 f"sets of {ways} ways x {line} B")
    if out["cpus_per_llc"]["value"] > MAX_CPUS_PER_LLC:
        fail(f"{where}, key 'cpus_per_llc'", "value", f"is {out['cpus_per_llc']['value']}; the model holds at most "
             f"{MAX_CPUS_PER_LLC} CPUs per LLC")
    lat = [out[k]["value"] for k in ("l1d_latency", "l2_latency", "llc_latency")]
    if not lat[0] <= lat[1] <= lat[2]:
        fail(f"{where}, key 'l2_latency'", "value", f"({lat[1]}) must lie from the L1d latency ({lat[0]}) to the LLC latency ({lat[2]})")
    return out


@lru_cache(maxsize=None)
def load() -> CPU:
    """``data/kernel/cpu.yaml``, read and checked."""
    p = path()
    where = label(p)
    doc = read_yaml(p)
    if not isinstance(doc, dict):
        fail(where, None, "must be a mapping of field: value at the top level")
    rows = _check(doc, where)
    return CPU(doc["machine"], doc["source"], rows)


on_clear(load.cache_clear)


@dataclass(frozen=True)
class Geometry:
    """What :func:`allocsim.kernel.cache.new_cache` needs: per level the number of sets and ways, the
    topology, and every latency in cycles (``lat_*``: L1d, L2, LLC hit; same-LLC, cross-LLC and cross-node
    transfer; memory)."""

    line_bytes: int
    l1_sets: int
    l1_ways: int
    l2_sets: int
    l2_ways: int
    llc_sets: int
    llc_ways: int
    cpus_per_llc: int
    llcs_per_node: int
    lat_l1: float
    lat_l2: float
    lat_llc: float
    lat_same_llc: float
    lat_cross_llc: float
    lat_cross_node: float
    lat_memory: float

    def with_(self, **changes) -> "Geometry":
        """A copy with some fields changed (tests use small caches)."""
        g = replace(self, **changes)
        g.check()
        return g

    def check(self) -> None:
        for name in ("l1_sets", "l1_ways", "l2_sets", "l2_ways", "llc_sets", "llc_ways", "cpus_per_llc", "llcs_per_node"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise AllocsimError(f"cache geometry {name} must be a whole number >= 1, not {v!r}")
        if self.cpus_per_llc > MAX_CPUS_PER_LLC:
            raise AllocsimError(f"cache geometry cpus_per_llc must be at most {MAX_CPUS_PER_LLC}, not {self.cpus_per_llc}")
        for name in ("lat_l1", "lat_l2", "lat_llc", "lat_same_llc", "lat_cross_llc", "lat_cross_node", "lat_memory"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v >= 0 and v == v and v != float("inf")):
                raise AllocsimError(f"cache geometry {name} must be a number of cycles >= 0, not {v!r}")


def geometry(clock_ghz: float = 3.0, cpu: CPU | None = None) -> Geometry:
    """The hierarchy of ``cpu`` (default: :func:`load`) in cycles at ``clock_ghz`` (ns x GHz for the transfers
    and the memory latency; the level latencies are the machine's cycles)."""
    if not (isinstance(clock_ghz, (int, float)) and not isinstance(clock_ghz, bool) and 0.1 <= clock_ghz <= 10):
        raise AllocsimError(f"clock_ghz must be a number from 0.1 to 10, not {clock_ghz!r}")
    if cpu is None:  # the default CPU: one geometry per clock (a model run asks for it every time)
        return _default_geometry(float(clock_ghz))
    return _geometry(clock_ghz, cpu)


@lru_cache(maxsize=64)
def _default_geometry(clock_ghz: float) -> Geometry:
    return _geometry(clock_ghz, load())


on_clear(_default_geometry.cache_clear)


def _geometry(clock_ghz: float, c: CPU) -> Geometry:
    v = c.value
    line = int(v("line_bytes"))

    def sets(lvl):
        return int(v(f"{lvl}_size") * 1024) // (int(v(f"{lvl}_ways")) * line)

    g = Geometry(
        line_bytes=line,
        l1_sets=sets("l1d"), l1_ways=int(v("l1d_ways")),
        l2_sets=sets("l2"), l2_ways=int(v("l2_ways")),
        llc_sets=sets("llc"), llc_ways=int(v("llc_ways")),
        cpus_per_llc=int(v("cpus_per_llc")), llcs_per_node=int(v("llcs_per_node")),
        lat_l1=float(v("l1d_latency")), lat_l2=float(v("l2_latency")), lat_llc=float(v("llc_latency")),
        lat_same_llc=float(v("transfer_same_llc")) * clock_ghz,
        lat_cross_llc=float(v("transfer_cross_llc")) * clock_ghz,
        lat_cross_node=float(v("transfer_cross_node")) * clock_ghz,
        lat_memory=float(v("memory")) * clock_ghz,
    )
    g.check()
    return g
