"""Snapshot files that are data only (DESIGN §12): JSON, numpy ``.npy`` and Arrow IPC in one checksummed file.

A snapshot file is what users pass between machines, so reading one must never run code: nothing is unpickled, and
nothing is imported or called by a name the file supplies. The file names value types only from a closed list of
this package's own frozen dataclasses (:func:`_part_types`), rebuilt through their constructors (which validate
and derive their caches), and embedders only by kind, each rebuilt by this package's own code.

Layout::

    TINYDANCER-SNAPSHOT\\n
    {"format": 2, "version": "0.1.0", "embedder": "...", "as_of_us": ..., "agents": A, "routes": R}\\n
    a zip archive, every member stored (not compressed), then a newline:
        snapshot.json   the snapshot as a tree of JSON values, in which an array stands as {"$npy": i} or
                        {"$arrow": i, "as": "array" | "chunked" | "table"}, a tuple as {"$tuple": [...]}, a dict
                        as {"$dict": [[key, value], ...]}, a value type as {"$value": "AgentSnapshot", "fields":
                        {...}}, the embedder as {"$embedder": {"kind": ..., ...}}
        i.npy           numpy arrays (np.save, allow_pickle=False)
        i.arrow         Arrow arrays and tables (IPC file format: types and schema metadata exact)
    tds-sha256 <64 hex digits>\\n          (or tds-hmac-sha256 ... for a file signed with a key)

The last line is SHA-256 over every byte before it (HMAC-SHA256 with the user's key when signed), so any changed
byte is refused before anything else is read. A plain checksum catches accidents; only a signature proves who made
the file. The packaged static embedder travels by its fingerprint; a custom table by value as ``.npy``.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pyarrow import ipc

from tinydancer_duck.errors import InvalidArgument, ModelError

MAGIC = b"TINYDANCER-SNAPSHOT\n"
#: 1: a pickle after the header (refused: unpickling runs code); 2: this layout.
FORMAT = 2
PICKLED_FORMAT = 1
TREE = "snapshot.json"
_SUMS = {b"tds-sha256": False, b"tds-hmac-sha256": True}  # trailer tag -> signed
_MEMBER = re.compile(r"^\d{1,9}\.(npy|arrow)$")
RECREATE = "re-create it with `tinydancer snapshot --store STORE -o FILE` (or Engine.snapshot().save(path))"


def write(snapshot: Any, path: str | Path, header: dict[str, Any], key: bytes | None) -> Path:
    """Write ``snapshot`` to ``path`` (atomically: a temporary file renamed into place)."""
    tree = _Tree(type(snapshot))
    root = tree.encode(snapshot, "snapshot")
    body = io.BytesIO()
    with zipfile.ZipFile(body, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(_member(TREE), json.dumps(root, separators=(",", ":")))
        for i, (suffix, data) in enumerate(tree.arrays):
            archive.writestr(_member(f"{i}.{suffix}"), data)
    content = MAGIC + json.dumps({"format": FORMAT, **header}).encode() + b"\n" + body.getvalue()
    tag = b"tds-hmac-sha256" if key is not None else b"tds-sha256"
    content += b"\n" + tag + b" " + _digest(content, key).encode() + b"\n"
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(content)
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise InvalidArgument("path", str(path), f"cannot be written ({exc.strerror or exc})") from None
    return target


def read(path: str | Path, key: bytes | None, version: str, root: type) -> tuple[dict[str, Any], Any]:
    """(header, snapshot of type ``root``) of a file written by :func:`write`: InvalidArgument naming ``path``
    when it is not one, is damaged, is signed and ``key`` does not verify it (or is not signed and a key was
    given), was written by another package ``version``, or is an old pickled snapshot (with how to re-create
    it)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidArgument("path", str(path), f"cannot be read ({exc.strerror or exc})") from None
    refuse = (lambda why: InvalidArgument("path", str(path), why))
    header, start = _header(data, refuse)
    _check_sum(data, key, refuse)
    if header.get("version") != version:
        raise refuse(f"was written by tinydancer_duck {header.get('version')} (snapshot format {FORMAT}); this is "
                     f"{version}: make the snapshot again with this version")
    try:
        with zipfile.ZipFile(io.BytesIO(data[start: data.rindex(b"\n", 0, len(data) - 1)])) as archive:
            return header, _Tree(root, archive).decode(json.loads(_read_member(archive, TREE)))
    except _Refused as exc:
        raise refuse(f"holds {exc} (it was not written by RoutingSnapshot.save)") from None
    except InvalidArgument as exc:  # a part's own validation refused what the file holds
        raise refuse(f"holds a snapshot part this version refuses ({exc})") from None
    except (ValueError, KeyError, TypeError, EOFError, OSError, MemoryError, RecursionError, zipfile.BadZipFile,
            pa.ArrowException) as exc:  # checksummed but malformed: made by hand
        raise refuse(f"does not hold a readable snapshot ({type(exc).__name__}: "
                     f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def check_key(key: Any) -> bytes | None:
    """The signing key as bytes (text is UTF-8 encoded); None for no key."""
    if key is None:
        return None
    if isinstance(key, str):
        key = key.encode()
    if not isinstance(key, (bytes, bytearray)) or not key:
        raise InvalidArgument("key", "<hidden>", "must be non-empty bytes or text (the secret to sign with)")
    return bytes(key)


# -- header and checksum ----------------------------------------------------------------------------------------
def _header(data: bytes, refuse: Callable[[str], Exception]) -> tuple[dict[str, Any], int]:
    """(the header, where the archive starts); refused unless it is a header of this format."""
    if not data.startswith(MAGIC):
        raise refuse("is not a tinydancer snapshot file (make one with `tinydancer snapshot` or "
                     "RoutingSnapshot.save)")
    end = data.find(b"\n", len(MAGIC))
    try:
        header = json.loads(data[len(MAGIC):end]) if end > 0 else None
    except (ValueError, RecursionError):
        header = None
    if not isinstance(header, dict):
        raise refuse("is a damaged snapshot file (its header line is not readable); " + RECREATE)
    if header.get("format") == PICKLED_FORMAT:
        raise refuse("is a snapshot of the old pickled format (format 1), which could run code when read and is "
                     "no longer loaded; " + RECREATE)
    if header.get("format") != FORMAT:
        raise refuse(f"has snapshot format {str(header.get('format'))[:20]!r}; this version reads format {FORMAT}")
    return header, end + 1


def _digest(content: bytes, key: bytes | None) -> str:
    return hmac.new(key, content, hashlib.sha256).hexdigest() if key is not None else \
        hashlib.sha256(content).hexdigest()


def _check_sum(data: bytes, key: bytes | None, refuse: Callable[[str], Exception]) -> None:
    """Refuse unless the last line is this file's checksum, or its signature under ``key``."""
    start = data.rfind(b"\n", 0, len(data) - 1)
    tag, _, digest = data[start + 1:].rstrip(b"\n").partition(b" ")
    if tag not in _SUMS or not data.endswith(b"\n") or len(digest) != 64:
        raise refuse("is a damaged snapshot file (its checksum line is missing or cut short); " + RECREATE)
    signed = _SUMS[tag]
    if signed and key is None:
        raise refuse("is signed: load it with the key it was signed with (RoutingSnapshot.load(path, key=...))")
    if not signed and key is not None:
        raise refuse("is not signed, but a key was given: it may have been replaced; ask its maker for a signed "
                     "file, or load it without a key if you trust where it came from")
    if not hmac.compare_digest(_digest(data[:start], key).encode(), digest):
        raise refuse("does not match its signature: the key is wrong, or the file was changed after it was signed"
                     if signed else "is damaged: its bytes do not match the checksum it was written with (a byte "
                     "changed since it was saved); " + RECREATE)


# -- the tree ---------------------------------------------------------------------------------------------------
class _Refused(Exception):
    """What a file names that a snapshot never holds."""


class _Tree:
    """The snapshot as JSON values and arrays (see the module docstring), both ways.

    root : the snapshot's type; with :func:`_part_types` the closed list of types a file may name.
    archive : the zip to read arrays from (decoding); arrays : (suffix, bytes) of each array (encoding).
    """

    def __init__(self, root: type, archive: zipfile.ZipFile | None = None) -> None:
        self.types = {root.__name__: root, **_part_types()}
        self.archive = archive
        self.arrays: list[tuple[str, bytes]] = []

    def encode(self, value: Any, where: str) -> Any:
        """``value`` as JSON values; ``where`` names the field for an error."""
        from tinydancer_duck.embed import Embedder

        if isinstance(value, np.ndarray | np.generic):  # before float: np.float64 is a float too
            scalar = {"scalar": True} if isinstance(value, np.generic) else {}
            return {"$npy": self.add("npy", _npy(np.asarray(value))), **scalar}
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, pa.Array | pa.ChunkedArray | pa.Table):
            kind = "table" if isinstance(value, pa.Table) else "chunked" if isinstance(value, pa.ChunkedArray) \
                else "array"
            return {"$arrow": self.add("arrow", _arrow(value)), "as": kind}
        if isinstance(value, tuple | list):
            items = [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
            return {"$tuple": items} if isinstance(value, tuple) else items
        if isinstance(value, Mapping):
            return {"$dict": [[self.encode(k, where), self.encode(v, f"{where}[{k!r}]")] for k, v in value.items()]}
        if is_dataclass(value) and self.types.get(type(value).__name__) is type(value):
            return {"$value": type(value).__name__,
                    "fields": {f.name: self.encode(getattr(value, f.name), f"{where}.{f.name}")
                               for f in fields(value) if f.init}}
        if isinstance(value, Embedder):
            return {"$embedder": _embedder_fields(value, self)}
        raise InvalidArgument("snapshot", where, f"holds a {type(value).__name__}, which a snapshot file cannot "
                              "hold")

    def add(self, suffix: str, data: bytes) -> int:
        self.arrays.append((suffix, data))
        return len(self.arrays) - 1

    def decode(self, node: Any) -> Any:
        """The value of a tree node; _Refused for anything :meth:`encode` does not make."""
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict) or len([k for k in node if k.startswith("$")]) != 1:
            raise _Refused(f"an unknown value {str(node)[:60]!r}")
        if "$npy" in node:
            array = self.npy(node["$npy"])
            return array[()] if node.get("scalar") else array
        if "$arrow" in node:
            table = ipc.open_file(io.BytesIO(_read_member(self.archive, f"{node['$arrow']}.arrow"))).read_all()
            kind = node.get("as")
            if kind not in ("array", "chunked", "table"):
                raise _Refused(f"an unknown Arrow value {str(kind)[:20]!r}")
            return table if kind == "table" else table["v"] if kind == "chunked" else table["v"].combine_chunks()
        if "$tuple" in node:
            return tuple(self.decode(v) for v in _list(node["$tuple"]))
        if "$dict" in node:
            return {self.decode(k): self.decode(v) for k, v in _list(node["$dict"], pairs=True)}
        if "$value" in node:
            return self._value(node)
        if "$embedder" in node:
            return _embedder(node["$embedder"], self)
        raise _Refused(f"an unknown value {next(iter(node))[:20]!r}")

    def npy(self, index: Any) -> np.ndarray:
        return np.load(io.BytesIO(_read_member(self.archive, f"{index}.npy")), allow_pickle=False)

    def _value(self, node: dict[str, Any]) -> Any:
        """A type of the closed list, rebuilt by its constructor from exactly its fields."""
        cls = self.types.get(node["$value"]) if isinstance(node["$value"], str) else None
        if cls is None:
            raise _Refused(f"a value of type {str(node['$value'])[:40]!r}, which is not a snapshot part")
        given = node.get("fields")
        if not isinstance(given, dict) or set(given) != {f.name for f in fields(cls) if f.init}:
            raise _Refused(f"a {cls.__name__} whose fields differ from this version's")
        return cls(**{name: self.decode(value) for name, value in given.items()})


def _list(node: Any, *, pairs: bool = False) -> list:
    if not isinstance(node, list) or (pairs and not all(isinstance(p, list) and len(p) == 2 for p in node)):
        raise _Refused("a malformed list")
    return node


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array) if array.ndim else array, allow_pickle=False)
    return buffer.getvalue()


def _arrow(value: pa.Array | pa.ChunkedArray | pa.Table) -> bytes:
    table = value if isinstance(value, pa.Table) else pa.table({"v": value})
    sink = io.BytesIO()
    with ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _read_member(archive: zipfile.ZipFile | None, name: str) -> bytes:
    """One stored member, by a name of this format's own making (never a path: nothing is extracted)."""
    if archive is None or (name != TREE and not _MEMBER.match(name)):
        raise _Refused(f"a member named {name[:40]!r}")
    info = archive.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED:
        raise _Refused(f"a compressed member {name!r}")
    return archive.read(info)


def _member(name: str) -> zipfile.ZipInfo:
    return zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # the same snapshot gives the same bytes


def _part_types() -> dict[str, type]:
    """The types a snapshot's parts have (all frozen dataclasses of this package): with the snapshot's own, the
    closed list a file may name."""
    from tinydancer_duck.embed import EvidenceCalibration
    from tinydancer_duck.learn import FastGRNNParams, OutcomeModel, RouteClassifier
    from tinydancer_duck.registry import AgentSnapshot
    from tinydancer_duck.semantic import RouteConditions, RouteSnapshot
    from tinydancer_duck.settings import Settings

    return {cls.__name__: cls for cls in (AgentSnapshot, RouteSnapshot, RouteConditions, RouteClassifier,
                                          FastGRNNParams, OutcomeModel, Settings, EvidenceCalibration)}


# -- the embedder -----------------------------------------------------------------------------------------------
def _embedder_fields(embedder: Any, tree: _Tree) -> dict[str, Any]:
    """The packaged embedder kinds as data: the packaged static table by its fingerprint, another static table by
    value (in the dtype it was stored in), hashing by its dimension, the default onnx model by its identity."""
    from tinydancer_duck.embed import HashingEmbedder, StaticEmbedder

    base = {"identity": embedder.identity, "max_tokens": getattr(embedder, "max_tokens", None)}
    if type(embedder) is HashingEmbedder:
        return {"kind": "hashing", "dim": embedder.dim, **base}
    if type(embedder) is StaticEmbedder:
        if embedder.packaged:  # the embedder's own by-value form: (identity, fingerprint, max_tokens)
            return {"kind": "static", "fingerprint": embedder.__reduce__()[1][1], **base}
        table = embedder.__reduce__()[1][0]  # in the dtype it was stored in, so a reader sums the same floats
        return {"kind": "static", "table": tree.add("npy", _npy(table)), **base}
    if getattr(embedder, "kind", None) == "onnx" and embedder.__reduce__()[1][:2] == (None, None):
        return {"kind": "onnx", **base}
    raise InvalidArgument("embedder", embedder.identity, "a snapshot file holds the packaged embedders only "
                          "(static tables, hashing, the default onnx model); pass a snapshot of another embedder by "
                          "value in memory instead")


def _embedder(spec: Any, tree: _Tree) -> Any:
    """The embedder a file describes, built by this package's public constructors (ModelError when this
    installation cannot build the same one, e.g. it ships another static table)."""
    from tinydancer_duck.embed import HashingEmbedder, make_embedder

    if not isinstance(spec, dict) or not isinstance(spec.get("identity"), str):
        raise _Refused("a malformed embedder")
    kind, identity = spec.get("kind"), spec["identity"]
    if kind == "hashing":
        embedder = HashingEmbedder(int(spec["dim"]), max_tokens=int(spec["max_tokens"]))
    elif kind == "static" and "fingerprint" in spec:
        rebuild, _ = make_embedder("static").__reduce__()  # this installation's function, never the file's
        embedder = rebuild(identity, str(spec["fingerprint"]), int(spec["max_tokens"]))
    elif kind == "static":
        embedder = _static_table(tree.npy(int(spec["table"])), identity, int(spec["max_tokens"]))
    elif kind == "onnx":
        embedder = make_embedder("onnx")
    else:
        raise _Refused(f"an embedder of kind {str(kind)[:20]!r}")
    if embedder.identity != identity:
        raise ModelError(f"this snapshot was made with the embedder {identity}, but this installation builds "
                         f"{embedder.identity}")
    return embedder


def _static_table(table: np.ndarray, identity: str, max_tokens: int) -> Any:
    """A static embedder of a table shipped by value, through its public constructor (which reads a file)."""
    import tempfile

    from tinydancer_duck.embed import StaticEmbedder

    if table.ndim != 2 or table.dtype.kind != "f" or not identity.startswith("static:"):
        raise _Refused(f"a static embedder table of shape {table.shape} and dtype {table.dtype}")
    with tempfile.TemporaryDirectory() as folder:
        np.save(Path(folder) / "table.npy", table, allow_pickle=False)
        return StaticEmbedder(Path(folder) / "table.npy", max_tokens=max_tokens,
                              name=identity[len("static:"): identity.rfind(":")])
