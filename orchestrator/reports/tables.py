"""The seed guide's tables, built from analysed cells (pure functions, no I/O).

- per-device backend tables (Backend | Model Size | Inference Time | Memory | Power, plus
  our measured extras: median, load time, thermal, budgets, notes);
- resolution sweep (Resolution | Preprocessing | Inference | Total | Accuracy);
- architecture comparison (Architecture | Params | Model Size | Inference | Accuracy);
- quantization impact (float vs quantized sibling backend: size ratio, speed ratio).

A cell that failed, was blocked or is still pending is a row with its reason in every
table it belongs to; simulated numbers carry a marker in the row's Notes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from device_inventory.catalog import catalog
from orchestrator.analysis.cells import CellStats
from orchestrator.analysis.stats import fmt_mb, fmt_ms, fmt_range
from orchestrator.export.registry import UnknownBackend, registry
from orchestrator.reports.data import Cell, CellKey

SIMULATED = "simulated"
DASH = "—"


@dataclass
class Row:
    values: list[str]
    state: str = "ok"
    simulated: bool = False
    budget: str = "n/a"  # realtime-30fps status, used for colouring
    key: CellKey | None = None
    # the parts of the Notes value, for views that say them once per table or as footnotes
    reason: str = ""
    platform: str = ""
    sources: str = ""  # where a figure came from when it is not the table's usual source


@dataclass
class Table:
    id: str
    kind: str  # device | resolution | architecture | quantization
    title: str
    columns: list[str]
    rows: list[Row] = field(default_factory=list)
    note: str = ""

    @property
    def simulated(self) -> bool:
        return any(r.simulated for r in self.rows)


Analysed = list[tuple[Cell, CellStats]]


def backend_display(name: str) -> str:
    try:
        return registry().resolve(name).display
    except UnknownBackend:
        return name


def device_title(class_id: str) -> str:
    """``iPhone 15 Pro (A17 Pro)`` as the seed titles its tables."""
    dc = catalog().classes.get(class_id)
    if dc is None:
        return class_id
    if dc.kind == "host":
        return dc.display
    return dc.reference_device if dc.display in dc.reference_device else f"{dc.reference_device} ({dc.display})"


def class_order(class_id: str) -> tuple[int, str]:
    ids = list(catalog().classes)
    return (ids.index(class_id) if class_id in ids else len(ids), class_id)


# The seed guide's row order; backends it does not list follow in registry order.
SEED_BACKEND_ORDER = ("coreml", "mps", "xnnpack", "coreml-int8")


def backend_order(name: str) -> tuple[int, str]:
    names = [*SEED_BACKEND_ORDER, *(n for n in registry().names() if n not in SEED_BACKEND_ORDER)]
    return (names.index(name) if name in names else len(names), name)


def _sort_key(pair: tuple[Cell, CellStats]) -> tuple:
    k = pair[0].key
    return (k.model, backend_order(k.backend), -k.input_resolution, k.batch_size)


def reason(cell: Cell) -> str:
    if cell.state == "ok":
        return ""
    return f"{cell.state}: {cell.reason}" if cell.reason else cell.state


def platform(cell: Cell) -> str:
    """What the numbers ran on beyond the device class: the iOS versions, or a host's CPU model
    (a kernel release says nothing about speed)."""
    if cell.key.device_class == "host-cpu":
        return ", ".join(cell.chips)
    return "iOS " + ", ".join(cell.os_versions) if cell.os_versions else ""


# The device tables' account of their sources, said once under each table (rows note exceptions).
SOURCES_NOTE = ("Memory: the harness's own peak phys_footprint; Device memory: the peak physFootprint the "
                "device's DVT sysmontap saw of the harness process; Power: the device's energy gauge (dvt.energy) "
                "where it measured, else the harness's own figure (power: harness).")


def sources(cell: Cell) -> str:
    """Where this cell's figures came from, when that is not the device's instruments."""
    parts = []
    if cell.energy_sources and cell.energy_sources != ["dvt.energy"]:
        parts.append("power: " + " + ".join(cell.energy_sources))
    if cell.device_missing:
        parts.append(f"device figures missing ({cell.device_missing})")
    if cell.charging and "dvt.energy" not in cell.energy_sources:
        parts.append("charging over USB: battery current not usable")
    return "; ".join(parts)


def notes(cell: Cell) -> str:
    parts = [reason(cell), SIMULATED if cell.simulated else "", platform(cell), sources(cell)]
    return "; ".join(p for p in parts if p)


def top_operator(cell: Cell) -> str:
    """The cell's most expensive operator in its profiling pass, with its share of the time."""
    prof = cell.profile
    if prof is None or prof.status != "ok" or not prof.operators:
        return DASH
    op = max(prof.operators, key=lambda o: o.mean_ms)
    return f"{op.module_path or op.name} ({op.share * 100:.0f} %)"


def _frame_stages(cell: Cell, stats: CellStats) -> list[str]:
    """Preprocessing, Postprocessing and Total medians; a stage the harness did not time is a dash."""
    if not cell.has_results:
        return [DASH] * 3
    stages = (stats.preprocess, stats.postprocess, stats.total)
    return [fmt_ms(st.median) if st else DASH for st in stages]


def _row(cell: Cell, stats: CellStats, values: list[str]) -> Row:
    rt = stats.budget("realtime-30fps")
    return Row(values + [notes(cell)], cell.state, cell.simulated, rt.status if rt else "n/a", cell.key,
               reason(cell), platform(cell), sources(cell))


def _failed_or(cell: Cell, text: str) -> str:
    # A row without measurements says why in its first measurement column.
    return text if cell.has_results else cell.state


def _params(n: int | None) -> str:
    return DASH if not n else f"{n / 1e6:.1f}M"


def _accuracy(cell: Cell) -> str:
    return DASH if cell.accuracy is None else f"{cell.accuracy:g}%"


def _slug(*parts: object) -> str:
    return "-".join(str(p).lower().replace(" ", "_") for p in parts)


def device_tables(analysed: Analysed) -> list[Table]:
    by_class: dict[str, Analysed] = defaultdict(list)
    for pair in analysed:
        by_class[pair[0].key.device_class].append(pair)
    tables = []
    for cls in sorted(by_class, key=class_order):
        pairs = sorted(by_class[cls], key=_sort_key)
        multi_model = len({c.key.model for c, _ in pairs}) > 1
        multi_input = len({(c.key.input_resolution, c.key.batch_size) for c, _ in pairs}) > 1
        cols = (["Model"] if multi_model else []) + (["Input"] if multi_input else []) + [
            "Backend", "Model Size", "Inference Time", "Memory", "Power", "Device memory",
            "Median", "Preprocessing", "Postprocessing", "Total", "CV", "Load", "Thermal",
            "30 FPS budget", "10 FPS budget", "Memory budget", "Top operator", "Notes"]
        t = Table(_slug("device", cls), "device", device_title(cls), cols)
        for c, s in pairs:
            lead = ([c.key.model] if multi_model else []) + (
                [f"{c.key.input_resolution}×{c.key.input_resolution} b{c.key.batch_size}"] if multi_input else [])
            budgets = [s.budget(name) for name in ("realtime-30fps", "standard-10fps", "memory")]
            thermal = f"{c.thermal_before}→{c.thermal_after}" if c.thermal_before else DASH
            t.rows.append(_row(c, s, lead + [
                backend_display(c.key.backend),
                fmt_mb(c.model_size_bytes),
                _failed_or(c, fmt_range(s.inference)),
                fmt_mb(c.peak_memory_bytes),
                s.power if c.has_results else DASH,
                fmt_mb(c.device_memory_bytes),
                fmt_ms(s.inference.median if s.inference else None),
                *_frame_stages(c, s),
                f"{100 * s.inference.cv:.1f}%" if s.inference else DASH,
                fmt_ms(s.load_time_ms),
                thermal,
                *(b.summary() if b else DASH for b in budgets),
                top_operator(c),
            ]))
        models = sorted({c.key.model for c, _ in pairs})
        res = sorted({c.key.input_resolution for c, _ in pairs}, reverse=True)
        t.note = (f"Models: {', '.join(models)}; input {', '.join(f'{r}×{r}' for r in res)} RGB. "
                  "Inference Time is p10-p90 over all iterations of all repeats; Median, Preprocessing "
                  "(a 1920×1080 BGRA frame into the input), Postprocessing (softmax, top-5) and Total "
                  "(the three per frame) are medians; budgets check p90. Power from measured "
                  "energy per inference (n/a where the platform reports none). " + SOURCES_NOTE)
        tables.append(t)
    return tables


def _grouped(analysed: Analysed, key: Callable[[CellKey], tuple]) -> dict[tuple, Analysed]:
    groups: dict[tuple, Analysed] = defaultdict(list)
    for pair in analysed:
        groups[key(pair[0].key)].append(pair)
    return groups


def resolution_tables(analysed: Analysed) -> list[Table]:
    groups = _grouped(analysed, lambda k: (k.device_class, k.model, k.backend, k.batch_size))
    tables = []
    for (cls, model, backend, batch), pairs in sorted(
            groups.items(), key=lambda g: (class_order(g[0][0]), g[0][1], backend_order(g[0][2]), g[0][3])):
        if len({c.key.input_resolution for c, _ in pairs}) < 2:
            continue
        t = Table(_slug("resolution", cls, model, backend, batch), "resolution",
                  f"Resolution sweep — {model}, {backend_display(backend)}, {device_title(cls)}"
                  + (f", batch {batch}" if batch > 1 else ""),
                  ["Resolution", "Preprocessing", "Inference", "Total", "Accuracy", "Notes"])
        for c, s in sorted(pairs, key=lambda p: -p[0].key.input_resolution):
            total = s.total.median if s.total else None
            t.rows.append(_row(c, s, [
                f"{c.key.input_resolution}×{c.key.input_resolution}",
                fmt_ms(s.preprocess.median) if s.preprocess else (DASH if c.has_results else c.state),
                _failed_or(c, fmt_ms(s.inference.median if s.inference else None)),
                fmt_ms(total) if c.has_results else DASH,
                _accuracy(c),
            ]))
        t.note = "Medians. Total = preprocessing + inference + postprocessing where measured."
        tables.append(t)
    return tables


def _reference_resolution(pairs: Iterable[tuple[Cell, CellStats]]) -> int:
    res = {c.key.input_resolution for c, _ in pairs}
    return 224 if 224 in res else max(res)


def architecture_tables(analysed: Analysed) -> list[Table]:
    groups = _grouped(analysed, lambda k: (k.device_class, k.backend))
    tables = []
    for (cls, backend), pairs in sorted(groups.items(),
                                        key=lambda g: (class_order(g[0][0]), backend_order(g[0][1]))):
        ref = _reference_resolution(pairs)
        pairs = [p for p in pairs if p[0].key.input_resolution == ref and p[0].key.batch_size == 1]
        if len({c.key.model for c, _ in pairs}) < 2:
            continue
        t = Table(_slug("architecture", cls, backend), "architecture",
                  f"Architecture comparison — {backend_display(backend)}, {device_title(cls)}, {ref}×{ref}",
                  ["Architecture", "Params", "Model Size", "Inference", "Accuracy", "Notes"])
        for c, s in sorted(pairs, key=lambda p: p[0].key.model):
            t.rows.append(_row(c, s, [
                c.key.model, _params(c.params), fmt_mb(c.model_size_bytes),
                _failed_or(c, fmt_ms(s.inference.median if s.inference else None)), _accuracy(c),
            ]))
        tables.append(t)
    return tables


def quantized_pairs() -> list[tuple[str, str]]:
    """(float backend, quantized backend) siblings: same partitioner, one adds a quantizer."""
    backends = registry().backends.values()
    pairs = []
    for q in backends:
        if not q.lowering.get("quantizer"):
            continue
        for f in backends:
            if f.lowering.get("partitioner") == q.lowering.get("partitioner") and not f.lowering.get("quantizer"):
                pairs.append((f.name, q.name))
                break
    return pairs


def _ratio(num: float | None, den: float | None) -> str:
    return DASH if not num or not den else f"{num / den:.2f}×"


def quantization_table(analysed: Analysed) -> Table | None:
    index = {c.key: (c, s) for c, s in analysed}
    t = Table("quantization", "quantization", "Quantization impact",
              ["Device", "Model", "Float → quantized", "Model Size", "Size ratio", "Inference",
               "Speed ratio", "Notes"])
    for key in sorted(index, key=lambda k: (class_order(k.device_class), k.model, k.input_resolution)):
        for fname, qname in quantized_pairs():
            if key.backend != fname or (qkey := key._replace(backend=qname)) not in index:
                continue
            (fc, fs), (qc, qs) = index[key], index[qkey]
            fmed = fs.inference.median if fs.inference else None
            qmed = qs.inference.median if qs.inference else None
            row = _row(fc, fs, [
                device_title(key.device_class), f"{key.model} @{key.input_resolution}",
                f"{backend_display(fname)} → {backend_display(qname)}",
                f"{fmt_mb(fc.model_size_bytes)} → {fmt_mb(qc.model_size_bytes)}",
                _ratio(fc.model_size_bytes, qc.model_size_bytes),
                f"{fmt_ms(fmed) if fmed else fc.state} → {fmt_ms(qmed) if qmed else qc.state}",
                _ratio(fmed, qmed),
            ])
            parts = [p for n in (notes(fc), notes(qc)) for p in n.split("; ") if p]
            row.values[-1] = "; ".join(dict.fromkeys(parts))
            row.simulated = fc.simulated or qc.simulated
            row.state = fc.state if fc.state != "ok" else qc.state
            t.rows.append(row)
    t.note = "Ratios are float / quantized: above 1× the quantized program is smaller or faster."
    return t if t.rows else None


def all_tables(analysed: Analysed) -> list[Table]:
    quant = quantization_table(analysed)
    return [*device_tables(analysed), *resolution_tables(analysed), *architecture_tables(analysed),
            *([quant] if quant else [])]
