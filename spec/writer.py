"""Writers for the formats the front ends read: MAESTRO ``.m`` networks (with a Dataflow
per layer) and YAML scenarios with inline layers. What is written parses back to the
same layers and mappings (the tests check the round trip)."""

from __future__ import annotations

import json
import re
from dataclasses import fields

from .hardware import Hardware
from .layer import Layer
from .mapping import Mapping

__all__ = ["format_dataflow", "write_m_network", "write_scenario"]


def _dims(layer: Layer) -> dict[str, int]:
    """The dimensions that define the layer: declared ones, output extents derived."""
    skip = {"Y'", "X'"} if layer.type.is_conv else set()
    return {d: v for d, v in layer.sizes if d not in skip and (d != "N" or v != 1)}


def format_dataflow(mapping: Mapping) -> list[str]:
    """One directive per line, ``;``-terminated, as MAESTRO files write them."""
    return [f"{directive};" for directive in mapping.directives]


def write_m_network(
    name: str, entries: list[tuple[Layer, Mapping | None]], comments: list[str] | None = None
) -> str:
    """A MAESTRO ``.m`` network; ``comments`` go on top as ``//`` lines."""
    lines = [f"// {c}" if c else "//" for c in comments or []]
    lines.append(f"Network {name} {{")
    for layer, mapping in entries:
        lines.append(f"  Layer {layer.name} {{")
        lines.append(f"    Type: {layer.type.value}")
        if layer.type.is_conv:
            lines.append(f"    Stride {{ X: {layer.stride_x}, Y: {layer.stride_y} }}")
        dims = ", ".join(f"{d}: {v}" for d, v in _dims(layer).items())
        lines.append(f"    Dimensions {{ {dims} }}")
        if mapping is not None:
            lines.append("    Dataflow {")
            lines.extend(f"      {text}" for text in format_dataflow(mapping))
            lines.append("    }")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _hardware_fields(hardware: Hardware) -> dict[str, object]:
    """The fields that differ from :class:`Hardware`'s defaults (always ``num_pes``)."""
    base = Hardware()
    out: dict[str, object] = {"num_pes": hardware.num_pes}
    for f in fields(Hardware):
        if f.name == "source":
            continue
        value = getattr(hardware, f.name)
        if value != getattr(base, f.name):
            out[f.name] = value
    return out


def write_scenario(
    name: str,
    description: str,
    entries: list[tuple[Layer, Mapping]],
    hardware: Hardware,
) -> str:
    """A YAML scenario with inline layers, ready for ``metronome validate``."""
    lines = [f"name: {_q(name)}", f"description: {_q(description)}", "layers:"]
    for layer, mapping in entries:
        lines.append(f"  - name: {_q(layer.name)}")
        lines.append(f"    type: {layer.type.value}")
        if layer.type.is_conv and (layer.stride_y, layer.stride_x) != (1, 1):
            lines.append(f"    stride: {{Y: {layer.stride_y}, X: {layer.stride_x}}}")
        dims = ", ".join(f"{_q(d)}: {v}" for d, v in _dims(layer).items())
        lines.append(f"    dims: {{{dims}}}")
        lines.append("    dataflow: |")
        lines.extend(f"      {text}" for text in format_dataflow(mapping))
    lines.append("hardware:")
    for key, value in _hardware_fields(hardware).items():
        shown = _q(value) if isinstance(value, str) else str(value).lower()
        lines.append(f"  {key}: {shown}")
    return "\n".join(lines) + "\n"


def _q(value: object) -> str:
    """A YAML scalar: plain for simple tokens, else double-quoted (JSON's quoting is
    valid YAML)."""
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text)


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_YAML_WORDS = frozenset({"yes", "no", "on", "off", "true", "false", "null", "y", "n"})
