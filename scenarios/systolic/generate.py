"""Write SCALE-Sim topology CSVs of VGG16 and ResNet50 from the layer sizes of MAESTRO's
bundled mapping files (tests/data/maestro-inputs), as SCALE-Sim takes them: CONV layers
only, one row per layer, every row ending with a comma. SCALE-Sim has no padding field,
so the IFMAP is given padded by ``(R - 1) // 2`` on each side ("same" convolution, as
the reference runs do: VGG16 CONV1 is 226 x 226), unless the filter covers the input.

Usage: python scenarios/systolic/generate.py (from the repository root)."""

from __future__ import annotations

from pathlib import Path

from metronome.spec.fileio import atomic_write_text
from metronome.spec.layer import LayerType
from metronome.spec.loader import load_network

HERE = Path(__file__).parent
MAPPINGS = HERE.parent.parent / "tests" / "data" / "maestro-inputs" / "data" / "mapping"
NETWORKS = {"vgg16": "vgg16_nlr.m", "resnet50": "Resnet50_kcp_ws.m"}
HEADER = (
    "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels,"
    " Num Filter, Strides,"
)


def topology(mapping: Path) -> str:
    """The CSV text for the CONV layers of ``mapping``."""
    rows = [HEADER]
    for entry in load_network(str(mapping)).layers:
        layer = entry.layer
        if layer.type is not LayerType.CONV:
            continue
        size = dict(layer.sizes)
        # A filter as large as its input (ResNet50's FC1000 as a 7x7 conv) is not padded.
        pad_y = 2 * ((size["R"] - 1) // 2) if size["R"] < size["Y"] else 0
        pad_x = 2 * ((size["S"] - 1) // 2) if size["S"] < size["X"] else 0
        rows.append(
            f"{entry.name}, {size['Y'] + pad_y}, {size['X'] + pad_x}, {size['R']}, {size['S']},"
            f" {size['C']}, {size['K']}, {layer.stride_y},"
        )
    return "\n".join(rows) + "\n"


def main() -> None:
    """Write topologies/<network>.csv."""
    for name, mapping in NETWORKS.items():
        atomic_write_text(HERE / "topologies" / f"{name}.csv", topology(MAPPINGS / mapping))


if __name__ == "__main__":
    main()
