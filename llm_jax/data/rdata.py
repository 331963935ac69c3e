"""A small reader for R's lazy-load databases (`Rdata.rdx` + `Rdata.rdb`); it evaluates nothing."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import Any

_NIL, _SYM, _LIST, _LANG, _CHAR, _LGL, _INT, _REAL, _STR, _VEC = 254, 1, 2, 6, 9, 10, 13, 14, 16, 19
_REF, _ALTREP = 255, 238
_SINGLETONS = {253, 242, 241, 247, 251, 252}  # global/empty/base env, namespace, missing, unbound
_HAS_ATTR, _HAS_TAG = 1 << 9, 1 << 10


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos, self.refs = data, 0, []

    def int(self) -> int:
        (value,) = struct.unpack_from(">i", self.data, self.pos)
        self.pos += 4
        return value

    def take(self, n: int) -> bytes:
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def header(self) -> None:
        if self.take(2) != b"X\n":
            raise ValueError("not an R XDR serialization")
        version = self.int()
        self.int(), self.int()  # writer's R version, minimal reader version
        if version == 3:
            self.take(self.int())  # native encoding name

    def item(self) -> Any:
        flags = self.int()
        kind = flags & 0xFF
        if kind == _NIL or kind in _SINGLETONS:
            return None
        if kind == _REF:
            return self.refs[(flags >> 8) - 1]
        if kind == _SYM:
            symbol = ("symbol", self.item())
            self.refs.append(symbol)
            return symbol
        if kind == _CHAR:
            n = self.int()
            return None if n == -1 else self.take(n).decode("utf-8", "replace")
        if kind in (_LIST, _LANG):
            return self._pairlist(flags)
        if kind == _ALTREP:  # compact representation: (class info, state, attributes)
            _info, state, _attrs = self.item(), self.item(), self.item()
            return state
        if kind in (_STR, _VEC, _INT, _LGL, _REAL):
            return self._vector(kind, flags)
        raise ValueError(f"unsupported R object type {kind}")

    def _pairlist(self, flags: int):
        entries = []
        while (flags & 0xFF) in (_LIST, _LANG):
            if flags & _HAS_ATTR:
                self.item()
            tag = self.item() if flags & _HAS_TAG else None
            entries.append((tag[1] if tag else None, self.item()))
            flags = self.int()
        return dict(entries) if all(k for k, _ in entries) else [v for _, v in entries]

    def _vector(self, kind: int, flags: int):
        n = self.int()
        if kind in (_STR, _VEC):
            values = [self.item() for _ in range(n)]
        else:
            fmt, size = (f">{n}d", 8) if kind == _REAL else (f">{n}i", 4)
            values = list(struct.unpack_from(fmt, self.data, self.pos))
            self.pos += size * n
        if flags & _HAS_ATTR:
            attrs = self.item()
            if kind == _VEC and isinstance(attrs, dict) and "names" in attrs:
                return dict(zip(attrs["names"], values))
        return values


def unserialize(blob: bytes) -> Any:
    reader = _Reader(blob)
    reader.header()
    return reader.item()


def read_lazyload(rdx: Path, rdb: Path) -> dict[str, Any]:
    """Every variable of an R lazy-load database, by name."""
    index = unserialize(gzip.decompress(Path(rdx).read_bytes()))
    data = Path(rdb).read_bytes()
    out = {}
    for name, (offset, length) in index["variables"].items():
        blob = data[int(offset):int(offset) + int(length)]
        out[name] = unserialize(zlib.decompress(blob[4:]))  # 4-byte length, then zlib
    return out
