"""SCALE-Sim's own input files: the topology CSV and the ``.cfg`` INI file.

A systolic run is described exactly as SCALE-Sim v3 takes it, so its users can bring their
files unchanged. Topology rows are ``name, IFMAP H, IFMAP W, R, S, C, K, stride,`` (conv)
or ``name, M, N, K,`` under a header starting ``Layer, M, N, K`` (GEMM); like SCALE-Sim,
the first line is a header, empty lines are skipped and the field after the last comma is
dropped (SCALE-Sim's rows end with a comma); a conv layer whose name contains ``DP`` is
split per channel, as SCALE-Sim does for depthwise layers. Bad files raise
:class:`SpecError` pointing at the offending text.

The lowering (:func:`lower`) is SCALE-Sim's: im2col turns a conv into a GEMM of
``ofmap pixels x window`` by ``window x filters``; the dataflow chooses which GEMM
dimension lies along the array rows (``Sr``), the columns (``Sc``) and in time (``T``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

from .source import SourceSpan, SpecError

__all__ = [
    "DATAFLOWS",
    "SCALESIM_COLUMNS",
    "Lowered",
    "ScaleSimConfig",
    "ScaleSimCounts",
    "ScaleSimLayer",
    "ScaleSimTopology",
    "SystolicLayerResult",
    "lower",
    "parse_config",
    "parse_topology",
]

DATAFLOWS: tuple[str, ...] = ("os", "ws", "is")
_CONV_FIELDS: tuple[str, ...] = (
    "IFMAP height",
    "IFMAP width",
    "filter height",
    "filter width",
    "channels",
    "filters",
    "stride",
)
_GEMM_FIELDS: tuple[str, ...] = ("M", "N", "K")


@dataclass(frozen=True, slots=True)
class ScaleSimLayer:
    """One topology row as a convolution (a GEMM row becomes SCALE-Sim's equivalent conv:
    IFMAP M x K, filter 1 x K, one channel, N filters, stride 1)."""

    name: str
    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    num_filters: int
    stride: int

    @property
    def ofmap_h(self) -> int:
        """Output rows, SCALE-Sim's ``ceil((H - R + s) / s)`` (no padding; when the stride
        does not divide ``H - R`` the last window hangs over the IFMAP's edge)."""
        return -(-(self.ifmap_h - self.filter_h + self.stride) // self.stride)

    @property
    def ofmap_w(self) -> int:
        """Output columns, as :attr:`ofmap_h`."""
        return -(-(self.ifmap_w - self.filter_w + self.stride) // self.stride)

    @property
    def ofmap_px(self) -> int:
        """Output pixels per filter: the im2col matrix's rows."""
        return self.ofmap_h * self.ofmap_w

    @property
    def window(self) -> int:
        """One convolution window, ``R * S * C``: the GEMM's reduction dimension."""
        return self.filter_h * self.filter_w * self.channels

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the layer."""
        return self.ofmap_px * self.window * self.num_filters

    @property
    def ifmap_words(self) -> int:
        """Distinct IFMAP words some window reads: the union of the windows, clipped to
        the IFMAP (a stride larger than the filter skips rows and columns)."""

        def touched(extent: int, size: int, out: int) -> int:
            total = covered = 0
            for start in range(0, out * self.stride, self.stride):
                end = min(start + size, extent)
                total += max(0, end - max(start, covered))
                covered = max(covered, end)
            return total

        rows = touched(self.ifmap_h, self.filter_h, self.ofmap_h)
        cols = touched(self.ifmap_w, self.filter_w, self.ofmap_w)
        return rows * cols * self.channels

    @property
    def filter_words(self) -> int:
        """Words of all filters."""
        return self.window * self.num_filters

    @property
    def ofmap_words(self) -> int:
        """Words of the output feature map."""
        return self.ofmap_px * self.num_filters


@dataclass(frozen=True, slots=True)
class ScaleSimTopology:
    """A topology file: its layers and whether it was written as GEMM rows."""

    path: str
    name: str
    layers: tuple[ScaleSimLayer, ...]
    gemm: bool


@dataclass(frozen=True, slots=True)
class ScaleSimConfig:
    """The settings of a SCALE-Sim ``.cfg`` that change what a layer costs."""

    path: str
    run_name: str
    array_rows: int
    array_cols: int
    dataflow: str
    ifmap_sram_kb: int
    filter_sram_kb: int
    ofmap_sram_kb: int
    ifmap_offset: int
    filter_offset: int
    ofmap_offset: int
    bandwidth_words_per_cycle: tuple[int, ...]
    interface_bandwidth: str

    def describe(self) -> str:
        """One line for the CLI header."""
        return (
            f"{self.array_rows}x{self.array_cols} systolic array, {self.dataflow.upper()},"
            f" SRAM {self.ifmap_sram_kb}/{self.filter_sram_kb}/{self.ofmap_sram_kb} kB,"
            f" interface bandwidth {self.interface_bandwidth}"
        )


@dataclass(frozen=True, slots=True)
class Lowered:
    """A layer as SCALE-Sim lowers it for one dataflow and array: the GEMM dimensions on
    the array rows (``sr``), columns (``sc``) and in time (``t``), and the fold counts."""

    dataflow: str
    rows: int
    cols: int
    sr: int
    sc: int
    t: int

    @property
    def row_folds(self) -> int:
        """Folds along the array rows, ``ceil(Sr / rows)``."""
        return math.ceil(self.sr / self.rows)

    @property
    def col_folds(self) -> int:
        """Folds along the array columns, ``ceil(Sc / cols)``."""
        return math.ceil(self.sc / self.cols)

    @property
    def folds(self) -> int:
        """All folds of the layer."""
        return self.row_folds * self.col_folds

    def fold_extents(self) -> list[tuple[int, int]]:
        """(rows used, columns used) of every fold in SCALE-Sim's order: column folds
        outer, row folds inner."""
        out = []
        for fc in range(self.col_folds):
            cu = min(self.cols, self.sc - fc * self.cols)
            for fr in range(self.row_folds):
                out.append((min(self.rows, self.sr - fr * self.rows), cu))
        return out


def lower(layer: ScaleSimLayer, config: ScaleSimConfig) -> Lowered:
    """SCALE-Sim's (Sr, Sc, T) for ``layer`` on ``config``'s array and dataflow.

    OS keeps outputs in place: ofmap pixels on rows, filters on columns, the window in
    time. WS keeps weights: window on rows, filters on columns, ofmap pixels in time. IS
    keeps inputs: window on rows, ofmap pixels on columns, filters in time.
    """
    px, window, filters = layer.ofmap_px, layer.window, layer.num_filters
    sr, sc, t = {
        "os": (px, filters, window),
        "ws": (window, filters, px),
        "is": (window, px, filters),
    }[config.dataflow]
    return Lowered(config.dataflow, config.array_rows, config.array_cols, sr, sc, t)


def _read(path: str) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SpecError.at(None, f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SpecError.at(
            SourceSpan(path, line, 1), f"not UTF-8 text (byte 0x{data[exc.start]:02x})"
        ) from None


def _fields(line: str) -> list[tuple[str, int]]:
    """The comma-separated fields of ``line`` with their 1-based columns, the last (after
    the final comma) dropped as SCALE-Sim drops it."""
    out: list[tuple[str, int]] = []
    start = 0
    for piece in line.split(","):
        stripped = piece.strip()
        lead = len(piece) - len(piece.lstrip())
        out.append((stripped, start + lead + 1))
        start += len(piece) + 1
    return out[:-1]


def parse_topology(path: str) -> ScaleSimTopology:
    """Read a SCALE-Sim topology CSV (conv rows, or GEMM rows under ``Layer, M, N, K``)."""
    text = _read(path)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise SpecError.at(
            SourceSpan(path, 1, 1, 1, lines[0] if lines else ""),
            "empty topology: the first line must be SCALE-Sim's header",
            hint="e.g. 'Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width,"
            " Channels, Num Filter, Strides,' or 'Layer, M, N, K,'",
        )
    header = [f for f, _ in _fields(lines[0] + ",")]
    gemm = [h.upper() for h in header[1:4]] == ["M", "N", "K"]
    names = _GEMM_FIELDS if gemm else _CONV_FIELDS
    layers: list[ScaleSimLayer] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        layer = _layer_row(path, number, line, names, gemm)
        if not gemm and "DP" in layer.name:
            # SCALE-Sim runs a layer whose name contains "DP" (depthwise) as one
            # single-channel layer per channel, named <name>Channel_<i>.
            layers.extend(
                replace(layer, name=f"{layer.name}Channel_{i}", channels=1)
                for i in range(layer.channels)
            )
            continue
        layers.append(layer)
    if not layers:
        raise SpecError.at(
            SourceSpan(path, 1, 1, max(1, len(lines[0])), lines[0]),
            "topology has a header but no layer rows",
        )
    stem = Path(path).name.rsplit(".", 1)[0]
    return ScaleSimTopology(path=path, name=stem, layers=tuple(layers), gemm=gemm)


def _layer_row(
    path: str, number: int, line: str, names: tuple[str, ...], gemm: bool
) -> ScaleSimLayer:
    fields = _fields(line)
    need = 1 + len(names)
    if len(fields) < need:
        got = len(fields)
        last_col = fields[-1][1] if fields else 1
        hint = "every row ends with a comma: SCALE-Sim drops the field after the last one"
        raise SpecError.at(
            SourceSpan(path, number, last_col, max(1, len(line) - last_col + 1), line),
            f"expected {need} comma-terminated fields (name, {', '.join(names)}), found {got}",
            hint=hint,
        )
    name, name_col = fields[0]
    if not name:
        raise SpecError.at(SourceSpan(path, number, name_col, 1, line), "layer name is empty")
    values: list[int] = []
    for (text, col), what in zip(fields[1:need], names, strict=True):
        span = SourceSpan(path, number, col, max(1, len(text)), line)
        if not re.fullmatch(r"[0-9]+", text):
            raise SpecError.at(span, f"{what} must be a positive integer, found '{text}'")
        value = int(text)
        if value < 1:
            raise SpecError.at(span, f"{what} must be at least 1, found {value}")
        values.append(value)
    for text, col in fields[need:]:
        if text and not re.fullmatch(r"[0-9]+\s*:\s*[0-9]+", text):
            raise SpecError.at(
                SourceSpan(path, number, col, max(1, len(text)), line),
                f"unexpected extra field '{text}' (only an N:M sparsity ratio may follow)",
            )
        if text and text.replace(" ", "") != "1:1" and text.split(":")[0] != text.split(":")[1]:
            raise SpecError.at(
                SourceSpan(path, number, col, max(1, len(text)), line),
                f"sparsity ratio '{text}' is not supported (dense layers only)",
            )
    if gemm:
        m, n, k = values
        return ScaleSimLayer(name, m, k, 1, k, 1, n, 1)
    h, w, r, s, c, k, stride = values
    for (text, col), size, extent, what in (
        (fields[3], r, h, "filter height"),
        (fields[4], s, w, "filter width"),
    ):
        if size > extent:
            raise SpecError.at(
                SourceSpan(path, number, col, max(1, len(text)), line),
                f"{what} {size} is larger than the IFMAP ({extent}); SCALE-Sim has no padding",
                hint="give the padded IFMAP size",
            )
    return ScaleSimLayer(name, h, w, r, s, c, k, stride)


_KEY = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*[:=]\s*(.*?)\s*$")
_SECTION = re.compile(r"^\s*\[([^\]]*)\]\s*$")
_INT_KEYS: dict[str, str] = {
    "arrayheight": "array_rows",
    "arraywidth": "array_cols",
    "ifmapsramszkb": "ifmap_sram_kb",
    "filtersramszkb": "filter_sram_kb",
    "ofmapsramszkb": "ofmap_sram_kb",
    "ifmapoffset": "ifmap_offset",
    "filteroffset": "filter_offset",
    "ofmapoffset": "ofmap_offset",
}
_REQUIRED: tuple[str, ...] = ("arrayheight", "arraywidth", "dataflow")
_SPELLING: dict[str, str] = {
    "arrayheight": "ArrayHeight",
    "arraywidth": "ArrayWidth",
    "dataflow": "Dataflow",
}
_DEFAULTS: dict[str, int] = {
    "ifmap_sram_kb": 64,
    "filter_sram_kb": 64,
    "ofmap_sram_kb": 64,
    "ifmap_offset": 0,
    "filter_offset": 10_000_000,
    "ofmap_offset": 20_000_000,
}


def parse_config(path: str) -> ScaleSimConfig:
    """Read a SCALE-Sim ``.cfg``: INI sections with ``key: value`` or ``key = value``.

    Keys are case-insensitive, as in SCALE-Sim's ConfigParser. Settings that SCALE-Sim
    has but that this mode does not model (sparsity, custom layouts, Ramulator, USER
    bandwidth) are rejected when switched on rather than silently ignored.
    """
    text = _read(path)
    section = ""
    found: dict[str, tuple[str, SourceSpan]] = {}
    spelled: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        head = _SECTION.match(line)
        if head:
            section = head.group(1).strip().lower()
            continue
        match = _KEY.match(line)
        if not match:
            col = len(line) - len(line.lstrip()) + 1
            raise SpecError.at(
                SourceSpan(path, number, col, max(1, len(stripped)), line),
                f"expected 'key: value' or a [section], found '{stripped}'",
            )
        if not section:
            raise SpecError.at(
                SourceSpan(path, number, match.start(1) + 1, len(match.group(1)), line),
                f"'{match.group(1)}' comes before any [section]",
            )
        key = match.group(1).lower()
        span = SourceSpan(path, number, match.start(2) + 1, max(1, len(match.group(2))), line)
        found[key] = (match.group(2), span)
        spelled[key] = match.group(1)
    for key in _REQUIRED:
        if key not in found:
            raise SpecError.at(
                SourceSpan(path, 1, 1, 1, text.splitlines()[0] if text else ""),
                f"no '{_SPELLING[key]}' in the config (SCALE-Sim needs it)",
            )
    ints: dict[str, int] = dict(_DEFAULTS)
    for key, field_name in _INT_KEYS.items():
        if key in found:
            value, span = found[key]
            if not re.fullmatch(r"[0-9]+", value):
                raise SpecError.at(
                    span, f"{spelled[key]} must be a non-negative integer, found '{value}'"
                )
            ints[field_name] = int(value)
    for key in ("array_rows", "array_cols"):
        if ints[key] < 1:
            raw = "arrayheight" if key == "array_rows" else "arraywidth"
            raise SpecError.at(
                found[raw][1], f"{spelled[raw]} must be at least 1, found {ints[key]}"
            )
    dataflow, df_span = found["dataflow"]
    if dataflow.lower() not in DATAFLOWS:
        raise SpecError.at(df_span, f"unknown dataflow '{dataflow}'", hint="one of os, ws, is")
    bandwidth: tuple[int, ...] = (10,)
    if "bandwidth" in found:
        value, span = found["bandwidth"]
        parts = [p.strip() for p in value.split(",")]
        if not all(re.fullmatch(r"[0-9]+", p) for p in parts):
            raise SpecError.at(span, f"bandwidth must be integers, found '{value}'")
        bandwidth = tuple(int(p) for p in parts)
    interface = "CALC"
    if "interfacebandwidth" in found:
        value, span = found["interfacebandwidth"]
        if value.upper() not in ("CALC", "USER"):
            raise SpecError.at(span, f"InterfaceBandwidth must be CALC or USER, found '{value}'")
        if value.upper() == "USER":
            raise SpecError.at(
                span,
                "InterfaceBandwidth USER (DRAM stalls) is not modelled",
                hint="use CALC, SCALE-Sim's default stall-free mode",
            )
        interface = value.upper()
    for key in (
        "sparsitysupport",
        "ifmapcustomlayout",
        "filtercustomlayout",
        "useramulatortrace",
        "optimizedmapping",
    ):
        if key in found and found[key][0].lower() not in ("false", "0", "no", "off"):
            value, span = found[key]
            if value.lower() in ("true", "1", "yes", "on"):
                raise SpecError.at(
                    span, f"{spelled[key]} = {value} is not modelled (set it to False)"
                )
            raise SpecError.at(span, f"{spelled[key]} must be True or False, found '{value}'")
    return ScaleSimConfig(
        path=path,
        run_name=found["run_name"][0] if "run_name" in found else "sim",
        dataflow=dataflow.lower(),
        bandwidth_words_per_cycle=bandwidth,
        interface_bandwidth=interface,
        **ints,
    )


SCALESIM_COLUMNS: tuple[str, ...] = (
    "total_cycles",
    "sram_ifmap_reads",
    "sram_filter_reads",
    "sram_ofmap_writes",
    "dram_ifmap_reads",
    "dram_filter_reads",
    "dram_ofmap_writes",
    "compute_util_pct",
    "mapping_eff_pct",
)
"""The ``scalesim`` object's keys, named after SCALE-Sim's report columns."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScaleSimCounts:
    """One layer's numbers in SCALE-Sim's conventions (its report columns).

    ``total_cycles`` is SCALE-Sim's "Total Cycles": the index of the last cycle, one
    less than the number of cycles. ``sram_ofmap_writes`` in OS includes SCALE-Sim's
    extra ``rows + cols`` per fold; ``compute_util_pct`` in WS/IS divides by its per-fold
    cycle count plus ``cols - 1`` (both as SCALE-Sim computes them; see
    docs/simulator.md, "Systolic mode"). DRAM counts are this project's model: each
    word moved once.
    """

    total_cycles: int
    sram_ifmap_reads: int
    sram_filter_reads: int
    sram_ofmap_writes: int
    dram_ifmap_reads: int
    dram_filter_reads: int
    dram_ofmap_writes: int
    compute_util_pct: float
    mapping_eff_pct: float

    def to_dict(self) -> dict[str, int | float]:
        """Plain dict in SCALE-Sim's column order."""
        return {name: getattr(self, name) for name in SCALESIM_COLUMNS}


@dataclass(frozen=True, slots=True, kw_only=True)
class SystolicLayerResult:
    """One engine's result for one layer in systolic mode."""

    engine: str
    layer: str
    layer_index: int
    dataflow: str
    array: str
    sr: int
    sc: int
    t: int
    folds: int
    overlap_folds: bool
    runtime_cycles: int
    macs: int
    scalesim: ScaleSimCounts
    metrics: tuple[tuple[str, int | float], ...] = ()

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "engine": self.engine,
            "layer": self.layer,
            "layer_index": self.layer_index,
            "dataflow": self.dataflow,
            "array": self.array,
            "sr": self.sr,
            "sc": self.sc,
            "t": self.t,
            "folds": self.folds,
            "overlap_folds": self.overlap_folds,
            "runtime_cycles": self.runtime_cycles,
            "macs": self.macs,
            "scalesim": self.scalesim.to_dict(),
            **dict(sorted(self.metrics)),
        }
