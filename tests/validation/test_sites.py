"""The directives an explanation points at, with the positions the user wrote them at."""

from __future__ import annotations

from metronome.spec.maestro import parse_mapping_text
from metronome.validation.sites import describe_sites, sites

STRIDED = """Network n {
Layer L {
  Type: CONV
  Stride { Y: 2 }
  Dimensions { K: 2, C: 1, R: 3, S: 1, Y: 9, X: 1 }
  Dataflow {
    SpatialMap(1,1) K;
    TemporalMap(5,4) Y;
    TemporalMap(Sz(R),Sz(R)) R;
    Cluster(2,P);
    SpatialMap(1,1) C;
    TemporalMap(3,2) Y;
  }
}
}
"""


def _entry():  # type: ignore[no-untyped-def]
    (entry,) = parse_mapping_text(STRIDED, "s.m").layers
    return entry.layer, entry.require_mapping()


def test_d13_points_at_the_strided_tile_holding_two_windows() -> None:
    layer, mapping = _entry()
    # (5,4) Y holds windows at rows 0 and 2; the inner (3,2) Y holds one: not a site.
    assert [str(d) for d in sites("D13", layer, mapping)] == ["TemporalMap(5,4) Y"]
    assert describe_sites("D13", layer, mapping) == " (from TemporalMap(5,4) Y at s.m:8:5)"


def test_nested_fill_points_at_the_cluster_and_unknown_causes_at_nothing() -> None:
    layer, mapping = _entry()
    assert describe_sites("nested_fill_serialised", layer, mapping) == (
        " (from Cluster(2,P) at s.m:10:5)"
    )
    assert describe_sites("D3", layer, mapping) == ""
    assert sites("D1", layer, mapping) == []  # no SpatialMap on Y or X
