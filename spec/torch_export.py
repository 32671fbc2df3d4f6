"""PyTorch models through ONNX: ``torchvision:NAME`` or ``module:function`` (returning an
``nn.Module``) is exported with ``torch.onnx.export`` and read by
:func:`metronome.spec.onnx_import.import_model`. PyTorch is an optional extra
(``pip install 'metronome[torch]'``); nothing else in Metronome imports it.
"""

from __future__ import annotations

import importlib
import io
from typing import Any

from .onnx_import import ImportedModel, import_model
from .source import SpecError

__all__ = ["export_torch"]


def _module(spec: str) -> Any:
    source, _, name = spec.partition(":")
    if source == "torchvision":
        try:
            import torchvision.models as models
        except ModuleNotFoundError:
            raise SpecError.at(
                None,
                f"{spec}: torchvision models need PyTorch and torchvision",
                hint="install them with: pip install 'metronome[torch]' torchvision",
            ) from None
        except Exception as exc:  # a torchvision built for another torch fails here
            raise SpecError.at(
                None,
                f"{spec}: torchvision does not load: {exc}",
                hint="install the torchvision release built for the installed torch",
            ) from None
        if not hasattr(models, name):
            raise SpecError.at(None, f"{spec}: torchvision has no model '{name}'")
        return getattr(models, name)(weights=None)
    try:
        module = importlib.import_module(source)
    except ModuleNotFoundError as exc:
        raise SpecError.at(None, f"{spec}: cannot import module '{exc.name}'") from None
    factory = getattr(module, name, None)
    if not callable(factory):
        raise SpecError.at(None, f"{spec}: module '{source}' has no function '{name}'")
    return factory()


def export_torch(
    spec: str,
    input_shape: tuple[int, ...],
    *,
    batch: int | None = None,
    maestro_dims: bool = False,
) -> ImportedModel:
    """Export the model named by ``spec`` to ONNX in memory and import it."""
    try:
        import onnx
        import torch
    except ModuleNotFoundError as exc:
        raise SpecError.at(
            None,
            f"{spec}: PyTorch models need the '{exc.name}' package",
            hint="install the extra: pip install 'metronome[torch]'",
        ) from None
    net = _module(spec)
    if not isinstance(net, torch.nn.Module):
        raise SpecError.at(None, f"{spec}: returned {type(net).__name__}, not an nn.Module")
    net.eval()
    example = torch.zeros((batch or 1, *input_shape))
    buffer = io.BytesIO()
    try:
        torch.onnx.export(net, (example,), buffer, dynamo=False)
    except Exception as exc:
        raise SpecError.at(None, f"{spec}: ONNX export failed: {exc}") from None
    model = onnx.load_from_string(buffer.getvalue())
    name = spec.partition(":")[2]
    model.graph.name = name
    return import_model(model, spec, batch=batch, maestro_dims=maestro_dims)
