"""A network: named, ordered layers, each with the mapping it runs under."""

from __future__ import annotations

from dataclasses import dataclass, field

from .hardware import Hardware
from .layer import Layer
from .mapping import Mapping
from .source import Diagnostic, SourceSpan, SpecError

__all__ = ["MappedLayer", "Network"]


@dataclass(frozen=True, slots=True)
class MappedLayer:
    """A layer and its mapping (``None`` for model-only files that carry no Dataflow).

    ``mapping_inherited`` is set when the layer had no Dataflow block of its own and
    took the previous layer's directives (re-resolved against its own sizes).
    """

    layer: Layer
    mapping: Mapping | None
    mapping_inherited: bool = False
    warnings: tuple[Diagnostic, ...] = field(default=(), compare=False)

    @property
    def name(self) -> str:
        """The layer's name."""
        return self.layer.name

    def require_mapping(self) -> Mapping:
        """The mapping, or a :class:`SpecError` saying this layer has none."""
        if self.mapping is None:
            raise SpecError.at(
                self.layer.span,
                f"layer '{self.layer.name}' has no Dataflow block, so there is nothing to run",
                hint="this looks like a model-only file; use a mapping file (data/mapping/*.m)",
            )
        return self.mapping


@dataclass(frozen=True, slots=True)
class Network:
    """Layers in file order. Front ends that also describe hardware (the 2018 pragma
    language) attach it as ``hardware``."""

    name: str
    layers: tuple[MappedLayer, ...]
    path: str = ""
    hardware: Hardware | None = None
    span: SourceSpan | None = field(default=None, compare=False)

    def layer(self, name: str) -> MappedLayer:
        """The first layer called ``name`` (real networks reuse names); SpecError listing
        the names if there is none."""
        for entry in self.layers:
            if entry.name == name:
                return entry
        names = ", ".join(e.name for e in self.layers[:12])
        more = " ..." if len(self.layers) > 12 else ""
        raise SpecError.at(
            None,
            f"network '{self.name}' has no layer named '{name}'",
            hint=f"layers: {names}{more}",
        )

    def select(self, names: list[str] | tuple[str, ...] | None) -> Network:
        """A network restricted to the named layers, every layer of each name, in file
        order (the whole network when ``names`` is empty)."""
        if not names:
            return self
        missing = [n for n in names if not any(e.name == n for e in self.layers)]
        if missing:
            self.layer(missing[0])
        chosen = tuple(e for e in self.layers if e.name in names)
        return Network(self.name, chosen, self.path, self.hardware, self.span)
