"""Fused scenarios (``kind: fused``) on the command line: the branch each of
``metronome check``, ``analyze`` and ``simulate`` takes for them (``validate`` runs them
with the rest: :mod:`metronome.validation.fused`)."""

from __future__ import annotations

import numpy as np

from ..fused import reference_chain

__all__ = ["analyze_cli", "check_cli", "simulate_cli"]


def check_cli(path: str) -> None:
    """``metronome check`` of a fused scenario: one line per layer and per group."""
    from metronome.spec.fused import load_fused

    scenario = load_fused(path)
    print(f"{path}: fused scenario '{scenario.name}', {len(scenario.layers)} layer(s)")
    print(f"  hardware: {scenario.hardware.describe()}")
    width = max(len(layer.name) for layer in scenario.layers)
    for layer in scenario.layers:
        c, h, w = layer.out_shape
        what = f"{layer.pool} pool" if layer.pool else layer.kind.value
        print(
            f"  {layer.name:<{width}}  {what} {layer.window[0]}x{layer.window[1]}"
            f" stride {layer.stride[0]}x{layer.stride[1]}, out {c}x{h}x{w}"
            + (f", {layer.activation}" if layer.activation != "none" else "")
        )
    for group in scenario.groups:
        names = [layer.name for layer in scenario.group_layers(group)]
        kept = ", ".join(f"{n}: {c}" for n, c in zip(names[:-1], group.choices[:-1], strict=True))
        print(
            f"  group {group.name}: {names[0]}..{names[-1]}, tile {group.tile[0]}x{group.tile[1]}"
            + (f"x{group.tile_k} channels" if group.tile_k else "")
            + f" ({'/'.join(group.order)}), input {group.input_choice}, weights {group.weights}"
            + (f", {kept}" if kept else "")
        )


def analyze_cli(path: str, json_out: str | None) -> int:
    """``metronome analyze`` of a fused scenario."""
    from metronome.analytic.fused import analyze_fused
    from metronome.spec.fileio import atomic_write_json
    from metronome.spec.fused import load_fused, render_fused

    scenario = load_fused(path)
    result = analyze_fused(scenario)
    if json_out:
        atomic_write_json(json_out, result.to_dict())
    print(render_fused(result, scenario))
    return 0


def simulate_cli(path: str, json_out: str | None, functional: bool, save: str | None) -> int:
    """``metronome simulate`` of a fused scenario; ``functional`` checks the output
    against numpy layer by layer (exit 1 when it differs)."""
    from metronome.sim.fused import chain_weights, simulate_fused
    from metronome.spec.fileio import atomic_write_bytes, atomic_write_json
    from metronome.spec.fused import load_fused, render_fused

    scenario = load_fused(path)
    image, weights = chain_weights(scenario)
    run = simulate_fused(scenario, functional=functional, image=image, weights=weights)
    if json_out:
        atomic_write_json(json_out, run.result.to_dict())
    print(render_fused(run.result, scenario))
    if functional and run.output is not None:
        equal = bool(np.array_equal(run.output, reference_chain(scenario, image, weights)))
        print(f"functional: fused output {'equals' if equal else 'DIFFERS FROM'} numpy's")
        if save:
            import io

            buffer = io.BytesIO()
            np.savez(buffer, output=run.output)
            atomic_write_bytes(save, buffer.getvalue())
        return 0 if equal else 1
    return 0
