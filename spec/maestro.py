"""MAESTRO's ``.m`` front end: mapping files (networks of layers with dataflows) and
hardware files.

The grammar is the one MAESTRO's parser really accepts (see ``docs/input-formats.md``)::

    file       := ( 'Constant' NAME INT | 'Network' [NAME] '{' layer* '}'
                  | 'Accelerator' '{' ... '}' )*
    layer      := 'Layer' NAME '{' ( 'Type' TYPE | 'Stride' '{' (('X'|'Y') INT)* '}'
                  | 'Dimensions' '{' (DIM VALUE)* '}' | 'Dataflow' '{' directive* '}' )* '}'
    directive  := ('TemporalMap' | 'SpatialMap') arg arg DIM | 'Cluster' arg ['P' | 'L']
    arg        := INT | CONSTANT | 'Sz' DIM

Where MAESTRO silently misreads or crashes, this parser does what the file means or
says clearly why it cannot: layer names keep their ``-``; a layer without a Dataflow
block reuses the previous layer's directives (re-resolved against its own sizes);
model-only files parse with no mappings; ``FC`` is a GEMM; ``POOL``/``LSTM`` are refused
with a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .cursor import TokenCursor
from .hardware import Hardware
from .layer import Layer, LayerType, make_layer
from .lexer import Token, read_source, tokenize
from .mapping import ClusterDirective, Directive, MapDirective, Mapping
from .network import MappedLayer, Network
from .source import Diagnostic, SourceSpan, SpecError
from .validate import validate_mapping

__all__ = ["HW_KEYS", "parse_hw_file", "parse_hw_text", "parse_mapping_file", "parse_mapping_text"]

_LAYER_TYPES = {t.value: t for t in LayerType}
_UNSUPPORTED_TYPES = {
    "POOL": "POOL layers perform no MACs; MAESTRO accepts the keyword but builds no layer",
    "LSTM": "LSTM layers are not modelled; express their gates as GEMM layers",
    "RESIDUAL_IDENTITY": "residual additions perform no MACs and are not modelled",
}
_DIRECTIVES = ("TemporalMap", "SpatialMap", "Cluster")
_LAYER_ITEMS = ("Type", "Stride", "Dimensions", "Dataflow")

HW_KEYS: dict[str, str] = {
    "num_pes": "num_pes",
    "l1_size_cstr": "l1_size_cstr",
    "l2_size_cstr": "l2_size_cstr",
    "noc_bw_cstr": "noc_bw_cstr",
    "offchip_bw_cstr": "offchip_bw_cstr",
    "NoC_NumHops": "noc_num_hops",
}
"""MAESTRO hardware-file keys and the :meth:`Hardware.maestro_hw_file` argument each sets."""


@dataclass(slots=True)
class _Arg:
    token: Token
    sz_dim: Token | None = None


@dataclass(slots=True)
class _RawDirective:
    keyword: Token
    args: list[_Arg]
    dim: Token | None = None
    cluster_kind: Token | None = None


@dataclass(slots=True)
class _RawLayer:
    name: Token
    type_token: Token | None = None
    strides: dict[str, tuple[int, Token]] = field(default_factory=dict)
    dims: dict[str, tuple[Token, Token]] = field(default_factory=dict)
    dataflow: list[_RawDirective] | None = None
    dataflow_token: Token | None = None


def _int_value(token: Token, what: str, constants: dict[str, int]) -> int:
    """An integer literal or a Constant's value."""
    if token.is_int:
        return int(token.text)
    if token.text in constants:
        return constants[token.text]
    if token.text.isidentifier():
        raise SpecError.at(
            token.span,
            f"unknown constant '{token.text}' used as {what}",
            hint="define it first with 'Constant NAME VALUE'",
        )
    raise SpecError.at(token.span, f"expected an integer for {what}, found '{token.text}'")


def _parse_constant(cur: TokenCursor, constants: dict[str, int]) -> None:
    name = cur.next("a constant name after 'Constant'")
    if not name.text.isidentifier():
        raise SpecError.at(name.span, f"expected a constant name, found '{name.text}'")
    value = cur.next(f"a value for constant '{name.text}'")
    if not value.is_int:
        raise SpecError.at(
            value.span, f"constant '{name.text}' must be an integer, found '{value.text}'"
        )
    constants[name.text] = int(value.text)


def _skip_block(cur: TokenCursor, opener: Token) -> None:
    depth = 0
    cur.expect("{", f"after '{opener.text}'")
    depth = 1
    while depth:
        token = cur.next(
            f"'}}' to close the '{opener.text}' block opened at line {opener.span.line}"
        )
        if token.text == "{":
            depth += 1
        elif token.text == "}":
            depth -= 1


def _parse_pairs(cur: TokenCursor, owner: Token, what: str) -> list[tuple[Token, Token]]:
    """``{ NAME VALUE ... }`` as (name, value) token pairs."""
    cur.expect("{", f"after '{owner.text}'")
    pairs: list[tuple[Token, Token]] = []
    while True:
        name = cur.next(f"a {what} or '}}' to close '{owner.text}' (line {owner.span.line})")
        if name.text == "}":
            return pairs
        if name.text == "{" or name.is_int:
            raise SpecError.at(
                name.span, f"expected a {what} name in '{owner.text}', found '{name.text}'"
            )
        value = cur.next(f"a value for {name.text}")
        if value.text in ("{", "}"):
            raise SpecError.at(
                value.span, f"expected a value for {name.text}, found '{value.text}'"
            )
        pairs.append((name, value))


def _parse_directive(cur: TokenCursor, keyword: Token) -> _RawDirective:
    n_args = 1 if keyword.text == "Cluster" else 2
    args: list[_Arg] = []
    for i in range(n_args):
        what = ("size", "offset")[i]
        token = cur.next(f"the {what} of {keyword.text}")
        if token.text in ("{", "}") or token.text in _DIRECTIVES:
            raise SpecError.at(
                token.span, f"expected the {what} of {keyword.text}, found '{token.text}'"
            )
        if token.text == "Sz":
            dim = cur.next("a dimension name after 'Sz('")
            args.append(_Arg(token, dim))
        else:
            args.append(_Arg(token))
    if keyword.text == "Cluster":
        kind = cur.peek()
        directive = _RawDirective(keyword, args)
        if kind is not None and kind.text in ("P", "L"):
            directive.cluster_kind = cur.next("a cluster type")
        elif kind is not None and kind.text not in ("}",) and kind.text not in _DIRECTIVES:
            raise SpecError.at(
                kind.span,
                f"unknown cluster type '{kind.text}'",
                hint="write Cluster(size, P); P and L behave the same",
            )
        return directive
    dim = cur.next(f"the dimension {keyword.text} maps")
    if dim.text in ("{", "}") or dim.text in _DIRECTIVES or dim.is_int:
        raise SpecError.at(
            dim.span, f"expected the dimension {keyword.text} maps, found '{dim.text}'"
        )
    return _RawDirective(keyword, args, dim)


def _parse_dataflow(cur: TokenCursor, opener: Token | None) -> list[_RawDirective]:
    """Directives up to the closing brace (``opener`` given) or the end of the tokens."""
    if opener is not None:
        cur.expect("{", "after 'Dataflow'")
    directives: list[_RawDirective] = []
    while True:
        if opener is None and cur.peek() is None:
            return directives
        where = f" to close 'Dataflow' (line {opener.span.line})" if opener else ""
        token = cur.next(f"a directive or '}}'{where}")
        if token.text == "}" and opener is not None:
            return directives
        if token.text in _DIRECTIVES:
            directives.append(_parse_directive(cur, token))
            continue
        hint = None
        for keyword in _DIRECTIVES:
            if token.text.lower() == keyword.lower().replace("_", ""):
                hint = f"did you mean '{keyword}'? Keywords are case-sensitive"
        raise SpecError.at(
            token.span,
            f"unexpected '{token.text}' in Dataflow; expected TemporalMap, SpatialMap or Cluster",
            hint=hint,
        )


def _parse_layer(cur: TokenCursor, layer_kw: Token) -> _RawLayer:
    name = cur.next("a layer name after 'Layer'")
    if name.text in ("{", "}"):
        raise SpecError.at(name.span, "expected a layer name after 'Layer'")
    raw = _RawLayer(name)
    cur.expect("{", f"after 'Layer {name.text}'")
    while True:
        token = cur.next(f"'}}' to close layer '{name.text}' (line {layer_kw.span.line})")
        if token.text == "}":
            return raw
        if token.text == "Type":
            raw.type_token = cur.next("a layer type after 'Type'")
        elif token.text == "Stride":
            if raw.dims:
                raise SpecError.at(
                    token.span,
                    "Stride must come before Dimensions (MAESTRO derives output sizes from it)",
                    hint="move the Stride block above Dimensions",
                )
            for key, value in _parse_pairs(cur, token, "stride"):
                if key.text not in ("X", "Y"):
                    raise SpecError.at(key.span, f"Stride takes X and Y, found '{key.text}'")
                if not value.is_int:
                    raise SpecError.at(
                        value.span, f"stride {key.text} must be an integer, found '{value.text}'"
                    )
                if int(value.text) < 1:
                    raise SpecError.at(
                        value.span, f"stride {key.text} must be >= 1, got {value.text}"
                    )
                raw.strides[key.text] = (int(value.text), value)
        elif token.text == "Dimensions":
            for key, value in _parse_pairs(cur, token, "dimension"):
                previous = raw.dims.get(key.text)
                if previous is not None and previous[1].text != value.text:
                    raise SpecError.at(
                        value.span,
                        f"dimension {key.text} is declared twice with different sizes"
                        f" ({previous[1].text} and {value.text})",
                    )
                raw.dims[key.text] = (key, value)
        elif token.text == "Dataflow":
            if raw.dataflow is not None:
                raise SpecError.at(token.span, f"layer '{name.text}' has two Dataflow blocks")
            raw.dataflow_token = token
            raw.dataflow = _parse_dataflow(cur, token)
        else:
            raise SpecError.at(
                token.span,
                f"unexpected '{token.text}' in layer '{name.text}'; expected "
                + ", ".join(_LAYER_ITEMS)
                + " or '}'",
            )


def shrink_dims(declared: dict[str, int], caps: dict[str, int] | None) -> dict[str, int]:
    """Clip declared sizes to ``caps`` (to make a layer small enough to simulate quickly),
    never below the filter window for the sliding dimensions."""
    if not caps:
        return declared
    out = dict(declared)
    for dim, cap in caps.items():
        if dim in out:
            floor = {"Y": out.get("R", 1), "X": out.get("S", 1)}.get(dim, 1)
            out[dim] = min(out[dim], max(cap, floor))
    return out


def _build_layer(
    raw: _RawLayer, constants: dict[str, int], caps: dict[str, int] | None = None
) -> Layer:
    if raw.type_token is None:
        raise SpecError.at(raw.name.span, f"layer '{raw.name.text}' has no 'Type'")
    type_text = raw.type_token.text
    if type_text in _UNSUPPORTED_TYPES:
        raise SpecError.at(raw.type_token.span, _UNSUPPORTED_TYPES[type_text])
    if type_text == "FC":
        layer_type = LayerType.GEMM
    elif type_text in _LAYER_TYPES:
        layer_type = _LAYER_TYPES[type_text]
    else:
        raise SpecError.at(
            raw.type_token.span,
            f"unknown layer type '{type_text}'",
            hint="one of CONV, DSCONV, NGCONV, TRCONV, GEMM, FC",
        )
    if not raw.dims:
        raise SpecError.at(raw.name.span, f"layer '{raw.name.text}' has no Dimensions block")
    declared: dict[str, int] = {}
    spans: dict[str, SourceSpan] = {}
    for dim, (key, value) in raw.dims.items():
        declared[dim] = _int_value(value, f"the size of {dim}", constants)
        spans[dim] = key.span
        if declared[dim] <= 0:
            raise SpecError.at(value.span, f"dimension {dim} must be > 0, got {declared[dim]}")
    declared = shrink_dims(declared, caps)
    if type_text == "FC" and any(d not in ("M", "N", "K") for d in declared):
        bad = next(d for d in declared if d not in ("M", "N", "K"))
        raise SpecError.at(
            spans[bad],
            f"FC layers are GEMMs: dimension '{bad}' is not one of M, N, K",
            hint="declare M (batch), K (input features) and N (output features)",
        )
    if layer_type is LayerType.GEMM and raw.strides:
        first = next(iter(raw.strides.values()))[1]
        raise SpecError.at(first.span, "a GEMM layer has no stride")
    return make_layer(
        name=raw.name.text,
        type_=layer_type,
        declared=declared,
        stride_y=raw.strides.get("Y", (1, None))[0],
        stride_x=raw.strides.get("X", (1, None))[0],
        keyword=type_text,
        span=raw.name.span,
        dim_spans=spans,
    )


def _resolve_arg(arg: _Arg, what: str, layer: Layer, constants: dict[str, int]) -> int:
    if arg.sz_dim is not None:
        dim = arg.sz_dim.text
        if not layer.has_dim(dim):
            raise SpecError.at(
                arg.sz_dim.span,
                f"Sz({dim}): layer '{layer.name}' has no dimension {dim}",
                hint="dimensions: " + ", ".join(layer.dims),
            )
        return layer.size(dim)
    return _int_value(arg.token, what, constants)


def _resolve_mapping(
    raw: list[_RawDirective], opener: SourceSpan | None, layer: Layer, constants: dict[str, int]
) -> tuple[Mapping, tuple[Diagnostic, ...]]:
    directives: list[Directive] = []
    problems: list[Diagnostic] = []
    for d in raw:
        try:
            if d.keyword.text == "Cluster":
                size = _resolve_arg(d.args[0], "the Cluster size", layer, constants)
                span = d.args[0].token.span
                if size <= 0:
                    problems.append(Diagnostic(f"Cluster size must be > 0, got {size}", span))
                    continue
                kind = d.cluster_kind.text if d.cluster_kind else "P"
                directives.append(ClusterDirective(size, kind, d.keyword.span))
                continue
            size = _resolve_arg(d.args[0], f"the size of {d.keyword.text}", layer, constants)
            offset = _resolve_arg(d.args[1], f"the offset of {d.keyword.text}", layer, constants)
            assert d.dim is not None
            directives.append(
                MapDirective(
                    spatial=d.keyword.text == "SpatialMap",
                    dim=d.dim.text,
                    size=size,
                    offset=offset,
                    span=d.keyword.span,
                    size_span=d.args[0].token.span,
                    offset_span=d.args[1].token.span,
                    dim_span=d.dim.span,
                )
            )
        except SpecError as exc:
            problems.extend(exc.diagnostics)
    if problems:
        raise SpecError(problems)
    return validate_mapping(layer, Mapping(tuple(directives), opener or layer.span))


def _span(token: Token | None) -> SourceSpan | None:
    return token.span if token is not None else None


def parse_dataflow_tokens(
    tokens: list[Token], eof_span: SourceSpan, layer: Layer, opener: SourceSpan | None = None
) -> tuple[Mapping, tuple[Diagnostic, ...]]:
    """A bare directive list (no braces), e.g. an inline dataflow of a YAML scenario,
    resolved and validated against ``layer``."""
    raw = _parse_dataflow(TokenCursor(tokens, eof_span), None)
    if not raw:
        raise SpecError.at(opener or eof_span, f"the dataflow of layer '{layer.name}' is empty")
    return _resolve_mapping(raw, opener, layer, {})


def parse_mapping_text(
    text: str, path: str = "<text>", *, shrink: dict[str, int] | None = None
) -> Network:
    """Parse a MAESTRO mapping (or model-only) file into a :class:`Network`.

    ``shrink`` caps dimension sizes before ``Sz(D)`` is resolved, so a shrunken layer
    keeps the meaning of its mapping (used to simulate large networks quickly).
    """
    cur = TokenCursor.over_text(text, path)
    constants: dict[str, int] = {}
    network_name: str | None = None
    network_span: SourceSpan | None = None
    raw_layers: list[_RawLayer] = []
    layer_constants: list[dict[str, int]] = []
    while (token := cur.peek()) is not None:
        cur.skip()
        if token.text == "Constant":
            _parse_constant(cur, constants)
        elif token.text == "Network":
            name_token = cur.peek()
            if name_token is not None and name_token.text != "{":
                cur.skip()
                network_name = name_token.text
            network_span = token.span
            cur.expect("{", "to open the Network body")
            while True:
                item = cur.next(f"'Layer' or '}}' to close the Network (line {token.span.line})")
                if item.text == "}":
                    break
                if item.text != "Layer":
                    raise SpecError.at(
                        item.span,
                        f"expected 'Layer' or '}}' in the Network body, found '{item.text}'",
                    )
                raw_layers.append(_parse_layer(cur, item))
                layer_constants.append(dict(constants))
        elif token.text == "Accelerator":
            _skip_block(cur, token)
        else:
            raise SpecError.at(
                token.span,
                f"unexpected '{token.text}' at top level;"
                " expected Constant, Network or Accelerator",
            )
    if not raw_layers:
        raise SpecError.at(
            cur.eof if not cur.tokens else cur.tokens[0].span,
            "no layers found: expected 'Network { Layer ... }'",
        )
    layers: list[MappedLayer] = []
    problems: list[Diagnostic] = []
    previous: tuple[list[_RawDirective], Token | None] | None = None
    for raw, consts in zip(raw_layers, layer_constants, strict=True):
        try:
            layer = _build_layer(raw, consts, shrink)
            inherited = False
            mapping: Mapping | None = None
            warnings: tuple[Diagnostic, ...] = ()
            if raw.dataflow is not None:
                previous = (raw.dataflow, raw.dataflow_token)
                mapping, warnings = _resolve_mapping(
                    raw.dataflow, _span(raw.dataflow_token), layer, consts
                )
            elif previous is not None:
                inherited = True
                mapping, warnings = _resolve_mapping(previous[0], _span(previous[1]), layer, consts)
            layers.append(MappedLayer(layer, mapping, inherited, warnings))
        except SpecError as exc:
            problems.extend(exc.diagnostics)
    if problems:
        raise SpecError(problems)
    name = network_name if network_name is not None else Path(path).stem
    return Network(name, tuple(layers), path, None, network_span)


def parse_mapping_file(path: str | Path, *, shrink: dict[str, int] | None = None) -> Network:
    """Read and parse a MAESTRO mapping file."""
    return parse_mapping_text(read_source(path), str(path), shrink=shrink)


def parse_hw_text(text: str, path: str = "<text>", *, simd_lanes: int = 1) -> Hardware:
    """Parse a MAESTRO hardware file (``key: value`` lines) the way ``--HW_file`` does."""
    values: dict[str, int] = {}
    seen: dict[str, Token] = {}
    tokens = tokenize(text, path)
    if not tokens:
        raise SpecError.at(SourceSpan(path, 1, 1, 1, ""), "empty hardware file")
    i = 0
    while i < len(tokens):
        key = tokens[i]
        if key.text not in HW_KEYS:
            raise SpecError.at(
                key.span,
                f"unknown hardware key '{key.text}'",
                hint="keys: " + ", ".join(HW_KEYS),
            )
        if i + 1 >= len(tokens) or tokens[i + 1].span.line != key.span.line:
            raise SpecError.at(key.span, f"hardware key '{key.text}' has no value")
        value = tokens[i + 1]
        if not value.is_int:
            raise SpecError.at(value.span, f"{key.text} must be an integer, found '{value.text}'")
        number = int(value.text)
        if number <= 0 and key.text != "NoC_NumHops":
            raise SpecError.at(value.span, f"{key.text} must be > 0, got {number}")
        if number < 0:
            raise SpecError.at(value.span, f"{key.text} must be >= 0, got {number}")
        if key.text in seen:
            raise SpecError.at(
                key.span,
                f"hardware key '{key.text}' is given twice"
                f" (first at line {seen[key.text].span.line})",
            )
        seen[key.text] = key
        values[HW_KEYS[key.text]] = number
        i += 2
    return Hardware.maestro_hw_file(**values, simd_lanes=simd_lanes, source=f"hardware file {path}")


def parse_hw_file(path: str | Path, *, simd_lanes: int = 1) -> Hardware:
    """Read and parse a MAESTRO hardware file."""
    return parse_hw_text(read_source(path), str(path), simd_lanes=simd_lanes)


def looks_like_hw_file(text: str) -> bool:
    """Whether ``text`` is a MAESTRO hardware file rather than a mapping."""
    for token in tokenize(text, ""):
        return token.text in HW_KEYS
    return False
