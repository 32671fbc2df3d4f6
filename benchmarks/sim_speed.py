"""Simulator speed on full-size layers, one case per subprocess (so the peak RSS is the
case's own): wall time, peak RSS, simulated cycles/s, PE-steps/s and SimPy events/s
(the fast path's events are those of its NoC phase runs), against the targets.

Usage: python benchmarks/sim_speed.py [--topology bus|mesh|tree|...] [--only TEXT]
[--quick] [--policy realistic|maestro] [--residency-off] (Table-2 dataflows on VGG16
CONV1/CONV11 with 64 PEs, ResNet50 layers on 256 PEs, each <= 60 s and <= 2 GiB).
``--residency-off``: the policy without element-exact L1 residency
(``l1_keeps_reusable_data=False``), the reference the residency's cost is measured against."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REF = Path(__file__).parent.parent / "tests" / "data"
HW64 = REF / "maestro-reference" / "hw" / "table2_pe64_bw64.m"
RESNET = REF / "maestro-inputs" / "data" / "mapping" / "Resnet50_kcp_ws.m"
RESNET_LAYERS = ("CONV1", "CONV2_1_2", "CONV3_1_2", "CONV5_1_1")
GIB = 1024**3


def table2_cases() -> list[tuple[str, str, str, int]]:
    """(name, mapping file, layer, PEs) of the Table-2 dataflows on VGG16."""
    out = []
    for path in sorted((REF / "maestro-reference" / "table2").glob("*.m")):
        for layer in ("VGG16_CONV1", "VGG16_CONV11"):
            out.append((f"{path.stem}:{layer}", str(path), layer, 64))
    return out


def resnet_cases(
    pes: int, layers: tuple[str, ...] = RESNET_LAYERS
) -> list[tuple[str, str, str, int]]:
    """ResNet50 (KCP weight-stationary) layers on ``pes`` PEs."""
    return [(f"resnet50_kcp_ws:{name}@{pes}", str(RESNET), name, pes) for name in layers]


def run_case(path: str, layer: str, pes: int, topology: str, policy: str) -> dict[str, float]:
    """Simulate one layer in this process; the measurements as a dict (``policy`` ending
    in ``-off``: that policy without L1 residency)."""
    from metronome.sim import POLICIES, SimOptions, simulate
    from metronome.spec.loader import load_network
    from metronome.spec.maestro import parse_hw_file

    hw = parse_hw_file(HW64).with_changes(num_pes=pes, topology=topology)
    entry = load_network(path).layer(layer)
    name, off = policy.removesuffix("-off"), policy.endswith("-off")
    chosen = POLICIES[name]
    if off:
        chosen = chosen.with_switch(l1_keeps_reusable_data=False)
    started, cpu = time.perf_counter(), time.process_time()
    result = simulate(entry.layer, entry.mapping, hw, SimOptions(policy=chosen))
    wall = time.perf_counter() - started
    lr = result.layer
    return {
        "wall_s": wall,
        "cpu_s": time.process_time() - cpu,
        "rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "cycles": lr.runtime_cycles,
        "steps": lr.metric("steps"),
        "pe_steps": lr.metric("pe_steps"),
        "events": lr.metric("simpy_events"),
        "queueing_share": lr.metric("runtime_split_queueing_cycles") / max(1, lr.runtime_cycles),
    }


def measure(
    cases: list[tuple[str, str, str, int]], topology: str, limit_s: float, policy: str
) -> bool:
    """Run every case in a subprocess and print a table; True if all met the targets."""
    print(
        f"topology {topology}, policy {policy}; targets: <= {limit_s:.0f} s and <= 2 GiB per case"
    )
    print(
        f"{'case':<34} {'wall s':>7} {'CPU s':>7} {'RSS MiB':>8} {'cycles':>11} {'cyc/s':>11}"
        f" {'PE-steps/s':>11} {'events/s':>9} {'queue%':>6}  verdict"
    )
    ok = True
    for name, path, layer, pes in cases:
        cmd = [sys.executable, __file__, "--case", path, layer, str(pes), topology, policy]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{name:<34} FAILED: {done.stderr.strip().splitlines()[-1:]}", flush=True)
            ok = False
            continue
        m = json.loads(done.stdout.strip().splitlines()[-1])
        wall = m["wall_s"]
        good = wall <= limit_s and m["rss_bytes"] <= 2 * GIB
        ok &= good
        print(
            f"{name:<34} {wall:>7.1f} {m['cpu_s']:>7.1f} {m['rss_bytes'] / 2**20:>8.0f}"
            f" {m['cycles']:>11.0f}"
            f" {m['cycles'] / wall:>11.0f} {m['pe_steps'] / wall:>11.0f}"
            f" {m['events'] / wall:>9.0f} {100 * m['queueing_share']:>5.1f}%  "
            + ("ok" if good else "OVER"),
            flush=True,
        )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", default="bus")
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    parser.add_argument("--quick", action="store_true", help="the first two cases only")
    parser.add_argument("--policy", default="realistic", choices=("realistic", "maestro"))
    parser.add_argument(
        "--residency-off", action="store_true", help="without element-exact L1 residency"
    )
    parser.add_argument("--case", nargs=5, metavar=("PATH", "LAYER", "PES", "TOPOLOGY", "POLICY"))
    args = parser.parse_args()
    if args.case:
        path, layer, pes, topology, policy = args.case
        print(json.dumps(run_case(path, layer, int(pes), topology, policy)))
        return
    cases = [c for c in table2_cases() + resnet_cases(256) if args.only in c[0]]
    if args.quick:
        cases = cases[:2]
    policy = args.policy + ("-off" if args.residency_off else "")
    sys.exit(0 if measure(cases, args.topology, 60.0, policy) else 1)


if __name__ == "__main__":
    main()
