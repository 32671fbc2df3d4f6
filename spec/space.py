"""Design spaces for ``metronome sweep``: layers, hardware axes, mapping axes generated
from a directive template, and constraints, in one YAML file.

Example (paths relative to the file)::

    name: resnet50_conv2_hw
    network:                          # as in scenarios: file (+ layers, shrink), or
      file: ../maps/Resnet50_kcp_ws.m #   inline `layers:`, or `scenario: x.yaml`
      layers: [CONV2_1_2]
    hardware:                         # base values (MAESTRO's flag defaults otherwise)
      noc_hops: 1
    axes:                             # hardware axes: a list, or a range
      pes: [64, 128, 256]
      noc_bw: {from: 1, to: 1024, factor: 2}
      l1: {from: 64, to: 1024, step: 64}
    mapping:                          # optional: every layer's dataflow from a template
      style: kcp_ws                   # a shipped style, or `template: |` with {name}s
      params:
        c_tile: [16, 32, 64]
        order: {permute: ["TemporalMap(Sz(R),1) Y;", "TemporalMap(Sz(S),1) X;"]}
    constraints:
      - l1 * pes + l2 <= 4000000
    chunk_designs: 524288

Hardware axes and their ``metronome analyze`` flags: ``pes`` (--num-pes), ``l1``
(--l1-size), ``l2`` (--l2-size), ``noc_bw`` (--noc-bw), ``noc_hops`` (--noc-hops),
``hop_latency`` (--noc-hop-latency; NoC latency = hops x this), ``offchip_bw``
(--offchip-bw), ``lanes`` (--simd-lanes), and ``topology`` (simulator only).
Constraints are arithmetic comparisons over those names, the numeric mapping
parameters and the metrics ``runtime_cycles``, ``energy_nj``, ``chip_area_um2``,
``l1_size_req_elems``, ``l2_size_req_elems``. Every problem is a :class:`SpecError`
at the offending YAML line and column.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import re
from dataclasses import dataclass, field, replace
from math import prod
from pathlib import Path

import yaml

from .hardware import TOPOLOGIES, UNBOUNDED
from .layer import Layer
from .lexer import tokenize
from .maestro import parse_dataflow_tokens
from .mapping import Mapping
from .names import PolicyName
from .network import MappedLayer, Network
from .scenario import (
    _Doc,
    _load_inline_layers,
    _load_network_block,
    compose_yaml,
    load_scenario,
)
from .source import SourceSpan, SpecError

__all__ = [
    "HARDWARE_AXES",
    "METRIC_NAMES",
    "STYLES",
    "Axis",
    "Constraint",
    "SweepSpace",
    "load_space",
    "maestro_text",
]

HARDWARE_AXES: tuple[tuple[str, str, int | str], ...] = (
    ("pes", "--num-pes", 7),
    ("noc_bw", "--noc-bw", UNBOUNDED),
    ("noc_hops", "--noc-hops", 1),
    ("hop_latency", "--noc-hop-latency", 0),
    ("offchip_bw", "--offchip-bw", 70000),
    ("lanes", "--simd-lanes", 1),
    ("l1", "--l1-size", UNBOUNDED),
    ("l2", "--l2-size", UNBOUNDED),
    ("topology", "--topology", "bus"),
)
"""Hardware axes in design-index order (the last varies fastest), each with its
``metronome`` flag and its default (MAESTRO's flag defaults). The last three change
nothing in the closed form, so they vary fastest."""

METRIC_NAMES: tuple[str, ...] = (
    "runtime_cycles",
    "energy_nj",
    "chip_area_um2",
    "l1_size_req_elems",
    "l2_size_req_elems",
)
"""Metrics a constraint may name."""

_AXIS_MINIMUM = {"noc_hops": 0, "hop_latency": 0}

_STYLE_KCP_WS = """\
SpatialMap(1,1) K;
TemporalMap({c_tile},{c_tile}) C;
TemporalMap(Sz(R),Sz(R)) R;
TemporalMap(Sz(S),Sz(S)) S;
TemporalMap(Sz(R),1) Y;
TemporalMap(Sz(S),1) X;
Cluster({cluster}, P);
SpatialMap(1,1) C;
TemporalMap(Sz(R),1) Y;
TemporalMap(Sz(S),1) X;
TemporalMap(Sz(R),Sz(R)) R;
TemporalMap(Sz(S),Sz(S)) S;
"""

STYLES: dict[str, tuple[str, dict[str, tuple[int | str, ...]]]] = {
    "kcp_ws": (_STYLE_KCP_WS, {"c_tile": (64,), "cluster": (64,)}),
    "xp_ws": (
        "TemporalMap({k_tile},{k_tile}) K;\n"
        "TemporalMap({c_tile},{c_tile}) C;\n"
        "TemporalMap(Sz(R),1) Y;\n"
        "SpatialMap(Sz(S),1) X;\n"
        "TemporalMap(Sz(R),Sz(R)) R;\n"
        "TemporalMap(Sz(S),Sz(S)) S;\n",
        {"k_tile": (1,), "c_tile": (1,)},
    ),
    "yxp_os": (
        "TemporalMap({k_tile},{k_tile}) K;\n"
        "TemporalMap({c_tile},{c_tile}) C;\n"
        "SpatialMap(Sz(R),1) Y;\n"
        "TemporalMap({x_tile},{x_step}) X;\n"
        "Cluster({cluster}, P);\n"
        "SpatialMap(Sz(S),1) X;\n"
        "TemporalMap(Sz(R),Sz(R)) R;\n"
        "TemporalMap(Sz(S),Sz(S)) S;\n",
        {"k_tile": (1,), "c_tile": (1,), "x_tile": (10,), "x_step": (8,), "cluster": (8,)},
    ),
    "nlr": (
        "TemporalMap({k_tile},{k_tile}) K;\n"
        "TemporalMap(Sz(R),1) Y;\n"
        "TemporalMap(Sz(S),1) X;\n"
        "TemporalMap(Sz(R),Sz(R)) R;\n"
        "TemporalMap(Sz(S),Sz(S)) S;\n"
        "SpatialMap(1,1) {spatial};\n",
        {"k_tile": (1,), "spatial": ("C",)},
    ),
    "rs": (
        "TemporalMap({k_tile},{k_tile}) K;\n"
        "TemporalMap({c_tile},{c_tile}) C;\n"
        "TemporalMap(Sz(R),Sz(R)) R;\n"
        "SpatialMap(Sz(R),1) Y;\n"
        "TemporalMap(Sz(S),1) X;\n"
        "Cluster(Sz(R),P);\n"
        "SpatialMap(1,1) X;\n"
        "SpatialMap(1,1) S;\n"
        "TemporalMap(Sz(S),Sz(S)) S;\n",
        {"k_tile": (2,), "c_tile": (4,)},
    ),
}
"""Directive templates of the shipped mapping styles (``Resnet50_*.m``), each with the
parameter values that reproduce the shipped mapping of CONV2_1_2."""

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_TOP_KEYS = (
    "name",
    "description",
    "network",
    "layers",
    "scenario",
    "hardware",
    "axes",
    "mapping",
    "constraints",
    "chunk_designs",
    "simulate",
)


@dataclass(frozen=True, slots=True)
class Axis:
    """One swept quantity: its name and values in design-index order."""

    name: str
    values: tuple[int | str, ...]
    span: SourceSpan | None = field(default=None, compare=False)

    @property
    def numeric(self) -> bool:
        """Whether every value is an integer (then constraints may name the axis)."""
        return all(isinstance(v, int) for v in self.values)


@dataclass(frozen=True, slots=True)
class Constraint:
    """``expression`` must hold for a design to be feasible."""

    text: str
    tree: ast.Expression
    span: SourceSpan | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class SweepSpace:
    """A parsed design space. Design ``i`` is the mixed-radix number over the mapping
    axes then :data:`HARDWARE_AXES` (the last axis varies fastest)."""

    name: str
    path: str
    description: str
    network: Network
    mapping_axes: tuple[Axis, ...]
    hardware_axes: tuple[Axis, ...]
    template: str | None
    constraints: tuple[Constraint, ...]
    chunk_designs: int
    simulate_policy: PolicyName
    fingerprint: str
    template_span: SourceSpan | None = field(default=None, compare=False)

    @property
    def axes(self) -> tuple[Axis, ...]:
        """Every axis in design-index order."""
        return self.mapping_axes + self.hardware_axes

    @property
    def designs(self) -> int:
        """How many designs the space holds."""
        return prod(len(a.values) for a in self.axes)

    @property
    def mappings(self) -> int:
        """How many mapping variants (1 without mapping axes)."""
        return prod(len(a.values) for a in self.mapping_axes)

    def axis(self, name: str) -> Axis:
        """A hardware or mapping axis by name."""
        return next(a for a in self.axes if a.name == name)

    def design_values(self, index: int) -> dict[str, int | str]:
        """The value of every axis for design ``index``."""
        out: dict[str, int | str] = {}
        for axis in reversed(self.axes):
            index, digit = divmod(index, len(axis.values))
            out[axis.name] = axis.values[digit]
        return {a.name: out[a.name] for a in self.axes}

    def mapping_params(self, mapping_index: int) -> dict[str, int | str]:
        """The template parameters of mapping variant ``mapping_index``."""
        out: dict[str, int | str] = {}
        for axis in reversed(self.mapping_axes):
            mapping_index, digit = divmod(mapping_index, len(axis.values))
            out[axis.name] = axis.values[digit]
        return out

    def network_for(self, mapping_index: int) -> Network:
        """The layers with mapping variant ``mapping_index`` (SpecError if the template
        does not give a valid mapping for some layer)."""
        if self.template is None:
            return self.network
        text = instantiate(self.template, self.mapping_params(mapping_index))
        layers = tuple(
            replace_mapping(entry, _parse_template(text, entry.layer, self.template_span))
            for entry in self.network.layers
        )
        return Network(self.network.name, layers, self.network.path)


def instantiate(template: str, params: dict[str, int | str]) -> str:
    """``template`` with every ``{name}`` replaced (values may hold placeholders too)."""
    text = template
    for _ in range(4):
        new = _PLACEHOLDER.sub(lambda m: str(params.get(m.group(1), m.group(0))), text)
        if new == text:
            break
        text = new
    return text


def replace_mapping(entry: MappedLayer, mapping: Mapping) -> MappedLayer:
    """``entry`` with another mapping."""
    return replace(entry, mapping=mapping, mapping_inherited=False, warnings=())


def _parse_template(text: str, layer: Layer, span: SourceSpan | None) -> Mapping:
    tokens = tokenize(text, "<template>")
    lines = text.splitlines() or [""]
    eof = SourceSpan("<template>", len(lines), len(lines[-1]) + 1, 1, lines[-1])
    mapping, _ = parse_dataflow_tokens(tokens, eof, layer, span)
    return mapping


def maestro_text(network: Network) -> str:
    """``network`` as a MAESTRO mapping file (resolved sizes, one Dataflow per layer)."""
    lines = [f"Network {network.name or 'sweep'} {{"]
    for entry in network.layers:
        layer = entry.layer
        dims = ", ".join(f"{d}: {v}" for d, v in layer.sizes if d in layer.declared)
        lines += [
            f"Layer {layer.name} {{",
            f"Type: {layer.keyword or layer.type.name}",
            f"Stride {{ X: {layer.stride_x}, Y: {layer.stride_y} }}",
            f"Dimensions {{ {dims} }}",
            "Dataflow {",
            *(f"    {d};" for d in entry.require_mapping().directives),
            "}",
            "}",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def load_space(path: str | Path) -> SweepSpace:
    """Read and check a design-space YAML file."""
    shown = str(path)
    doc, root = compose_yaml(path, "design-space")
    text = "\n".join(doc.lines)
    top = doc.mapping(root, "the design space", _TOP_KEYS)
    base = Path(shown).parent
    name = doc.scalar(top["name"][1], "name") if "name" in top else Path(shown).stem
    given = [k for k in ("network", "layers", "scenario") if k in top]
    if len(given) != 1:
        raise doc.error(
            root, "a design space needs exactly one of 'network', 'layers' or 'scenario'"
        )
    if "network" in top:
        network = _load_network_block(doc, top["network"][1], base)
    elif "layers" in top:
        network = _load_inline_layers(doc, top["layers"][1], name)
    else:
        file_node = top["scenario"][1]
        target = base / doc.scalar(file_node, "scenario file")
        if not target.is_file():
            raise doc.error(file_node, f"no such file: {doc.scalar(file_node, 'scenario')}")
        network = load_scenario(target).network
    defaults: dict[str, int | str] = {n: d for n, _, d in HARDWARE_AXES}
    spans: dict[str, SourceSpan] = {}
    names = tuple(n for n, _, _ in HARDWARE_AXES)
    if "hardware" in top:
        for key, (_, value) in doc.mapping(top["hardware"][1], "hardware", names).items():
            defaults[key] = _axis_value(doc, key, value)
    swept: dict[str, tuple[int | str, ...]] = {}
    if "axes" in top:
        for key, (key_node, value) in doc.mapping(top["axes"][1], "axes", names).items():
            swept[key] = _axis_values(doc, key, value)
            spans[key] = doc.span(key_node)
    hardware_axes = tuple(
        Axis(n, swept.get(n, (defaults[n],)), spans.get(n)) for n, _, _ in HARDWARE_AXES
    )
    mapping_axes: tuple[Axis, ...]
    template, template_span, mapping_axes = None, None, ()
    if "mapping" in top:
        template, template_span, mapping_axes = _load_mapping(doc, top["mapping"][1], network)
    known = {a.name for a in hardware_axes + mapping_axes if a.numeric} | set(METRIC_NAMES)
    constraints: tuple[Constraint, ...] = ()
    if "constraints" in top:
        constraints = tuple(
            _constraint(doc, item, known)
            for item in doc.sequence(top["constraints"][1], "constraints")
        )
    chunk = (
        doc.integer(top["chunk_designs"][1], "chunk_designs") if "chunk_designs" in top else 1 << 19
    )
    policy = PolicyName.REALISTIC
    if "simulate" in top:
        block = doc.mapping(top["simulate"][1], "simulate", ("policy",))
        if "policy" in block:
            name = doc.scalar(block["policy"][1], "policy")
            if name not in tuple(PolicyName):
                raise doc.error(
                    block["policy"][1],
                    f"unknown policy '{name}'",
                    hint="one of " + ", ".join(PolicyName),
                )
            policy = PolicyName(name)
    description = doc.scalar(top["description"][1], "description") if "description" in top else ""
    digest = hashlib.sha256(f"sweep-format-1\n{text}".encode())
    digest.update(maestro_text(network).encode())
    return SweepSpace(
        name=name,
        path=shown,
        description=description,
        network=network,
        mapping_axes=mapping_axes,
        hardware_axes=hardware_axes,
        template=template,
        constraints=constraints,
        chunk_designs=chunk,
        simulate_policy=policy,
        fingerprint=digest.hexdigest()[:16],
        template_span=template_span,
    )


def _axis_value(doc: _Doc, key: str, node: yaml.Node) -> int | str:
    if key == "topology":
        value = doc.scalar(node, key)
        if value not in TOPOLOGIES:
            raise doc.error(
                node, f"unknown topology '{value}'", hint="one of " + ", ".join(TOPOLOGIES)
            )
        return value
    return doc.integer(node, key, _AXIS_MINIMUM.get(key, 1))


def _axis_values(doc: _Doc, key: str, node: yaml.Node) -> tuple[int | str, ...]:
    """A list of values, or ``{from, to, step}`` / ``{from, to, factor}``."""
    if isinstance(node, yaml.MappingNode):
        block = doc.mapping(node, f"the range of {key}", ("from", "to", "step", "factor"))
        for needed in ("from", "to"):
            if needed not in block:
                raise doc.error(node, f"the range of {key} needs '{needed}'")
        if ("step" in block) == ("factor" in block):
            raise doc.error(node, f"the range of {key} needs one of 'step' or 'factor'")
        low = doc.integer(block["from"][1], f"{key} from", _AXIS_MINIMUM.get(key, 1))
        high = doc.integer(block["to"][1], f"{key} to", low)
        values: list[int | str] = []
        if "step" in block:
            step = doc.integer(block["step"][1], f"{key} step")
            values = list(range(low, high + 1, step))
        else:
            factor = doc.integer(block["factor"][1], f"{key} factor", 2)
            if low == 0:
                raise doc.error(block["from"][1], f"a geometric range of {key} cannot start at 0")
            value = low
            while value <= high:
                values.append(value)
                value *= factor
        return tuple(values)
    items = doc.sequence(node, f"axis {key}")
    if not items:
        raise doc.error(node, f"axis {key} has no values")
    out = tuple(_axis_value(doc, key, item) for item in items)
    _no_repeats(doc, items, out, key)
    return out


def _no_repeats(doc: _Doc, items: list[yaml.Node], values: tuple[object, ...], key: str) -> None:
    seen: set[object] = set()
    for item, value in zip(items, values, strict=True):
        if value in seen:
            raise doc.error(item, f"value {value} is repeated in {key}")
        seen.add(value)


def _load_mapping(
    doc: _Doc, node: yaml.Node, network: Network
) -> tuple[str, SourceSpan, tuple[Axis, ...]]:
    block = doc.mapping(node, "mapping", ("style", "template", "params"))
    if ("style" in block) == ("template" in block):
        raise doc.error(node, "mapping needs exactly one of 'style' or 'template'")
    params: dict[str, tuple[int | str, ...]] = {}
    spans: dict[str, SourceSpan] = {}
    key_nodes: dict[str, yaml.Node] = {}
    if "style" in block:
        style_node = block["style"][1]
        style = doc.scalar(style_node, "style")
        if style not in STYLES:
            raise doc.error(
                style_node, f"unknown mapping style '{style}'", hint="one of " + ", ".join(STYLES)
            )
        template, defaults = STYLES[style]
        params.update(defaults)
        template_span = doc.span(style_node)
    else:
        template_node = block["template"][1]
        template = doc.scalar(template_node, "template")
        template_span = doc.span(template_node)
    if "params" in block:
        for key, (key_node, value) in doc.mapping(block["params"][1], "params", None).items():
            params[key] = _param_values(doc, key, value)
            spans[key] = doc.span(key_node)
            key_nodes[key] = key_node
    used = set(_PLACEHOLDER.findall(template))
    for value in (v for values in params.values() for v in values):
        used |= set(_PLACEHOLDER.findall(str(value)))
    missing = sorted(used - set(params))
    if missing:
        raise doc.error(
            block["template" if "template" in block else "style"][1],
            f"the template uses {{{missing[0]}}}, which 'params' does not give",
        )
    for key in params:
        if key not in used:
            raise doc.error(key_nodes[key], f"parameter '{key}' is not used by the template")
    axes = tuple(Axis(k, v, spans.get(k)) for k, v in params.items())
    first = instantiate(template, {a.name: a.values[0] for a in axes})
    for entry in network.layers:
        try:
            _parse_template(first, entry.layer, template_span)
        except SpecError as exc:
            raise doc.error(
                block["template" if "template" in block else "style"][1],
                f"with the first value of every parameter the template does not map layer"
                f" '{entry.layer.name}': {exc.first.message}",
            ) from None
    return template, template_span, axes


def _param_values(doc: _Doc, key: str, node: yaml.Node) -> tuple[int | str, ...]:
    """A list (integers stay integers), a numeric range, or ``{permute: [lines]}``."""
    if isinstance(node, yaml.MappingNode):
        block = doc.mapping(node, f"parameter {key}", ("from", "to", "step", "factor", "permute"))
        if "permute" in block:
            items = [doc.scalar(n, "a line") for n in doc.sequence(block["permute"][1], "permute")]
            return tuple("\n".join(order) for order in itertools.permutations(items))
        return _axis_values(doc, key, node)
    items = doc.sequence(node, f"parameter {key}")
    if not items:
        raise doc.error(node, f"parameter {key} has no values")
    values: list[int | str] = []
    for item in items:
        text = doc.scalar(item, f"a value of {key}")
        values.append(int(text) if re.fullmatch(r"\d+", text) else text)
    _no_repeats(doc, items, tuple(values), key)
    return tuple(values)


_ALLOWED_NODES = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.Compare,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.Eq,
    ast.NotEq,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.Pow,
    ast.UnaryOp,
    ast.USub,
    ast.UAdd,
    ast.Not,
    ast.Name,
    ast.Load,
    ast.Constant,
)


def _constraint(doc: _Doc, node: yaml.Node, known: set[str]) -> Constraint:
    text = doc.scalar(node, "a constraint")
    span = doc.span(node)
    quoted = 1 if node.style in ("'", '"') else 0

    def at(col: int, length: int, message: str, hint: str | None = None) -> SpecError:
        where = SourceSpan(
            span.path, span.line, span.col + quoted + col, max(1, length), span.line_text
        )
        return SpecError.at(where, message, hint)

    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise at((exc.offset or 1) - 1, 1, f"constraint is not an expression: {exc.msg}") from None
    for sub in ast.walk(tree):
        col = getattr(sub, "col_offset", 0)
        length = getattr(sub, "end_col_offset", col + 1) - col
        if not isinstance(sub, _ALLOWED_NODES):
            raise at(
                col,
                length,
                f"a constraint cannot use '{ast.unparse(sub)}'",
                hint="use numbers, names, + - * / // % **, comparisons, and, or, not",
            )
        if isinstance(sub, ast.Constant) and not isinstance(sub.value, int | float):
            raise at(col, length, f"a constraint cannot use {sub.value!r}")
        if isinstance(sub, ast.Name) and sub.id not in known:
            raise at(
                col,
                length,
                f"unknown name '{sub.id}' in constraint",
                hint="one of " + ", ".join(sorted(known)),
            )
    if not isinstance(tree.body, ast.Compare | ast.BoolOp) and not (
        isinstance(tree.body, ast.UnaryOp) and isinstance(tree.body.op, ast.Not)
    ):
        raise at(0, len(text), "a constraint must be a comparison, e.g. 'l1 * pes + l2 <= 4000000'")
    return Constraint(text, tree, span)
