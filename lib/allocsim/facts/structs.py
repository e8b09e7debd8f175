"""C struct layout on x86-64, computed from the field lists in ``data/kernel/structs.yaml``.

The kernel's own sizes (``sizeof(struct iomap_dio)``, ``offsetof(struct slab_sheaf, objects)``, the
8-byte ``struct pcpu_cache_element`` header of the per-CPU cache patch) are not typed anywhere in the
book: they follow from the field lists with the rules a C compiler applies on x86-64 (System V ABI):

- every member starts at the next multiple of its alignment;
- a union is as large as its largest member, all members at offset 0;
- a struct's alignment is its largest member alignment, and its size is padded to a multiple of it;
- a flexible array member (``void *objects[];``) has size 0 but its element's alignment;
- an empty struct has size 0 (GNU C; e.g. ``local_lock_t`` without lockdep).

Members of anonymous structs and unions are reachable from the containing struct, as in C
(``offsetof(struct iomap_dio, aio)``); named nested members with dotted paths (``"submit.waiter"``).

API: :func:`load` (``StructLayout(name, size, align, fields=(Field(name, offset, size), ...))``),
:func:`offsetof`, :func:`sizeof`, :func:`names`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from allocsim.facts.errors import AllocsimError, DataError
from allocsim.facts.datafile import kernel_yaml as _yaml, on_clear
from allocsim.facts.versions import VERSIONS, check_version

_FILE = "data/kernel/structs.yaml"


@dataclass(frozen=True)
class Field:
    """One member as C sees it from the containing struct: name, byte offset, size in bytes."""

    name: str
    offset: int
    size: int


@dataclass(frozen=True)
class _Type:
    size: int
    align: int
    kind: str  # "scalar" | "struct" | "union" | "array"
    # (name, offset, type) for struct/union members, in declaration order; "" for anonymous ones
    members: tuple = ()
    flex: bool = False  # ends in a flexible array member


@dataclass(frozen=True)
class StructLayout:
    """The computed layout of one struct: ``size`` (``sizeof``), ``align`` (``_Alignof``) and the
    members reachable from it (anonymous struct/union members flattened), in offset order."""

    name: str
    size: int
    align: int
    fields: tuple[Field, ...]
    source: str = ""
    _type: _Type = field(default=None, repr=False, compare=False)

    def field(self, path: str) -> Field:
        """The member at ``path`` (``"objects"``, ``"aio"``, ``"submit.waiter"``)."""
        t, offset = self._type, 0
        parts = path.split(".")
        for i, part in enumerate(parts):
            hit = _find_member(t, part)
            if hit is None:
                where = f"struct {self.name}" if i == 0 else f"{'.'.join(parts[:i])} of struct {self.name}"
                known = ", ".join(f.name for f in _flatten(t, 0)) or "none"
                raise AllocsimError(f"{where} has no member {part!r}; its members are: {known}")
            off, t = hit
            offset += off
        return Field(path, offset, t.size)

    def offsetof(self, path: str) -> int:
        return self.field(path).offset


def _find_member(t: _Type, name: str):
    """(offset, type) of member ``name`` of ``t``, looking through anonymous members as C does."""
    if t.kind not in ("struct", "union"):
        return None
    for mname, off, mt in t.members:
        if mname == name:
            return off, mt
        if mname == "":
            hit = _find_member(mt, name)
            if hit is not None:
                return off + hit[0], hit[1]
    return None


def _flatten(t: _Type, base: int) -> list[Field]:
    out = []
    for mname, off, mt in t.members:
        if mname == "":
            out.extend(_flatten(mt, base + off))
        else:
            out.append(Field(mname, base + off, mt.size))
    return out


def _align_up(x: int, a: int) -> int:
    return (x + a - 1) // a * a


_CHECKED: list[dict] = []


@on_clear
def _forget() -> None:
    _CHECKED.clear()
    load.cache_clear()


def _doc() -> dict:
    """``data/kernel/structs.yaml``; on first read every scalar and every struct is checked (laid out once
    for each known kernel version), so a malformed entry is refused when the file is loaded."""
    doc = _yaml("structs.yaml")
    if not any(d is doc for d in _CHECKED):
        for name in doc["scalars"]:
            _scalar(doc, name)
        for name, spec in doc["structs"].items():
            if not isinstance(spec, dict) or not str(spec.get("source", "")).strip():
                raise DataError(f"{_FILE}: struct {name!r} needs a 'source' (file and kernel version)")
            for v in VERSIONS:
                _compose(doc, spec, f"struct {name}", (name,), v)
        _CHECKED.append(doc)
    return doc


def scalar_size(name: str) -> int:
    """``sizeof`` a scalar type of ``data/kernel/structs.yaml`` (``"pointer"`` is ``sizeof(void *)``)."""
    doc = _doc()
    if name not in doc["scalars"]:
        raise AllocsimError(f"unknown scalar type {name!r}; the known scalars are: {', '.join(doc['scalars'])}")
    return _scalar(doc, name).size


def _scalar(doc: dict, name: str) -> _Type:
    spec = doc["scalars"][name]
    if (not isinstance(spec, list) or len(spec) != 2 or not all(isinstance(v, int) and v > 0 for v in spec)
            or spec[1] & (spec[1] - 1) or spec[0] % spec[1]):
        raise DataError(f"{_FILE}: scalar {name!r} must be [size, alignment] with a power-of-two alignment dividing the size, not {spec!r}")
    return _Type(spec[0], spec[1], "scalar")


def _vkey(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def _resolve(doc: dict, spec, where: str, stack: tuple, version: str | None = None) -> _Type:
    """The _Type of a field type: a scalar name, a struct name, or an inline {kind, fields} mapping."""
    if isinstance(spec, str):
        if spec in doc["scalars"]:
            return _scalar(doc, spec)
        if spec in doc["structs"]:
            if spec in stack:
                raise DataError(f"{_FILE}: struct {spec!r} contains itself (through {' -> '.join(stack)})")
            return _compose(doc, doc["structs"][spec], f"struct {spec}", stack + (spec,), version)
        raise DataError(f"{_FILE}: {where} has unknown type {spec!r}; known types are the scalars and structs in the file")
    if isinstance(spec, dict):
        return _compose(doc, spec, where, stack, version)
    raise DataError(f"{_FILE}: {where} has a type that is neither a name nor an inline struct/union: {spec!r}")


def _compose(doc: dict, spec: dict, where: str, stack: tuple, version: str | None = None) -> _Type:
    """Lay out a struct or union from its field list with the C rules (see the module docstring);
    members marked ``since: X`` are left out when ``version`` is older than X."""
    kind = spec.get("kind", "struct")
    if kind not in ("struct", "union"):
        raise DataError(f"{_FILE}: {where} has kind {kind!r}; allowed are struct and union")
    fields = spec.get("fields")
    if not isinstance(fields, list) or not fields:
        raise DataError(f"{_FILE}: {where} needs a non-empty list 'fields'")
    members, offset, size, align, flex = [], 0, 0, 1, False
    seen = set()
    for i, f in enumerate(fields):
        if not isinstance(f, dict) or "name" not in f or "type" not in f:
            raise DataError(f"{_FILE}: {where} field {i} must be a mapping with 'name' and 'type'")
        name = f["name"] or ""
        fwhere = f"{where} field {name or i!r}"
        if name and name in seen:
            raise DataError(f"{_FILE}: {fwhere} is declared twice")
        seen.add(name)
        if flex:
            raise DataError(f"{_FILE}: {where}: a flexible array member must be the last field")
        since = f.get("since")
        if since is not None:
            try:
                since_key = _vkey(check_version(str(since)))
            except AllocsimError:
                raise DataError(f"{_FILE}: {fwhere}: 'since' must be a known kernel version, not {since!r}") from None
            if version is not None and _vkey(version) < since_key:
                continue
        t = _resolve(doc, f["type"], fwhere, stack, version)
        arr = f.get("array")
        if arr == "flex":
            if kind != "struct":
                raise DataError(f"{_FILE}: {fwhere}: a flexible array member is only allowed in a struct")
            t, flex = _Type(0, t.align, "array"), True
        elif arr is not None:
            if not isinstance(arr, int) or isinstance(arr, bool) or arr < 1:
                raise DataError(f"{_FILE}: {fwhere}: 'array' must be a positive integer or 'flex', not {arr!r}")
            t = _Type(t.size * arr, t.align, "array")
        align = max(align, t.align)
        if kind == "struct":
            offset = _align_up(offset, t.align)
            members.append((name, offset, t))
            offset += t.size
        else:
            members.append((name, 0, t))
            size = max(size, t.size)
    total = offset if kind == "struct" else size
    return _Type(_align_up(total, align), align, kind, tuple(members), flex)


@lru_cache(maxsize=None)
def load(name: str, version: str | None = None) -> StructLayout:
    """The layout of ``struct <name>`` on x86-64, computed from ``data/kernel/structs.yaml``; with
    ``version`` (``"6.18"`` …, aliases accepted), as that kernel version declares it (default: the newest)."""
    doc = _doc()
    if version is not None:
        version = check_version(version)
    if not isinstance(name, str) or name not in doc["structs"]:
        raise AllocsimError(f"unknown struct {name!r}; the known structs are: {', '.join(names())}")
    spec = doc["structs"][name]
    if not isinstance(spec, dict) or not str(spec.get("source", "")).strip():
        raise DataError(f"{_FILE}: struct {name!r} needs a 'source' (file and kernel version)")
    t = _compose(doc, spec, f"struct {name}", (name,), version)
    fields = tuple(sorted(_flatten(t, 0), key=lambda f: f.offset))
    return StructLayout(name, t.size, t.align, fields, str(spec["source"]), t)


def names() -> tuple[str, ...]:
    """Every struct described in ``data/kernel/structs.yaml``."""
    return tuple(_doc()["structs"])


def sizeof(name: str, version: str | None = None) -> int:
    return load(name, version).size


def offsetof(name: str, path: str, version: str | None = None) -> int:
    return load(name, version).offsetof(path)
