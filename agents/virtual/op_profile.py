"""The virtual harness's profiling pass: a *simulated* per-operator breakdown of the program
it was given, consistent with the run's simulated latency.

The operator list is the program's own: read from the ``.pte`` flatbuffer (``program.fbs``:
the execution plan's instructions — kernel calls name their operator, delegate calls their
backend) and, for an XNNPACK delegate, from its payload (``XH00`` header, then the
``XNNGraph`` flatbuffer whose ``xnodes`` name the node kinds) — no torch, no runtime. A
CoreML payload is opaque: one delegate event. The time of the method (the run's own
simulated latencies) is split over those operators by a fixed weight per kind (convolutions
and matrix products carry the work, element-wise nodes little) with 3 % left as runtime
overhead between them, so the operators sum to 97 % of the method's time. Every number is
marked ``simulated``: it is a model of where time would go, not a measurement.
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

import flatbuffers
from flatbuffers import number_types as nt

# union order of XNodeUnion in executorch/backends/xnnpack/serialization/schema.fbs (1-based)
_XNN_NODES = ("XNNAdd XNNFullyConnected XNNSoftmax XNNSigmoid XNNStaticTranspose XNNClamp XNNConv2d XNNDiv "
              "XNNStaticResizeBilinear2D XNNStaticConstantPad XNNAvgPooling2d XNNMinimum XNNDepthwiseConv2d "
              "XNNMaxPooling2d XNNMultiply XNNSubtract XNNFloor XNNConvert XNNGlobalAvgPooling2d XNNStaticReshape "
              "XNNArgMaxPooling2d XNNSquareRoot XNNCeiling XNNHardswish XNNLeakyReLU XNNMaximum XNNNegate "
              "XNNSquare XNNELU XNNAbs XNNPReLU XNNConcatenate2 XNNConcatenate3 XNNConcatenate4 XNNStaticSlice "
              "XNNScaledDotProductAttention XNNBatchMatrixMultiply XNNConcatenate5 XNNConvTranspose2d "
              "XNNReciprocalSquareRoot XNNLog XNNGelu XNNTanh XNNExp XNNSin XNNCopy XNNCos").split()
_WEIGHTS = {"XNNConv2d": 10.0, "XNNConvTranspose2d": 10.0, "XNNFullyConnected": 6.0,
            "XNNBatchMatrixMultiply": 6.0, "XNNScaledDotProductAttention": 8.0, "XNNDepthwiseConv2d": 3.0}
_LIGHT = 0.4  # element-wise, reshapes, pooling
OVERHEAD = 0.03
MAX_OPS = 5000


class NotAProgram(ValueError):
    pass


def _vec(buf: bytes, t: flatbuffers.table.Table, slot: int) -> list[flatbuffers.table.Table]:
    o = t.Offset(4 + 2 * slot)
    if not o:
        return []
    start, n = t.Vector(o), t.VectorLen(o)
    if n > 1_000_000:
        raise NotAProgram("implausible vector length")
    return [flatbuffers.table.Table(buf, t.Indirect(start + 4 * i)) for i in range(n)]


def _str(t: flatbuffers.table.Table, slot: int) -> str:
    o = t.Offset(4 + 2 * slot)
    return t.String(o + t.Pos).decode("utf-8", "replace") if o else ""


def _scalar(t: flatbuffers.table.Table, slot: int, flags: Any, default: int = 0) -> int:
    o = t.Offset(4 + 2 * slot)
    return int(t.Get(flags, o + t.Pos)) if o else default


def _root(buf: bytes) -> flatbuffers.table.Table:
    return flatbuffers.table.Table(buf, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0))


def _xnnpack_nodes(blob: bytes) -> list[str]:
    if len(blob) < 30 or blob[4:8] != b"XH00":
        return []
    fb_off = int.from_bytes(blob[10:14], "little")
    fb_size = int.from_bytes(blob[14:18], "little")
    graph = _root(blob[fb_off:fb_off + fb_size])
    kinds = []
    for node in _vec(graph.Bytes, graph, 1):  # XNNGraph.xnodes
        tag = _scalar(node, 0, nt.Uint8Flags)  # XNode.xnode_union's type
        kinds.append(_XNN_NODES[tag - 1] if 0 < tag <= len(_XNN_NODES) else f"XNNNode{tag}")
    return kinds


def program_operators(pte: bytes) -> list[tuple[str, str | None]]:
    """The program's operators in execution order: (kind, delegate backend or None)."""
    if len(pte) < 8 or pte[4:8] != b"ET12":
        raise NotAProgram("not an ExecuTorch program (no ET12 identifier)")
    try:
        prog = _root(pte)
        segment_base = int.from_bytes(pte[24:32], "little") if pte[8:12] == b"eh00" else 0
        inline = _vec(pte, prog, 3)  # backend_delegate_data
        segments = _vec(pte, prog, 4)
        plan = _vec(pte, prog, 1)[0]
        operators = [_str(op, 0) for op in _vec(pte, plan, 6)]
        delegates = _vec(pte, plan, 7)
        out: list[tuple[str, str | None]] = []
        for chain in _vec(pte, plan, 5):
            for instr in _vec(pte, chain, 2):
                kind = _scalar(instr, 0, nt.Uint8Flags)  # 1 KernelCall, 2 DelegateCall
                o = instr.Offset(6)
                if not o:
                    continue
                args = flatbuffers.table.Table(pte, instr.Indirect(o + instr.Pos))
                index = _scalar(args, 0, nt.Int32Flags)
                if kind == 1:
                    out.append((operators[index], None))
                elif kind == 2:
                    out += _delegate_ops(pte, delegates[index], inline, segments, segment_base)
                if len(out) > MAX_OPS:
                    return out[:MAX_OPS]
        return out
    except (IndexError, ValueError, UnicodeError) as exc:
        raise NotAProgram(f"program flatbuffer unreadable: {exc}") from None


def _delegate_ops(pte: bytes, delegate: Any, inline: list, segments: list, base: int) -> list[tuple[str, str | None]]:
    backend = _str(delegate, 0)
    ref_o = delegate.Offset(6)
    blob = b""
    if ref_o:
        ref = flatbuffers.table.Table(pte, delegate.Indirect(ref_o + delegate.Pos))
        location, index = _scalar(ref, 0, nt.Int8Flags), _scalar(ref, 1, nt.Uint32Flags)
        if location == 0 and index < len(inline):
            d = inline[index]
            o = d.Offset(4)
            blob = bytes(d.Bytes[d.Vector(o):d.Vector(o) + d.VectorLen(o)]) if o else b""
        elif location == 1 and index < len(segments):
            off, size = _scalar(segments[index], 0, nt.Uint64Flags), _scalar(segments[index], 1, nt.Uint64Flags)
            blob = pte[base + off:base + off + size]
    nodes = _xnnpack_nodes(blob) if backend == "XnnpackBackend" else []
    return [(k, backend) for k in nodes] or [(backend or "delegate", backend)]


def _weight(kind: str, backend: str | None) -> float:
    if backend is not None and not kind.startswith("XNN"):
        return 10.0  # an opaque delegate: it is the program
    return _WEIGHTS.get(kind, _LIGHT if backend else 0.2)


def simulate(pte: bytes, latencies_ms: list[float], iterations: int) -> dict[str, Any]:
    """The profile block of a virtual run (``simulated: true``)."""
    try:
        ops = program_operators(pte)
    except NotAProgram as exc:
        return {"status": "error", "simulated": True, "source": "simulated",
                "error": {"category": "profiler_failed", "message": str(exc)[:4000]}}
    lat = sorted(latencies_ms)
    p10, p50, p90 = (lat[len(lat) // 10], statistics.median(lat), lat[min(len(lat) - 1, len(lat) * 9 // 10)])
    mean = statistics.fmean(lat)
    total = sum(_weight(k, b) for k, b in ops) or 1.0
    seen: Counter[str] = Counter()
    rows = []
    for i, (kind, backend) in enumerate(ops):
        seen[kind] += 1
        share = (1 - OVERHEAD) * _weight(kind, backend) / total
        rows.append({"name": f"{kind} #{seen[kind]}", "kind": kind, "order": i, "p10_ms": p10 * share,
                     "p50_ms": p50 * share, "p90_ms": p90 * share, "mean_ms": mean * share,
                     "delegated": backend is not None, "backend": backend, "module_path": None,
                     "debug_handle": None})
    return {"status": "ok", "simulated": True, "source": "simulated", "iterations": iterations,
            "method_ms": {"p10": p10, "p50": p50, "p90": p90, "mean": mean}, "operators": rows,
            "etrecord": False, "etdump_file": None}
