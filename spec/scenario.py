"""YAML scenarios: one file = layers + mapping + hardware + simulator options +
reference numbers, everything the harness needs to run both engines on one case.

Example (paths are relative to the scenario file)::

    name: x01_ws_kspatial
    description: K spatial over 4 PEs, weights stationary, input multicast
    network:
      file: maps/x01_ws_kspatial.m     # .m mapping or .pragma file
      layers: [L]                      # optional subset
      shrink: {Y: 28, X: 28}           # optional size caps, applied before Sz(D)
    # ...or inline layers instead of `network`:
    # layers:
    #   - name: L
    #     type: CONV
    #     stride: {Y: 1, X: 1}
    #     dims: {K: 4, C: 1, R: 1, S: 1, Y: 1, X: 8}
    #     dataflow: |
    #       SpatialMap(1,1) K;
    #       TemporalMap(1,1) X;
    hardware:
      file: hw/xc_pe4_bw64.m           # MAESTRO hardware file (NoC latency = NoC_NumHops)
      topology: bus                    # any metronome.spec.Hardware field overrides it
    simulator:
      policies: [maestro, realistic]
    sweep:                             # optional: one run per combination
      noc_bw_elems_per_cycle: [1, 4, 16]
    reference:                         # optional numbers from elsewhere, with a source
      source: MAESTRO 4eb08d17 run x01_ws_kspatial__pe4
      layers: {L: {runtime_cycles: 9}}

Every problem is a :class:`SpecError` at the offending YAML line and column.
"""

from __future__ import annotations

import difflib
import itertools
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .hardware import Hardware
from .layer import LayerType, make_layer
from .lexer import read_source, tokenize
from .loader import load_network
from .maestro import parse_dataflow_tokens, parse_hw_file
from .names import PolicyName
from .network import MappedLayer, Network
from .source import SourceSpan, SpecError

__all__ = ["Scenario", "load_scenario"]

_HW_FIELDS = {f.name: f for f in fields(Hardware) if f.name != "source"}


@dataclass(frozen=True, slots=True)
class Scenario:
    """A parsed scenario file."""

    name: str
    path: str
    description: str
    network: Network
    hardware: Hardware
    policies: tuple[PolicyName, ...] = tuple(PolicyName)
    functional: bool = False
    sweep: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    reference: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = ()
    reference_source: str = ""
    tags: tuple[str, ...] = ()
    span: SourceSpan | None = field(default=None, compare=False)

    def variants(self) -> list[tuple[str, Hardware]]:
        """(label, hardware) for every combination of the sweep (just the base without one)."""
        if not self.sweep:
            return [("", self.hardware)]
        names = [name for name, _ in self.sweep]
        out = []
        for values in itertools.product(*(vals for _, vals in self.sweep)):
            label = ",".join(f"{n}={v}" for n, v in zip(names, values, strict=True))
            out.append((label, self.hardware.with_changes(**dict(zip(names, values, strict=True)))))
        return out


class _Doc:
    """A composed YAML document with helpers that report errors at node positions."""

    def __init__(self, text: str, path: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def span(self, node: yaml.Node) -> SourceSpan:
        mark = node.start_mark
        line_text = self.lines[mark.line] if mark.line < len(self.lines) else ""
        end = node.end_mark
        length = end.column - mark.column if end.line == mark.line else len(line_text) - mark.column
        return SourceSpan(self.path, mark.line + 1, mark.column + 1, max(1, length), line_text)

    def error(self, node: yaml.Node, message: str, hint: str | None = None) -> SpecError:
        return SpecError.at(self.span(node), message, hint)

    def mapping(
        self, node: yaml.Node, what: str, allowed: tuple[str, ...] | None
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """A YAML mapping as ``{key: (key node, value node)}``; unknown or repeated keys
        are errors."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{what} must be a mapping (key: value lines)")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = self.scalar(key_node, f"a key of {what}")
            if key in out:
                first = out[key][0].start_mark.line + 1
                raise self.error(
                    key_node, f"key '{key}' is repeated in {what} (first at line {first})"
                )
            if allowed is not None and key not in allowed:
                close = _closest(key, allowed)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise self.error(
                    key_node,
                    f"unknown key '{key}' in {what}",
                    hint=hint + "allowed: " + ", ".join(allowed),
                )
            out[key] = (key_node, value_node)
        return out

    def scalar(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, f"{what} must be a single value")
        return str(node.value)

    def integer(self, node: yaml.Node, what: str, minimum: int = 1) -> int:
        text = self.scalar(node, what)
        try:
            value = int(text)
        except ValueError:
            raise self.error(node, f"{what} must be an integer, found '{text}'") from None
        if value < minimum:
            raise self.error(node, f"{what} must be >= {minimum}, got {value}")
        return value

    def number(self, node: yaml.Node, what: str) -> float:
        text = self.scalar(node, what)
        try:
            value = float(text)
        except ValueError:
            raise self.error(node, f"{what} must be a number, found '{text}'") from None
        if value < 0 or value != value:
            raise self.error(node, f"{what} must be a non-negative number, got {text}")
        return value

    def boolean(self, node: yaml.Node, what: str) -> bool:
        text = self.scalar(node, what).lower()
        if text in ("true", "yes", "on"):
            return True
        if text in ("false", "no", "off"):
            return False
        raise self.error(node, f"{what} must be true or false, found '{text}'")

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if isinstance(node, yaml.SequenceNode):
            return list(node.value)
        if isinstance(node, yaml.ScalarNode):
            return [node]
        raise self.error(node, f"{what} must be a list")

    def text_tokens(self, node: yaml.Node) -> tuple[list[Any], SourceSpan]:
        """Tokens of a scalar holding directive text, with spans in the YAML file."""
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, "a dataflow must be text (use a '|' block)")
        start, end = node.start_mark, node.end_mark
        if node.style in ("|", ">"):
            first = start.line + 1
            body = self.lines[first : end.line + (1 if end.column else 0)]
            eof_line = first + max(len(body), 1)
            tokens = tokenize("\n".join(body), self.path, first_line=first + 1)
        else:
            line = self.lines[start.line]
            stop = end.column if end.line == start.line else len(line)
            blank = " " * start.column + line[start.column : stop] + " " * (len(line) - stop)
            blank = blank.replace('"', " ").replace("'", " ")
            tokens = tokenize(blank, self.path, first_line=start.line + 1, display=[line])
            eof_line = start.line + 1
        eof_text = self.lines[eof_line - 1] if eof_line - 1 < len(self.lines) else ""
        eof = SourceSpan(self.path, eof_line, len(eof_text) + 1, 1, eof_text)
        return tokens, eof


def _closest(key: str, allowed: tuple[str, ...]) -> list[str]:
    """The allowed key the user most likely meant: longest shared prefix (at least 4
    characters, which tells ``noc_bandwidth`` from ``noc_arbitration``), else difflib."""

    def shared(a: str) -> int:
        n = 0
        while n < min(len(a), len(key)) and a[n] == key[n]:
            n += 1
        return n

    best = max(allowed, key=lambda a: (shared(a), -len(a)))
    if shared(best) >= 4:
        return [best]
    return difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)


def compose_yaml(path: str | Path, what: str) -> tuple[_Doc, yaml.Node]:
    """The YAML node tree of ``path`` (a ``what`` file), errors at their position."""
    shown = str(path)
    text = read_source(path)
    doc = _Doc(text, shown)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line if mark else 0
        col = mark.column if mark else 0
        line_text = doc.lines[line] if line < len(doc.lines) else ""
        raise SpecError.at(
            SourceSpan(shown, line + 1, col + 1, 1, line_text),
            f"invalid YAML: {exc.problem}",
            hint="check the indentation and the brackets of this line and the one above",
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError.at(None, f"{shown}: invalid YAML: {exc}") from None
    if root is None:
        raise SpecError.at(SourceSpan(shown, 1, 1, 1, ""), f"empty {what} file")
    return doc, root


_TOP_KEYS = (
    "name",
    "description",
    "network",
    "layers",
    "hardware",
    "simulator",
    "sweep",
    "reference",
    "tags",
)


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a YAML scenario file."""
    shown = str(path)
    doc, root = compose_yaml(path, "scenario")
    top = doc.mapping(root, "the scenario", _TOP_KEYS)
    base = Path(shown).parent
    name = doc.scalar(top["name"][1], "name") if "name" in top else Path(shown).stem
    if ("network" in top) == ("layers" in top):
        raise doc.error(root, "a scenario needs exactly one of 'network' (a file) or 'layers'")
    if "network" in top:
        network = _load_network_block(doc, top["network"][1], base)
    else:
        network = _load_inline_layers(doc, top["layers"][1], name)
    if "hardware" in top:
        hardware = _load_hardware(doc, top["hardware"][1], base, network.hardware)
    elif network.hardware is not None:
        hardware = network.hardware
    else:
        raise doc.error(root, "a scenario needs a 'hardware' block")
    policies, functional = tuple(PolicyName), False
    if "simulator" in top:
        policies, functional = _load_simulator(doc, top["simulator"][1])
    sweep = _load_sweep(doc, top["sweep"][1], hardware) if "sweep" in top else ()
    reference: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = ()
    source = ""
    if "reference" in top:
        reference, source = _load_reference(doc, top["reference"][1], network)
    tags = (
        tuple(doc.scalar(n, "a tag") for n in doc.sequence(top["tags"][1], "tags"))
        if "tags" in top
        else ()
    )
    description = doc.scalar(top["description"][1], "description") if "description" in top else ""
    return Scenario(
        name=name,
        path=shown,
        description=description,
        network=network,
        hardware=hardware,
        policies=policies,
        functional=functional,
        sweep=sweep,
        reference=reference,
        reference_source=source,
        tags=tags,
        span=doc.span(root),
    )


def _load_network_block(doc: _Doc, node: yaml.Node, base: Path) -> Network:
    block = doc.mapping(node, "network", ("file", "layers", "shrink"))
    if "file" not in block:
        raise doc.error(node, "network needs a 'file' (a .m mapping or .pragma file)")
    file_node = block["file"][1]
    target = base / doc.scalar(file_node, "network file")
    if not target.is_file():
        raise doc.error(file_node, f"no such file: {doc.scalar(file_node, 'file')}")
    shrink = None
    if "shrink" in block:
        caps = doc.mapping(block["shrink"][1], "shrink", None)
        shrink = {dim: doc.integer(value, f"shrink {dim}") for dim, (_, value) in caps.items()}
    network = load_network(target, shrink=shrink)
    if "layers" in block:
        nodes = doc.sequence(block["layers"][1], "network layers")
        names = [doc.scalar(n, "a layer name") for n in nodes]
        for name, name_node in zip(names, nodes, strict=True):
            if not any(e.name == name for e in network.layers):
                raise doc.error(name_node, f"{target.name} has no layer named '{name}'")
        network = network.select(names)
    return network


def _load_inline_layers(doc: _Doc, node: yaml.Node, name: str) -> Network:
    entries: list[MappedLayer] = []
    for item in doc.sequence(node, "layers"):
        block = doc.mapping(item, "a layer", ("name", "type", "stride", "dims", "dataflow"))
        for key in ("name", "type", "dims", "dataflow"):
            if key not in block:
                raise doc.error(item, f"a layer needs '{key}'")
        layer_name = doc.scalar(block["name"][1], "layer name")
        type_node = block["type"][1]
        type_text = doc.scalar(type_node, "layer type").upper()
        if type_text == "FC":
            type_text = "GEMM"
        if type_text not in LayerType.__members__:
            raise doc.error(
                type_node,
                f"unknown layer type '{type_text}'",
                hint="one of CONV, DSCONV, NGCONV, TRCONV, GEMM, FC",
            )
        dims_block = doc.mapping(block["dims"][1], "dims", None)
        declared = {
            dim: doc.integer(value, f"dimension {dim}") for dim, (_, value) in dims_block.items()
        }
        spans = {dim: doc.span(key) for dim, (key, _) in dims_block.items()}
        strides = {"Y": 1, "X": 1}
        if "stride" in block:
            for dim, (_, value) in doc.mapping(block["stride"][1], "stride", ("Y", "X")).items():
                strides[dim] = doc.integer(value, f"stride {dim}")
        layer = make_layer(
            name=layer_name,
            type_=LayerType[type_text],
            declared=declared,
            stride_y=strides["Y"],
            stride_x=strides["X"],
            keyword=doc.scalar(type_node, "layer type").upper(),
            span=doc.span(block["name"][1]),
            dim_spans=spans,
        )
        tokens, eof = doc.text_tokens(block["dataflow"][1])
        mapping, warnings = parse_dataflow_tokens(
            tokens, eof, layer, doc.span(block["dataflow"][0])
        )
        entries.append(MappedLayer(layer, mapping, False, warnings))
    if not entries:
        raise doc.error(node, "'layers' is empty")
    return Network(name, tuple(entries), doc.path)


def _load_hardware(doc: _Doc, node: yaml.Node, base: Path, carried: Hardware | None) -> Hardware:
    """A hardware file, the hardware a pragma file carries, or inline fields; any field
    given inline overrides the base."""
    block = doc.mapping(node, "hardware", ("file", *_HW_FIELDS))
    if "file" in block:
        file_node = block["file"][1]
        target = base / doc.scalar(file_node, "hardware file")
        if not target.is_file():
            raise doc.error(file_node, f"no such file: {doc.scalar(file_node, 'file')}")
        hardware = parse_hw_file(target)
    elif carried is not None:
        hardware = carried
    elif "num_pes" not in block:
        raise doc.error(node, "hardware needs a 'file' or at least 'num_pes'")
    else:
        hardware = Hardware(source=f"scenario {doc.path}")
    changes: dict[str, Any] = {}
    for key, (_, value) in block.items():
        if key == "file":
            continue
        changes[key] = _hardware_value(doc, key, value)
    try:
        return hardware.with_changes(**changes)
    except SpecError as exc:
        raise doc.error(node, exc.first.message, exc.first.hint) from None


def _hardware_value(doc: _Doc, key: str, node: yaml.Node) -> Any:
    kind = _HW_FIELDS[key].type
    if kind in ("bool", bool):
        return doc.boolean(node, key)
    if kind in ("str", str):
        return doc.scalar(node, key)
    minimum = 0 if key.endswith("_cycles") or key == "noc_hops" else 1
    return doc.integer(node, key, minimum)


def _load_simulator(doc: _Doc, node: yaml.Node) -> tuple[tuple[PolicyName, ...], bool]:
    block = doc.mapping(node, "simulator", ("policies", "functional"))
    policies = tuple(PolicyName)
    if "policies" in block:
        chosen = []
        for item in doc.sequence(block["policies"][1], "policies"):
            policy = doc.scalar(item, "a policy")
            if policy not in tuple(PolicyName):
                raise doc.error(
                    item, f"unknown policy '{policy}'", hint="one of " + ", ".join(PolicyName)
                )
            chosen.append(PolicyName(policy))
        policies = tuple(chosen)
    functional = (
        doc.boolean(block["functional"][1], "functional") if "functional" in block else False
    )
    return policies, functional


def _load_sweep(
    doc: _Doc, node: yaml.Node, hardware: Hardware
) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    block = doc.mapping(node, "sweep", tuple(n for n in _HW_FIELDS if n != "source"))
    sweep = []
    for key, (_, value) in block.items():
        values = tuple(
            _hardware_value(doc, key, item) for item in doc.sequence(value, f"sweep {key}")
        )
        if not values:
            raise doc.error(value, f"sweep {key} has no values")
        for item, parsed in zip(doc.sequence(value, key), values, strict=True):
            try:
                hardware.with_changes(**{key: parsed})
            except SpecError as exc:
                raise doc.error(item, exc.first.message, exc.first.hint) from None
        sweep.append((key, values))
    return tuple(sweep)


def _load_reference(
    doc: _Doc, node: yaml.Node, network: Network
) -> tuple[tuple[tuple[str, tuple[tuple[str, float], ...]], ...], str]:
    block = doc.mapping(node, "reference", ("source", "layers"))
    if "source" not in block:
        raise doc.error(node, "reference needs a 'source' saying where the numbers come from")
    source = doc.scalar(block["source"][1], "reference source")
    layers = []
    if "layers" in block:
        for layer, (key, value) in doc.mapping(
            block["layers"][1], "reference layers", None
        ).items():
            if not any(e.name == layer for e in network.layers):
                raise doc.error(
                    key, f"reference names layer '{layer}', which the scenario does not run"
                )
            metrics = doc.mapping(value, f"reference of {layer}", None)
            layers.append(
                (
                    layer,
                    tuple((m, doc.number(v, f"reference {m}")) for m, (_, v) in metrics.items()),
                )
            )
    return tuple(layers), source
