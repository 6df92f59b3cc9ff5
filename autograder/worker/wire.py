"""The wire format between the trusted grader and the worker: plain data only.

A message is a JSON document plus one ``safetensors`` blob holding its tensors,
framed as ``<json length> <blob length> <json> <blob>`` (two unsigned 64-bit
big-endian integers). Only these values cross, and decoding never runs code
(no pickle): ``None``, ``bool``, ``int``, ``float``, ``str``, lists, tuples,
dicts (any plain keys), ``torch.Tensor`` (dense, on the CPU, as raw bytes),
``numpy.ndarray``, ``torch.dtype``, ``torch.device``, a ``torch.Generator``
(as its state), and references to objects that stay in the worker
(:class:`Handle`) or that the worker builds from plain state (:class:`Construct`).
A tensor subclass is sent as the plain tensor of its data: whatever it
pretended inside the worker, the grader receives numbers.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import torch

__all__ = ["Handle", "Construct", "WireError", "encode", "decode", "frame", "header", "parse", "send", "recv",
           "HEADER_BYTES", "MAX_JSON", "MAX_BLOB", "MAX_TENSORS"]

MAX_JSON = 64 * 2**20
"""Largest JSON part of a request (bytes); answers have the grader's own, smaller, limits."""
MAX_BLOB = 1024 * 2**20
"""Largest tensor blob of a request (bytes)."""
MAX_TENSORS = 100_000
"""Most tensors in one request."""
_MAX_SAFETENSORS_HEADER = 8 * 2**20
_MAX_DEPTH = 64
_HEADER = struct.Struct(">QQ")
_DTYPES = {
    str(d).removeprefix("torch."): d
    for d in (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
              torch.float16, torch.bfloat16, torch.float32, torch.float64)
}


class WireError(ValueError):
    """A message that is not plain data, is malformed, or is too large."""


@dataclass(frozen=True)
class Handle:
    """A reference to an object that lives in the worker (a model, a figure...)."""

    id: int
    type: str = ""
    is_module: bool = False


@dataclass
class Construct:
    """An object the worker builds from plain state before a call: ``cls(**kwargs)`` then ``load_state_dict(state)``.

    ``cls`` is a dotted name such as ``"supercourse.model.ToyModel"``, or
    ``"lesson:ScriptedModel"`` for a helper of the lesson's ``worker.py`` (the
    worker builds only classes of ``supercourse``, ``torch`` and the lesson's helpers). After the call, the worker sends back the object's
    ``state_dict()`` as plain tensors (:attr:`final_state`) and, for a spy,
    what it recorded (:attr:`records`: untrusted, for messages only).
    """

    cls: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    state: dict[str, torch.Tensor] | None = None
    final_state: dict[str, torch.Tensor] | None = None
    records: Any = None


def _tensor_to_wire(t: torch.Tensor, blobs: dict[str, torch.Tensor]) -> str:
    t = torch.Tensor.as_subclass(t, torch.Tensor) if type(t) is not torch.Tensor and not isinstance(t, torch.nn.Parameter) else t
    if t.is_sparse or t.is_quantized or t.is_complex() or t.device.type == "meta":
        raise WireError(f"cannot send a tensor of layout {t.layout}, dtype {t.dtype} on {t.device}")
    if str(t.dtype).removeprefix("torch.") not in _DTYPES:
        raise WireError(f"cannot send a tensor of dtype {t.dtype}")
    key = f"t{len(blobs)}"
    with torch.no_grad():
        blobs[key] = t.detach().to("cpu").contiguous().clone()
    return key


def encode(value: Any, blobs: dict[str, torch.Tensor], handle_of=None, depth: int = 0) -> Any:
    """``value`` as JSON-able data; tensors go into ``blobs``.

    ``handle_of(obj) -> Handle`` is called for any other object (the worker
    keeps it and sends a reference); without it such objects are an error.
    """
    if depth > _MAX_DEPTH:
        raise WireError("data nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        f = float(value)
        return f if math.isfinite(f) else {"__float__": repr(f)}
    if isinstance(value, torch.Tensor):
        meta = {"__tensor__": _tensor_to_wire(value, blobs)}
        if isinstance(value, torch.nn.Parameter):
            meta["parameter"] = True
        if value.requires_grad:
            meta["requires_grad"] = True
        if value.device.type != "cpu":
            meta["device"] = str(value.device)
        return meta
    if isinstance(value, torch.dtype):
        return {"__dtype__": str(value).removeprefix("torch.")}
    if isinstance(value, torch.device):
        return {"__device__": str(value)}
    if isinstance(value, torch.Size):
        return {"__tuple__": [int(v) for v in value]}
    if isinstance(value, torch.Generator):
        return {"__generator__": _tensor_to_wire(value.get_state(), blobs), "device": str(value.device)}
    if isinstance(value, Handle):
        return {"__handle__": value.id, "type": value.type, "is_module": value.is_module}
    if isinstance(value, Construct):
        state = None if value.state is None else encode(dict(value.state), blobs, handle_of, depth + 1)
        return {"__construct__": value.cls, "kwargs": encode(value.kwargs, blobs, handle_of, depth + 1), "state": state}
    if isinstance(value, list):
        return [encode(v, blobs, handle_of, depth + 1) for v in value]
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, blobs, handle_of, depth + 1) for v in value]}
    if isinstance(value, dict):
        return {"__dict__": [[encode(k, blobs, handle_of, depth + 1), encode(v, blobs, handle_of, depth + 1)] for k, v in value.items()]}
    numpy = _numpy(value)
    if numpy is not None:
        return numpy(value, blobs)
    if handle_of is not None:
        return encode(handle_of(value), blobs, None, depth + 1)
    raise WireError(f"cannot send a {type(value).__qualname__}")


def _numpy(value: Any):
    module = type(value).__module__
    if not module.startswith("numpy"):
        return None
    import numpy as np

    if isinstance(value, np.ndarray):
        def as_array(v, blobs):
            return {"__ndarray__": _tensor_to_wire(torch.from_numpy(np.ascontiguousarray(v)), blobs)}
        return as_array
    if isinstance(value, np.generic):
        return lambda v, blobs: encode(v.item(), blobs)
    return None


def decode(data: Any, blobs: dict[str, torch.Tensor], resolve=None, depth: int = 0) -> Any:
    """The inverse of :func:`encode`: plain Python and torch values, never code.

    ``resolve(spec)`` turns a handle or construct into a local object (the
    worker's side); without it they decode to :class:`Handle`/:class:`Construct`.
    """
    if depth > _MAX_DEPTH:
        raise WireError("data nested too deeply")
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if isinstance(data, list):
        return [decode(v, blobs, resolve, depth + 1) for v in data]
    if not isinstance(data, dict) or len(data) == 0:
        raise WireError(f"unexpected {type(data).__name__} in message")
    if "__tensor__" in data:
        t = _blob(blobs, data["__tensor__"])
        if resolve is None:
            return t
        if data.get("parameter"):
            return torch.nn.Parameter(t, requires_grad=bool(data.get("requires_grad")))
        return t.requires_grad_() if data.get("requires_grad") and t.is_floating_point() else t
    if "__ndarray__" in data:
        return _blob(blobs, data["__ndarray__"]).numpy()
    if "__float__" in data:
        text = data["__float__"]
        if text not in ("nan", "inf", "-inf"):
            raise WireError(f"bad float {text!r}")
        return float(text)
    if "__dtype__" in data:
        name = data["__dtype__"]
        if name not in _DTYPES:
            raise WireError(f"unknown dtype {name!r}")
        return _DTYPES[name]
    if "__device__" in data:
        return torch.device(str(data["__device__"]))
    if "__tuple__" in data:
        return tuple(decode(v, blobs, resolve, depth + 1) for v in _list(data["__tuple__"]))
    if "__dict__" in data:
        out = {}
        for pair in _list(data["__dict__"]):
            if not isinstance(pair, list) or len(pair) != 2:
                raise WireError("bad dict entry")
            key = decode(pair[0], blobs, resolve, depth + 1)
            if isinstance(key, list):
                key = tuple(key)
            try:
                hash(key)
            except TypeError:
                raise WireError("unhashable dict key") from None
            out[key] = decode(pair[1], blobs, resolve, depth + 1)
        return out
    if "__generator__" in data:
        state = _blob(blobs, data["__generator__"])
        gen = torch.Generator(device=str(data.get("device", "cpu"))) if resolve else torch.Generator()
        try:
            gen.set_state(state)
        except (RuntimeError, TypeError) as err:
            raise WireError(f"bad generator state: {err}") from None
        return gen
    if "__handle__" in data:
        if not isinstance(data["__handle__"], int):
            raise WireError("bad handle")
        handle = Handle(data["__handle__"], str(data.get("type", ""))[:200], bool(data.get("is_module", False)))
        return resolve(handle) if resolve else handle
    if "__construct__" in data:
        state = data.get("state")
        spec = Construct(
            str(data["__construct__"]),
            decode(data.get("kwargs", {"__dict__": []}), blobs, resolve, depth + 1),
            None if state is None else decode(state, blobs, resolve, depth + 1),
        )
        return resolve(spec) if resolve else spec
    raise WireError(f"unknown value in message: {sorted(data)[:3]}")


def _list(value: Any) -> list:
    if not isinstance(value, list):
        raise WireError("expected a list")
    return value


def _blob(blobs: dict[str, torch.Tensor], key: Any) -> torch.Tensor:
    if not isinstance(key, str) or key not in blobs:
        raise WireError(f"message refers to a missing tensor {key!r}")
    return blobs[key]


HEADER_BYTES = _HEADER.size


def frame(message: dict[str, Any], handle_of=None) -> bytes:
    """One message as bytes: the header (JSON and blob lengths), the JSON, the ``safetensors`` blob.

    The one framing function of the protocol: the grader (:mod:`autograder.sandbox`) and the worker
    (:func:`send`) both write with it, and both read with :func:`header` and :func:`parse`.
    """
    blobs: dict[str, torch.Tensor] = {}
    body = json.dumps(encode(message, blobs, handle_of)).encode("utf-8")
    blob = b""
    if blobs:
        from safetensors.torch import save

        blob = save(blobs)
    return _HEADER.pack(len(body), len(blob)) + body + blob


def header(data: bytes, max_json: int = MAX_JSON, max_blob: int = MAX_BLOB) -> tuple[int, int]:
    """The JSON and blob lengths a frame's header announces, refused when over the limits (before reading them)."""
    n_json, n_blob = _HEADER.unpack(data)
    if n_json > max_json or n_blob > max_blob:
        raise WireError(f"message too large ({n_json} bytes of JSON, {n_blob} bytes of tensors; the limits are "
                        f"{max_json} and {max_blob})")
    return n_json, n_blob


def _tensors(blob: bytes, max_tensors: int) -> dict[str, torch.Tensor]:
    """The blob's tensors; its header is read and bounded before ``safetensors`` decodes anything."""
    if not blob:
        return {}
    if len(blob) < 8:
        raise WireError("bad tensor data: truncated header")
    n = int.from_bytes(blob[:8], "little")
    if n > min(_MAX_SAFETENSORS_HEADER, len(blob) - 8):
        raise WireError(f"bad tensor data: a header of {n} bytes")
    try:
        meta = json.loads(blob[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WireError(f"bad tensor data: {err}") from None
    if not isinstance(meta, dict) or len(meta) > max_tensors + 1:
        raise WireError(f"bad tensor data: more than {max_tensors} tensors")
    from safetensors.torch import load

    try:
        return load(blob)
    except Exception as err:  # safetensors raises its own error types for bad bytes
        raise WireError(f"bad tensor data: {err}") from None


def parse(body: bytes, blob: bytes, resolve=None, max_tensors: int = MAX_TENSORS) -> Any:
    """Decode a frame's JSON and blob (lengths already checked by :func:`header`) into plain values."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError) as err:  # bad UTF-8, bad JSON, nesting too deep, an int of too many digits
        raise WireError(f"message is not JSON: {type(err).__name__}") from None
    return decode(data, _tensors(blob, max_tensors), resolve)


def send(stream: BinaryIO, message: dict[str, Any], handle_of=None) -> None:
    """Encode and write one message (``message`` values go through :func:`encode`)."""
    stream.write(frame(message, handle_of))
    stream.flush()


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the channel")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv(stream: BinaryIO, resolve=None) -> Any:
    """Read and decode one message; raises :class:`EOFError` when the other side is gone."""
    n_json, n_blob = header(_read_exact(stream, HEADER_BYTES))
    body = _read_exact(stream, n_json)
    blob = _read_exact(stream, n_blob) if n_blob else b""
    return parse(body, blob, resolve)
