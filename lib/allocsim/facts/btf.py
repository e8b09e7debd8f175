"""A focused reader of the kernel's BPF Type Format (BTF), enough to answer ``sizeof`` and ``offsetof``.

The running kernel describes its own types in ``/sys/kernel/btf/vmlinux`` (``CONFIG_DEBUG_INFO_BTF``).
The format (Documentation/bpf/btf.rst, include/uapi/linux/btf.h) is small:

- a header: ``u16 magic = 0xeB9F``, ``u8 version = 1``, ``u8 flags``, ``u32 hdr_len``, then ``type_off``,
  ``type_len``, ``str_off``, ``str_len`` (``u32`` each, offsets counted from the end of the header);
- the type section: records ``struct btf_type {u32 name_off; u32 info; u32 size_or_type;}``, where
  ``info`` holds ``vlen`` (bits 0-15), ``kind`` (bits 24-28) and ``kind_flag`` (bit 31), each followed by
  kind-specific data (members, enum values, array bounds …); type ids count from 1 (0 is ``void``);
- the string section: NUL-terminated names addressed by ``name_off``.

Only what layout questions need is interpreted: sizes of INT, PTR, ARRAY, STRUCT, UNION, ENUM, ENUM64,
FLOAT, FWD (no size), TYPEDEF, CONST, VOLATILE, RESTRICT, TYPE_TAG, and struct/union member offsets; the
other kinds (FUNC, FUNC_PROTO, VAR, DATASEC, DECL_TAG) are skipped by their documented lengths. No
dependency on ``bpftool`` or libbpf. (PyPI has no maintained pure BTF parser; ``drgn`` can read kernel
types but is a full debugger with a compiled extension that wants ``/proc/kcore`` — too heavy for this.) Structs come back as :class:`allocsim.facts.structs.StructLayout`, so a
kernel layout and a modelled one are compared with the same API.
"""

from __future__ import annotations

import struct
from pathlib import Path

from allocsim.facts.errors import AllocsimError
from allocsim.facts.structs import StructLayout, _flatten, _Type

MAGIC = 0xEB9F
HEADER = struct.Struct("<HBBIIIII")  # magic, version, flags, hdr_len, type_off, type_len, str_off, str_len

# include/uapi/linux/btf.h: enum BTF_KIND_*
INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT = range(1, 12)
FUNC, FUNC_PROTO, VAR, DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = range(12, 20)
KIND_NAMES = {INT: "INT", PTR: "PTR", ARRAY: "ARRAY", STRUCT: "STRUCT", UNION: "UNION", ENUM: "ENUM",
              FWD: "FWD", TYPEDEF: "TYPEDEF", VOLATILE: "VOLATILE", CONST: "CONST", RESTRICT: "RESTRICT",
              FUNC: "FUNC", FUNC_PROTO: "FUNC_PROTO", VAR: "VAR", DATASEC: "DATASEC", FLOAT: "FLOAT",
              DECL_TAG: "DECL_TAG", TYPE_TAG: "TYPE_TAG", ENUM64: "ENUM64"}
# bytes of kind-specific data after the 12-byte btf_type: (fixed, per vlen item)
_EXTRA = {INT: (4, 0), PTR: (0, 0), ARRAY: (12, 0), STRUCT: (0, 12), UNION: (0, 12), ENUM: (0, 8),
          FWD: (0, 0), TYPEDEF: (0, 0), VOLATILE: (0, 0), CONST: (0, 0), RESTRICT: (0, 0), FUNC: (0, 0),
          FUNC_PROTO: (0, 8), VAR: (4, 0), DATASEC: (0, 12), FLOAT: (0, 0), DECL_TAG: (4, 0),
          TYPE_TAG: (0, 0), ENUM64: (0, 12)}
_SIZED = (INT, STRUCT, UNION, ENUM, ENUM64, FLOAT, DATASEC)
_REFS = (TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG)


class BTFError(AllocsimError):
    """A BTF blob that cannot be read: the message names the file and what is wrong."""


class BTF:
    """The types of one BTF blob. ``BTF.from_file(path)`` or ``BTF(data, name)``."""

    def __init__(self, data: bytes, name: str = "BTF data", pointer_size: int = 8):
        self.name = name
        self.pointer_size = pointer_size
        if len(data) < HEADER.size:
            raise BTFError(f"{name} is too short to be BTF ({len(data)} bytes)")
        magic = struct.unpack_from("<H", data)[0]
        if magic == 0x9FEB:
            raise BTFError(f"{name} is big-endian BTF, which this reader does not handle")
        if magic != MAGIC:
            raise BTFError(f"{name} does not start with the BTF magic 0xeb9f (found {magic:#06x})")
        _, version, _, hdr_len, type_off, type_len, str_off, str_len = HEADER.unpack_from(data)
        if version != 1:
            raise BTFError(f"{name} has BTF version {version}; this reader knows version 1")
        if hdr_len < HEADER.size or hdr_len + max(type_off + type_len, str_off + str_len) > len(data):
            raise BTFError(f"{name}: the header's section offsets point past the end of the data")
        self._types = memoryview(data)[hdr_len + type_off: hdr_len + type_off + type_len]
        self._strs = bytes(data[hdr_len + str_off: hdr_len + str_off + str_len])
        self._index()

    @classmethod
    def from_file(cls, path: str | Path) -> "BTF":
        p = Path(path)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise BTFError(f"{p} does not exist (a kernel built without CONFIG_DEBUG_INFO_BTF has no BTF)") from None
        except PermissionError:
            raise BTFError(f"{p} is not readable by this user (permission denied)") from None
        except OSError as exc:
            raise BTFError(f"{p} could not be read: {exc.strerror or exc}") from None
        return cls(data, str(p))

    # -- the type section ---------------------------------------------------------------------------
    def _index(self) -> None:
        """Record where each type id's record starts; names of STRUCT/UNION/TYPEDEF for lookup."""
        t, n = self._types, len(self._types)
        self._off = [0]  # id 0 is void
        self._by_name: dict[tuple[int, str], int] = {}
        pos = 0
        while pos < n:
            if pos + 12 > n:
                raise BTFError(f"{self.name}: type {len(self._off)} is cut off at the end of the type section")
            name_off, info = struct.unpack_from("<II", t, pos)
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            if kind not in _EXTRA:
                raise BTFError(f"{self.name}: type {len(self._off)} has unknown kind {kind}")
            fixed, per = _EXTRA[kind]
            self._off.append(pos)
            if kind in (STRUCT, UNION, TYPEDEF) and name_off:
                self._by_name.setdefault((kind, self._str(name_off)), len(self._off) - 1)
            pos += 12 + fixed + per * vlen
        if pos != n:
            raise BTFError(f"{self.name}: the last type runs past the end of the type section")

    def _str(self, off: int) -> str:
        if off >= len(self._strs):
            raise BTFError(f"{self.name}: a name offset ({off}) points outside the string section")
        end = self._strs.find(b"\0", off)
        return self._strs[off: end if end >= 0 else len(self._strs)].decode("utf-8", "replace")

    def __len__(self) -> int:
        return len(self._off) - 1

    def _rec(self, tid: int):
        if not 1 <= tid < len(self._off):
            raise BTFError(f"{self.name}: type id {tid} does not exist (there are {len(self)} types)")
        pos = self._off[tid]
        name_off, info, size_type = struct.unpack_from("<III", self._types, pos)
        return pos, self._str(name_off), (info >> 24) & 0x1F, info & 0xFFFF, bool(info >> 31), size_type

    def kind(self, tid: int) -> str:
        return KIND_NAMES[self._rec(tid)[2]]

    def find(self, name: str, kind: str = "struct") -> int | None:
        """Type id of ``struct name`` / ``union name`` / ``typedef name``, or None."""
        k = {"struct": STRUCT, "union": UNION, "typedef": TYPEDEF}[kind]
        return self._by_name.get((k, name))

    def size(self, tid: int, _depth: int = 0) -> int:
        """``sizeof`` the type with id ``tid``."""
        if _depth > 64:
            raise BTFError(f"{self.name}: type {tid} refers to itself through qualifiers or typedefs")
        pos, name, kind, vlen, _, size_type = self._rec(tid)
        if kind in _SIZED:
            return size_type
        if kind == PTR:
            return self.pointer_size
        if kind == ARRAY:
            elem, _, nelems = struct.unpack_from("<III", self._types, pos + 12)
            return nelems * self.size(elem, _depth + 1)
        if kind in _REFS:
            return self.size(size_type, _depth + 1)
        raise BTFError(f"{self.name}: type {tid} ({KIND_NAMES[kind]} {name!r}) has no size")

    def align(self, tid: int, _depth: int = 0) -> int:
        """``_Alignof`` the type (natural alignment: scalars their size, up to 8; aggregates their largest member)."""
        if _depth > 64:
            raise BTFError(f"{self.name}: type {tid} refers to itself")
        pos, _, kind, vlen, _, size_type = self._rec(tid)
        if kind in (INT, ENUM, ENUM64, FLOAT):
            return max(1, min(size_type, 16 if kind == FLOAT else 8))
        if kind == PTR:
            return self.pointer_size
        if kind == ARRAY:
            return self.align(struct.unpack_from("<I", self._types, pos + 12)[0], _depth + 1)
        if kind in _REFS:
            return self.align(size_type, _depth + 1)
        if kind in (STRUCT, UNION):
            return max([self.align(m[1], _depth + 1) for m in self.members(tid)] or [1])
        return 1

    def members(self, tid: int) -> list[tuple[str, int, int]]:
        """``(name, type id, bit offset)`` of each member of a STRUCT or UNION."""
        pos, name, kind, vlen, kflag, _ = self._rec(tid)
        if kind not in (STRUCT, UNION):
            raise BTFError(f"{self.name}: type {tid} ({name!r}) is a {KIND_NAMES[kind]}, not a struct or union")
        out = []
        for i in range(vlen):
            m_name, m_type, m_off = struct.unpack_from("<III", self._types, pos + 12 + 12 * i)
            out.append((self._str(m_name), m_type, (m_off & 0xFFFFFF) if kflag else m_off))
        return out

    def _type(self, tid: int, _depth: int = 0) -> _Type:
        """Translate a type to :class:`allocsim.facts.structs._Type` (struct/union members with byte offsets)."""
        if _depth > 64:
            raise BTFError(f"{self.name}: type {tid} nests too deeply")
        pos, _, kind, _, _, size_type = self._rec(tid)
        if kind in _REFS:
            return self._type(size_type, _depth + 1)
        if kind in (STRUCT, UNION):
            members = tuple((m_name, bit // 8, self._type(m_type, _depth + 1))
                            for m_name, m_type, bit in self.members(tid))
            return _Type(size_type, self.align(tid), "struct" if kind == STRUCT else "union", members)
        return _Type(self.size(tid), self.align(tid), "scalar")

    def struct_layout(self, name: str) -> StructLayout | None:
        """``struct name`` as a :class:`StructLayout` (anonymous members flattened as in C), or None if this
        kernel has no such struct (e.g. ``slab_sheaf`` before 6.18)."""
        tid = self.find(name, "struct")
        if tid is None:
            return None
        t = self._type(tid)
        fields = tuple(sorted(_flatten(t, 0), key=lambda f: f.offset))
        return StructLayout(name, t.size, t.align, fields, f"BTF {self.name}", t)


def build(types: list[tuple], strings: list[str] | None = None) -> bytes:
    """Assemble a little-endian BTF blob from ``(kind, name, info_vlen, kind_flag, size_or_type, extra_bytes)``
    tuples — for tests and for documenting the format; names are added to the string section."""
    strtab = bytearray(b"\0")
    offsets = {"": 0}

    def name_off(s: str) -> int:
        if s not in offsets:
            offsets[s] = len(strtab)
            strtab.extend(s.encode() + b"\0")
        return offsets[s]

    for s in strings or ():
        name_off(s)
    body = bytearray()
    for kind, name, vlen, kflag, size_type, extra in types:
        info = (int(kflag) << 31) | (kind << 24) | vlen
        body += struct.pack("<III", name_off(name), info, size_type)
        body += extra(name_off) if callable(extra) else extra
    hdr = HEADER.pack(MAGIC, 1, 0, HEADER.size, 0, len(body), len(body), len(strtab))
    return hdr + bytes(body) + bytes(strtab)
