"""The 2018 pragma language of the MAESTRO arXiv paper (v1, Fig. 4 and Table 1).

A file gives hardware, then one or more layers each followed by its dataflow::

    L1Size 256; L2Size 1024; Bandwidth 32; NumPEs 256;
    Layer CONV VGG_C1;
    K 64; C 3; R 3; S 3; Y 224; X 224;
    endLayer
    Temporal_Map (1,1) K -> Temporal_Map (1,1) C -> Temporal_Map (3,1) Y
    -> Spatial_Map (3,1) X -> Unroll R -> Unroll S

Pragmas become MAESTRO 2019 directives (the full rules, with what cannot be expressed,
are in ``docs/pragma-2018.md``):

* ``Temporal_Map (sz,ofs) V`` -> ``TemporalMap(sz,ofs) V``;
* ``Spatial_Map (sz,ofs) V`` -> ``SpatialMap(sz,ofs) V``;
* ``Unroll V`` -> ``TemporalMap(Sz(V),Sz(V)) V`` (every iteration of V inside one step);
* ``Tile (n) V`` -> ``Cluster(n, P)`` at that point: pragmas above it see tiles of n PEs;
* ``Merge V`` flattens loop V into the loop of the pragma before it (B): after a
  ``Temporal_Map`` on B it is ``TemporalMap(1,1) V`` directly below B; after
  ``Spatial_Map (1,1) B`` it is ``Cluster(Sz(V), P); SpatialMap(1,1) V``. Any other
  merge has no data-centric equivalent and is refused.

Keywords are case-insensitive (Table 2 writes ``TEMPORAL_MAP``); ``Sz(V)`` is the size
of loop V; sizes are in elements. ``FC`` layers are CONV layers with R, S, Y, X of 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .cursor import TokenCursor
from .hardware import UNBOUNDED, Hardware
from .layer import LayerType, make_layer
from .lexer import Token, read_source, tokenize
from .maestro import shrink_dims
from .mapping import ClusterDirective, Directive, MapDirective, Mapping
from .network import MappedLayer, Network
from .source import Diagnostic, SourceSpan, SpecError
from .validate import validate_mapping

__all__ = ["looks_like_pragma", "parse_pragma_file", "parse_pragma_text"]

_HW_KEYS = {"l1size": "L1Size", "l2size": "L2Size", "bandwidth": "Bandwidth", "numpes": "NumPEs"}
_LOOP_VARS = ("K", "C", "R", "S", "Y", "X")
_PRAGMAS = {
    "temporal_map": "Temporal_Map",
    "spatial_map": "Spatial_Map",
    "tile": "Tile",
    "merge": "Merge",
    "unroll": "Unroll",
}


def _key(token: Token) -> str:
    return token.text.lower()


def looks_like_pragma(text: str) -> bool:
    """Whether ``text`` starts like a 2018 pragma file (hardware or Layer line)."""
    tokens = tokenize(text, "")
    if not tokens:
        return False
    first = _key(tokens[0])
    if first in _HW_KEYS:
        return True
    return first == "layer" and len(tokens) > 2 and tokens[1].text.upper() in ("CONV", "FC", "POOL")


@dataclass(slots=True)
class _Pragma:
    keyword: Token
    name: str
    args: list[tuple[Token, Token | None]]
    var: Token


def _number(token: Token, what: str) -> int:
    if not token.is_int:
        raise SpecError.at(token.span, f"expected an integer for {what}, found '{token.text}'")
    value = int(token.text)
    if value <= 0:
        raise SpecError.at(token.span, f"{what} must be > 0, got {value}")
    return value


def _read_arg(reader: TokenCursor, what: str) -> tuple[Token, Token | None]:
    token = reader.next(what)
    if _key(token) == "sz":
        return token, reader.next("a loop variable after 'Sz('")
    return token, None


def _read_pragma(reader: TokenCursor, keyword: Token) -> _Pragma:
    name = _PRAGMAS[_key(keyword)]
    n_args = {"Temporal_Map": 2, "Spatial_Map": 2, "Tile": 1}.get(name, 0)
    whats = ("size", "offset")
    args = [_read_arg(reader, f"the {whats[i]} of {name}") for i in range(n_args)]
    var = reader.next(f"the loop variable of {name}")
    if var.text not in _LOOP_VARS:
        raise SpecError.at(
            var.span,
            f"expected a loop variable (K, C, R, S, Y or X) after {name}, found '{var.text}'",
        )
    return _Pragma(keyword, name, args, var)


def _arg_value(arg: tuple[Token, Token | None], sizes: dict[str, int], what: str) -> int:
    token, var = arg
    if var is None:
        return _number(token, what)
    if var.text not in sizes:
        raise SpecError.at(var.span, f"Sz({var.text}): the layer has no loop variable {var.text}")
    return sizes[var.text]


def _translate(
    pragmas: list[_Pragma], sizes: dict[str, int], num_pes: int
) -> tuple[list[Directive], list[Diagnostic]]:
    directives: list[Directive] = []
    notes: list[Diagnostic] = []
    for i, p in enumerate(pragmas):
        var = p.var.text
        span = p.keyword.span
        if p.name in ("Temporal_Map", "Spatial_Map"):
            size = _arg_value(p.args[0], sizes, f"the size of {p.name}")
            offset = _arg_value(p.args[1], sizes, f"the offset of {p.name}")
            directives.append(
                MapDirective(
                    spatial=p.name == "Spatial_Map",
                    dim=var,
                    size=size,
                    offset=offset,
                    span=span,
                    size_span=p.args[0][0].span,
                    offset_span=p.args[1][0].span,
                    dim_span=p.var.span,
                )
            )
        elif p.name == "Unroll":
            whole = sizes[var]
            directives.append(MapDirective(False, var, whole, whole, span, dim_span=p.var.span))
        elif p.name == "Tile":
            size = _arg_value(p.args[0], sizes, "the size of Tile")
            directives.append(ClusterDirective(size, "P", span))
        else:
            directives.extend(_translate_merge(pragmas, i, directives, sizes, num_pes, notes))
    return directives, notes


def _translate_merge(
    pragmas: list[_Pragma],
    index: int,
    directives: list[Directive],
    sizes: dict[str, int],
    num_pes: int,
    notes: list[Diagnostic],
) -> list[Directive]:
    merge = pragmas[index]
    var = merge.var.text
    span = merge.keyword.span
    upper = pragmas[index - 1] if index > 0 else None
    previous = directives[-1] if directives else None
    if upper is None or not isinstance(previous, MapDirective) or upper.name == "Unroll":
        raise SpecError.at(
            span,
            f"Merge {var} needs a Temporal_Map or Spatial_Map on the loop just above it",
            hint="data-centric directives can only flatten a loop into a mapped parent loop",
        )
    if not previous.spatial:
        return [MapDirective(False, var, 1, 1, span, dim_span=merge.var.span)]
    if (previous.size, previous.offset) != (1, 1):
        raise SpecError.at(
            span,
            f"Merge {var} under Spatial_Map ({previous.size},{previous.offset}) {previous.dim}"
            " cannot be expressed with data-centric directives",
            hint="a flattened spatial loop maps onto Cluster only when the parent map is (1,1)",
        )
    group = sizes[var]
    if num_pes % group:
        notes.append(
            Diagnostic(
                f"Merge {var}: {num_pes} PEs are not a multiple of Sz({var})={group}; the"
                f" data-centric form leaves {num_pes % group} PE(s) idle where the flattened"
                " loop would wrap across them",
                span,
                severity="warning",
            )
        )
    return [
        ClusterDirective(group, "P", span),
        MapDirective(True, var, 1, 1, span, dim_span=merge.var.span),
    ]


def parse_pragma_text(
    text: str, path: str = "<text>", *, shrink: dict[str, int] | None = None
) -> Network:
    """Parse a 2018 pragma file into a :class:`Network` carrying its hardware
    (``shrink`` caps loop sizes as in :func:`metronome.spec.maestro.parse_mapping_text`)."""
    reader = TokenCursor.over_text(text, path)
    hw: dict[str, int] = {}
    hw_tokens: dict[str, Token] = {}
    while (token := reader.peek()) is not None and _key(token) in _HW_KEYS:
        reader.skip()
        name = _HW_KEYS[_key(token)]
        if name in hw:
            raise SpecError.at(token.span, f"{name} is given twice")
        hw[name] = _number(reader.next(f"a value for {name}"), name)
        hw_tokens[name] = token
    if "NumPEs" not in hw:
        where = reader.peek_span()
        raise SpecError.at(where, "the hardware description must give NumPEs")
    layers: list[MappedLayer] = []
    problems: list[Diagnostic] = []
    while (token := reader.peek()) is not None:
        reader.skip()
        if _key(token) in _HW_KEYS:
            raise SpecError.at(token.span, f"{token.text} must come before the first Layer")
        if _key(token) != "layer":
            raise SpecError.at(token.span, f"expected 'Layer', found '{token.text}'")
        try:
            layers.append(_parse_layer(reader, token, hw["NumPEs"], shrink))
        except SpecError as exc:
            problems.extend(exc.diagnostics)
            break
    if problems:
        raise SpecError(problems)
    if not layers:
        raise SpecError.at(reader.eof, "no layers found: expected 'Layer CONV NAME; ... endLayer'")
    hardware = Hardware.maestro_hw_file(
        num_pes=hw["NumPEs"],
        l1_size_cstr=hw.get("L1Size", UNBOUNDED),
        l2_size_cstr=hw.get("L2Size", UNBOUNDED),
        noc_bw_cstr=hw.get("Bandwidth", UNBOUNDED),
        source=f"2018 pragma file {path}",
    )
    return Network(Path(path).stem, tuple(layers), path, hardware)


def _parse_layer(
    reader: TokenCursor, layer_kw: Token, num_pes: int, shrink: dict[str, int] | None
) -> MappedLayer:
    kind = reader.next("a layer type (CONV or FC) after 'Layer'")
    if kind.text.upper() == "POOL":
        raise SpecError.at(kind.span, "POOL layers perform no MACs and are not modelled")
    if kind.text.upper() not in ("CONV", "FC"):
        raise SpecError.at(kind.span, f"unknown layer type '{kind.text}'", hint="CONV or FC")
    name = reader.next("a layer name")
    declared: dict[str, int] = {}
    spans: dict[str, SourceSpan] = {}
    while True:
        token = reader.next(
            f"a loop size or 'endLayer' (layer opened at line {layer_kw.span.line})"
        )
        if _key(token) == "endlayer":
            break
        if token.text not in _LOOP_VARS:
            raise SpecError.at(
                token.span,
                f"expected a loop variable (K, C, R, S, Y, X) or 'endLayer', found '{token.text}'",
            )
        if token.text in declared:
            raise SpecError.at(token.span, f"loop {token.text} is given twice")
        declared[token.text] = _number(reader.next(f"the size of {token.text}"), token.text)
        spans[token.text] = token.span
    if kind.text.upper() == "FC":
        for var in ("R", "S", "Y", "X"):
            declared.setdefault(var, 1)
    declared = shrink_dims(declared, shrink)
    layer = make_layer(
        name=name.text,
        type_=LayerType.CONV,
        declared=declared,
        keyword=kind.text.upper(),
        span=name.span,
        dim_spans=spans,
    )
    pragmas: list[_Pragma] = []
    while (start := reader.peek()) is not None and _key(start) in _PRAGMAS:
        reader.skip()
        pragmas.append(_read_pragma(reader, start))
    if not pragmas:
        where = reader.peek_span()
        raise SpecError.at(where, f"layer '{name.text}' has no dataflow pragmas after endLayer")
    directives, notes = _translate(pragmas, layer.size_map, num_pes)
    mapping, warnings = validate_mapping(layer, Mapping(tuple(directives), pragmas[0].keyword.span))
    return MappedLayer(layer, mapping, False, tuple(notes) + warnings)


def parse_pragma_file(path: str | Path, *, shrink: dict[str, int] | None = None) -> Network:
    """Read and parse a 2018 pragma file."""
    return parse_pragma_text(read_source(path), str(path), shrink=shrink)
