"""Under residency a record's distribution traffic is memoised on its tiles relative to
the base, the activity, the L1 misses and (where PEs forward) the previous tiles
(:meth:`RecordBuilder._lacking`): every record equals the one computing it gives."""

from __future__ import annotations

import pickle

import pytest

import metronome.sim.traffic as traffic_module
from metronome.sim import REALISTIC, SimOptions, simulate
from metronome.sim.fast import FastPath
from metronome.sim.schedule import Segment
from metronome.sim.traffic import RecordBuilder, StepRecord
from metronome.spec.hardware import Hardware
from metronome.spec.maestro import parse_mapping_text

from .test_keyed_segments import OS_K6


def _records(topology: str, monkeypatch: pytest.MonkeyPatch) -> tuple[object, list[bytes], int]:
    """The run's result, each step's record (pickled) and how many demands were
    computed."""
    pieces: list[tuple[int, int, list[StepRecord]]] = []
    computed: list[int] = []
    piece, demand = FastPath._piece, traffic_module.demand

    def logged(self: FastPath, seg: Segment, recs: list[StepRecord]) -> None:
        pieces.append((seg.steps[0].index, seg.count, list(recs)))
        piece(self, seg, recs)

    def counted(*args: object) -> object:
        computed.append(1)
        return demand(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(FastPath, "_piece", logged)
    monkeypatch.setattr(traffic_module, "demand", counted)
    entry = parse_mapping_text(OS_K6).layers[0]
    assert entry.mapping is not None
    hw = Hardware(num_pes=2, l1_size_elems=40, topology=topology)
    result = simulate(entry.layer, entry.mapping, hw, SimOptions(policy=REALISTIC))
    monkeypatch.setattr(FastPath, "_piece", piece)
    monkeypatch.setattr(traffic_module, "demand", demand)
    recs: list[bytes] = []
    for _first, count, rs in sorted(pieces, key=lambda p: p[0]):
        recs.extend([pickle.dumps(r) for r in rs] * count)
    return result.layer.to_dict(), recs, len(computed)


def _unique(self: RecordBuilder, *args: object) -> bytes:
    """A key no other demand has: every demand computed."""
    self._count_keys = getattr(self, "_count_keys", 0) + 1
    return str(self._count_keys).encode()


@pytest.mark.parametrize("topology", ["bus", "mesh"])
def test_memoised_demands_give_the_records_computing_gives(
    monkeypatch: pytest.MonkeyPatch, topology: str
) -> None:
    result, recs, computed = _records(topology, monkeypatch)
    monkeypatch.setattr(RecordBuilder, "_demand_key", _unique)
    every, every_recs, all_computed = _records(topology, monkeypatch)
    assert computed < all_computed
    assert recs == every_recs
    assert result == every


KEY = RecordBuilder._demand_key


def _no_masks(self: RecordBuilder, *args: object) -> bytes:
    t, lo, hi, active, held, missing, off = args
    return KEY(self, t, lo, hi, active, held, [None] * len(missing), off)  # type: ignore[arg-type]


def test_the_demand_key_needs_the_masks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the masks a step lacking other elements of the same tiles gets another's
    # flows and L1 writes.
    monkeypatch.setattr(RecordBuilder, "_demand_key", _unique)
    _, recs, _ = _records("bus", monkeypatch)
    monkeypatch.setattr(RecordBuilder, "_demand_key", _no_masks)
    _, wrong, _ = _records("bus", monkeypatch)
    assert wrong != recs
