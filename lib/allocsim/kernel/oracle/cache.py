"""Pure-Python oracle of :mod:`allocsim.kernel.cache`: the same memory hierarchy written with dicts and
``OrderedDict`` (one per cache set, least recently used first), its own reading of ``data/kernel/cpu.yaml``
(with :mod:`yaml`, not through :mod:`allocsim.facts.cpu`) and its own arithmetic from KiB, ways and ns to
sets and cycles. It shares nothing with the numba model; the differential tests compare them access for
access (cycles, where the data came from, what a write invalidated) and counter for counter.

The rules, as the model's documentation states them:

* L1 ⊆ L2 per CPU, L2 ⊆ LLC of the CPU's domain (``cpus_per_llc`` consecutive CPUs); true LRU per set; a
  level's recency changes when an access reaches it.
* A private copy is S or M; at most one CPU holds a line M and then no one else holds it.
* A write invalidates every other copy; a read downgrades another CPU's M copy; a read from another
  domain of a line dirty in domain ``d`` takes it from ``d`` and leaves ``d`` clean.
* Cost: ``max(latency of where the data came from, transfer latency to the farthest invalidated copy)``.
"""

from __future__ import annotations

from collections import OrderedDict

import yaml

from allocsim.facts import paths

KINDS = ("L1", "L2", "LLC", "XSAME", "XLLC", "XNODE", "MEM")
INVS = (None, "same", "llc", "node")


def read_cpu(clock_ghz: float = 3.0) -> dict:
    """The hierarchy of ``data/kernel/cpu.yaml`` in sets, ways and cycles, computed here from the raw rows."""
    doc = yaml.safe_load((paths.DATA / "kernel" / "cpu.yaml").read_text())
    v = {row["key"]: row["value"] for row in doc["params"]}
    line = v["line_bytes"]

    def sets(size_kib, ways):
        return size_kib * 1024 // (ways * line)

    return {
        "l1": (sets(v["l1d_size"], v["l1d_ways"]), v["l1d_ways"]),
        "l2": (sets(v["l2_size"], v["l2_ways"]), v["l2_ways"]),
        "llc": (sets(v["llc_size"], v["llc_ways"]), v["llc_ways"]),
        "cpus_per_llc": v["cpus_per_llc"], "llcs_per_node": v["llcs_per_node"],
        "latency": {"L1": float(v["l1d_latency"]), "L2": float(v["l2_latency"]), "LLC": float(v["llc_latency"]),
                    "XSAME": v["transfer_same_llc"] * clock_ghz, "XLLC": v["transfer_cross_llc"] * clock_ghz,
                    "XNODE": v["transfer_cross_node"] * clock_ghz, "MEM": v["memory"] * clock_ghz},
    }


class Entry:
    """An LLC line: which CPUs of the domain hold it, which one holds it modified, whether it is dirty."""

    __slots__ = ("sharers", "writer", "dirty")

    def __init__(self):
        self.sharers = set()
        self.writer = None
        self.dirty = False


class Hierarchy:
    """Caches of ``ncpu`` CPUs. ``spec`` is :func:`read_cpu`'s dict (tests pass small ones)."""

    def __init__(self, ncpu: int, spec: dict):
        self.ncpu = ncpu
        self.spec = spec
        self.cpl = spec["cpus_per_llc"]
        self.lpn = spec["llcs_per_node"]
        self.ndom = (ncpu + self.cpl - 1) // self.cpl
        self.l1 = [dict() for _ in range(ncpu)]   # cpu -> {set index: OrderedDict(line -> "S"/"M")}
        self.l2 = [dict() for _ in range(ncpu)]
        self.llc = [dict() for _ in range(self.ndom)]  # domain -> {set index: OrderedDict(line -> Entry)}
        self.count = [dict.fromkeys(KINDS + INVS[1:], 0) for _ in range(ncpu)]

    # -- sets
    def _set(self, level, owner, line):
        sets, _ = self.spec[level]
        table = {"l1": self.l1, "l2": self.l2, "llc": self.llc}[level][owner]
        return table.setdefault(line % sets, OrderedDict())

    def _ways(self, level):
        return self.spec[level][1]

    def domain(self, cpu):
        return cpu // self.cpl

    def distance(self, d, e):
        if d == e:
            return "same"
        return "llc" if d // self.lpn == e // self.lpn else "node"

    # -- private copies
    def drop_private(self, cpu, line):
        self._set("l1", cpu, line).pop(line, None)
        self._set("l2", cpu, line).pop(line, None)

    def set_private(self, cpu, line, state):
        for level in ("l1", "l2"):
            s = self._set(level, cpu, line)
            if line in s:
                s[line] = state

    def drop_domain(self, d, line):
        ent = self._set("llc", d, line).pop(line)
        for cpu in ent.sharers:
            self.drop_private(cpu, line)

    def claim(self, cpu, line, ent):
        """``cpu`` writes: every other copy goes; returns the farthest invalidated distance (or None)."""
        d = self.domain(cpu)
        far = None
        rank = {None: 0, "same": 1, "llc": 2, "node": 3}
        for other in sorted(ent.sharers - {cpu}):
            self.drop_private(other, line)
            far = "same"
        for e in range(self.ndom):
            if e != d and line in self._set("llc", e, line):
                self.drop_domain(e, line)
                dist = self.distance(d, e)
                if rank[dist] > rank[far]:
                    far = dist
        ent.sharers = {cpu}
        ent.writer = cpu
        ent.dirty = True
        return far

    # -- installs
    def install_l2(self, cpu, line, state):
        s = self._set("l2", cpu, line)
        if len(s) >= self._ways("l2"):
            victim, _ = s.popitem(last=False)
            self._set("l1", cpu, victim).pop(victim, None)
            ent = self._set("llc", self.domain(cpu), victim).get(victim)
            if ent is not None:
                ent.sharers.discard(cpu)
                if ent.writer == cpu:
                    ent.writer = None
        s[line] = state

    def install_l1(self, cpu, line, state):
        s = self._set("l1", cpu, line)
        if len(s) >= self._ways("l1"):
            s.popitem(last=False)
        s[line] = state

    # -- one access
    def access(self, cpu, line, write):
        """Returns ``(cycles, kind, invalidated)``: kind in :data:`KINDS`, invalidated in :data:`INVS`."""
        s1 = self._set("l1", cpu, line)
        if line in s1:
            s1.move_to_end(line)
            inv = None
            if write and s1[line] != "M":
                inv = self.upgrade(cpu, line)
            return self.finish(cpu, "L1", inv)
        s2 = self._set("l2", cpu, line)
        if line in s2:
            s2.move_to_end(line)
            inv = None
            if write and s2[line] != "M":
                inv = self.upgrade(cpu, line)
            self.install_l1(cpu, line, s2[line])
            return self.finish(cpu, "L2", inv)
        d = self.domain(cpu)
        s3 = self._set("llc", d, line)
        inv = None
        if line in s3:
            s3.move_to_end(line)
            ent = s3[line]
            kind = "LLC"
            if ent.writer is not None and ent.writer != cpu:
                kind = "XSAME"
                if write:
                    self.drop_private(ent.writer, line)
                    ent.sharers.discard(ent.writer)
                else:
                    self.set_private(ent.writer, line, "S")
                ent.writer = None
            if write:
                inv = self.claim(cpu, line, ent)
            else:
                ent.sharers.add(cpu)
        else:
            src = None
            for e in range(self.ndom):
                if e != d:
                    other = self._set("llc", e, line).get(line)
                    if other is not None and other.dirty:
                        src = e
                        break
            if src is None:
                kind = "MEM"
            else:
                kind = "XLLC" if self.distance(d, src) == "llc" else "XNODE"
                if not write:
                    other = self._set("llc", src, line)[line]
                    if other.writer is not None:
                        self.set_private(other.writer, line, "S")
                    other.writer = None
                    other.dirty = False
            if len(s3) >= self._ways("llc"):
                victim = next(iter(s3))
                self.drop_domain(d, victim)
            ent = Entry()
            ent.sharers = {cpu}
            s3[line] = ent
            if write:
                inv = self.claim(cpu, line, ent)
        state = "M" if write else "S"
        self.install_l2(cpu, line, state)
        self.install_l1(cpu, line, state)
        return self.finish(cpu, kind, inv)

    def upgrade(self, cpu, line):
        ent = self._set("llc", self.domain(cpu), line)[line]
        inv = self.claim(cpu, line, ent)
        self.set_private(cpu, line, "M")
        return inv

    def finish(self, cpu, kind, inv):
        lat = self.spec["latency"]
        cycles = lat[kind]
        if inv is not None:
            cycles = max(cycles, lat[{"same": "XSAME", "llc": "XLLC", "node": "XNODE"}[inv]])
        self.count[cpu][kind] += 1
        if inv is not None:
            self.count[cpu][inv] += 1
        return cycles, kind, inv

    # -- views
    def contents(self):
        """The same shape as :func:`allocsim.kernel.cache.contents`."""
        out = {"l1": {}, "l2": {}, "llc": {}}
        for name, table in (("l1", self.l1), ("l2", self.l2)):
            for cpu in range(self.ncpu):
                out[name][cpu] = {ln: (2 if st == "M" else 1) for s in table[cpu].values() for ln, st in s.items()}
        for d in range(self.ndom):
            out["llc"][d] = {ln: (set(e.sharers), -1 if e.writer is None else e.writer, e.dirty)
                             for s in self.llc[d].values() for ln, e in s.items()}
        return out


def run_stream(ncpu: int, spec: dict, accesses) -> tuple[list, Hierarchy]:
    """Apply ``accesses`` (``(cpu, line, write)`` triples); returns the per-access results and the hierarchy."""
    h = Hierarchy(ncpu, spec)
    return [h.access(c, ln, bool(w)) for c, ln, w in accesses], h
