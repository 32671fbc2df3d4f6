"""Speed of ``metronome import`` on models of 100+ layers with MACs.

Builds, with ``onnx.helper`` (weights as shaped graph inputs, so no parameter data):
ResNet50 (54 layers with MACs, 122 nodes), ResNeXt50 and a chain of 100 3x3 convs with
ReLUs (100 layers, 200 nodes), and times the whole ``metronome import MODEL -o OUT.yaml``
command in-process (read, check, shape inference, conversion, a ``kcp_ws`` template per
layer, the table and the YAML), median of ``--runs`` runs; and the same command as a
fresh process, start-up included: its wall time and its CPU time (user + system; on a
shared, loaded machine the wall time mostly measures the other processes).

Target: <= 2 s for a 100-layer model, in process and as a process's CPU time.
Run: ``.venv/bin/python benchmarks/import_speed.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import onnx  # noqa: E402

from metronome.validation.cli import main  # noqa: E402
from tests.spec.onnx_nets import Builder, resnet50, resnext50  # noqa: E402

TARGET_S = 2.0


def chain(layers: int = 100) -> onnx.ModelProto:
    """``layers`` 3x3 "same" convolutions of 64 channels on 56x56, each with a ReLU."""
    b = Builder("chain", input_shape=(1, 64, 56, 56))
    x = "x"
    for i in range(layers):
        x = b.relu(f"relu{i}", b.conv(f"conv{i}", x, 64, 3))
    return b.model()


def _time(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(argv) == 0
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(runs: int) -> bool:
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        print(
            f"{'model':<10} {'layers':>6} {'nodes':>6} {'in-process s':>13}"
            f" {'process wall s':>15} {'process CPU s':>14}"
        )
        for name, build in (("chain100", chain), ("Resnet50", resnet50), ("ResNeXt50", resnext50)):
            model = build()
            path = Path(tmp) / f"{name}.onnx"
            onnx.save(model, path)
            out = Path(tmp) / f"{name}.yaml"
            argv = ["import", str(path), "--num-pes", "256", "-o", str(out)]
            seconds = _time(argv, runs)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "metronome.validation", *argv],
                cwd=REPO,
                check=True,
                capture_output=True,
            )
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            macs_layers = sum(1 for n in model.graph.node if n.op_type in ("Conv", "Gemm"))
            print(
                f"{name:<10} {macs_layers:>6} {len(model.graph.node):>6}"
                f" {seconds:>13.3f} {wall:>15.3f} {cpu:>14.3f}"
            )
            ok &= seconds <= TARGET_S and cpu <= TARGET_S
    print(
        f"target: <= {TARGET_S} s per import (in process, process CPU): {'met' if ok else 'MISSED'}"
    )
    return ok


def _main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    return 0 if run(parser.parse_args().runs) else 1


if __name__ == "__main__":
    sys.exit(_main())
