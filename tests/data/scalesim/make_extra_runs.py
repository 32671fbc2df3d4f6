"""Regenerate ``runs_extra/``: SCALE-Sim v3 on small layers and non-square arrays that the
shared reference runs do not cover (a stride that does not divide ``H - R``, a 1x1 layer,
a GEMM; arrays 4x8, 8x4, 5x7, 16x16; OS, WS, IS).

Needs an interpreter that imports ``scalesim`` (3.0.0 needs numpy < 2.4), e.g.::

    python3 -m venv /tmp/ss && /tmp/ss/bin/pip install scalesim 'numpy<2.4'
    /tmp/ss/bin/python tests/data/scalesim/make_extra_runs.py

Each run keeps SCALE-Sim's inputs and three reports; the config is the shared runs'
``tiny_in10_os_8x8/scale.cfg`` with the array and dataflow changed.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path

from scalesim.scale_sim import scalesim

HERE = Path(__file__).parent
OUT = HERE / "runs_extra"
BASE = HERE / "runs" / "tiny_in10_os_8x8" / "scale.cfg"
CONV_HEADER = (
    "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels,"
    " Num Filter, Strides,"
)
LAYERS = {
    "tiny": (CONV_HEADER, "tiny, 10, 10, 3, 3, 2, 4, 1,"),
    "s2": (CONV_HEADER, "s2, 9, 9, 3, 3, 2, 5, 2,"),
    "pw": (CONV_HEADER, "pw, 7, 7, 1, 1, 16, 24, 1,"),
    "s3": (CONV_HEADER, "s3, 11, 13, 2, 3, 3, 7, 3,"),
    "g": ("Layer, M, N, K,", "g, 20, 9, 11,"),
}
ARRAYS = ((4, 8), (8, 4), (5, 7), (16, 16))
REPORTS = ("COMPUTE_REPORT.csv", "DETAILED_ACCESS_REPORT.csv", "BANDWIDTH_REPORT.csv")


def main() -> None:
    """Run every case and keep its inputs and reports under runs_extra/NAME."""
    base = BASE.read_text(encoding="utf-8")
    for (name, (header, row)), (rows, cols), dataflow in itertools.product(
        LAYERS.items(), ARRAYS, ("os", "ws", "is")
    ):
        run = f"{name}_{dataflow}_{rows}x{cols}"
        target = OUT / run
        target.mkdir(parents=True, exist_ok=True)
        cfg = (
            base.replace("ArrayHeight:    8", f"ArrayHeight:    {rows}")
            .replace("ArrayWidth:     8", f"ArrayWidth:     {cols}")
            .replace("Dataflow : os", f"Dataflow : {dataflow}")
            .replace("run_name = sim", f"run_name = {run}")
        )
        (target / "scale.cfg").write_text(cfg, encoding="utf-8")
        (target / "topology.csv").write_text(f"{header}\n{row}\n", encoding="utf-8")
        with tempfile.TemporaryDirectory() as tmp:
            layout = Path(tmp) / "layout.csv"
            layout.write_text("Layer name, (header only),\n", encoding="utf-8")
            sim = scalesim(
                save_disk_space=True,
                verbose=False,
                config=str(target / "scale.cfg"),
                topology=str(target / "topology.csv"),
                layout=str(layout),
                input_type_gemm=header.startswith("Layer, M"),
            )
            sim.run_scale(top_path=tmp)
            for report in REPORTS:
                shutil.copy(Path(tmp) / run / report, target / report)


if __name__ == "__main__":
    main()
