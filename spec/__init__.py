"""The engine-independent description both engines read: layers, mappings, hardware,
networks, the MAESTRO ``.m`` and 2018-pragma front ends, YAML scenarios, and errors.

Nothing here computes a cost; everything here must read the user's input exactly as
they meant it.
"""

from __future__ import annotations

from .hardware import UNBOUNDED, Hardware
from .layer import TENSORS, Layer, LayerType, TensorSpec, make_layer
from .mapping import ClusterDirective, ClusterLevel, Directive, MapDirective, Mapping
from .network import MappedLayer, Network
from .source import Diagnostic, SourceSpan, SpecError, SpecWarning

__all__ = [
    "TENSORS",
    "UNBOUNDED",
    "ClusterDirective",
    "ClusterLevel",
    "Diagnostic",
    "Directive",
    "Hardware",
    "Layer",
    "LayerType",
    "MapDirective",
    "MappedLayer",
    "Mapping",
    "Network",
    "SourceSpan",
    "SpecError",
    "SpecWarning",
    "TensorSpec",
    "make_layer",
]
