"""Properties of the analytic model on small random layers and mappings.

Mappings are built from templates: one or two cluster levels; at each level every
data dimension gets a tile of size = offset (stride 1, so the tiles cover the
iteration space exactly; temporal and spatial edges where they do not divide it), one
of them spatial, R/S whole. Then, in the default mode:

* MACs equal the layer's MAC count;
* runtime x PEs x SIMD lanes >= MACs (no more than one MAC per lane per cycle);
* every count is a non-negative integer;
* results depend neither on the layer's name nor on the order of layers in the file.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metronome import analytic
from metronome.spec.fileio import dumps_json
from metronome.spec.hardware import Hardware
from metronome.spec.maestro import parse_mapping_text
from metronome.spec.network import Network
from metronome.spec.results import LayerResult
from metronome.spec.source import SpecError

settings.register_profile(
    "analytic-properties",
    parent=settings.get_profile("ci"),
    max_examples=min(settings().max_examples, 40),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
PROPERTY = settings.get_profile("analytic-properties")

CONV_DATA_DIMS = ("K", "C", "Y'", "X'")
GEMM_DIMS = ("M", "N", "K")


@dataclass(frozen=True)
class Case:
    """A generated layer: its MAESTRO text (layer named ``NAME``) and its hardware."""

    body: str
    hardware: Hardware

    def text(self, *names: str) -> str:
        layers = " ".join(self.body.replace("NAME", n) for n in names)
        return f"Network net {{ {layers} }}"


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def _level(draw: st.DrawFn, extents: dict[str, int], fixed: tuple[str, ...]) -> list[str]:
    """One cluster level: a tile per data dimension (dividing it or not; offset = size,
    so no index is skipped or computed twice), one of them spatial, in any order."""
    spatial = draw(st.sampled_from(sorted(extents)))
    directives = []
    for dim in draw(st.permutations(sorted(extents))):
        if draw(st.booleans()):
            tile = draw(st.sampled_from(_divisors(extents[dim])))
        else:
            tile = draw(st.integers(1, extents[dim]))
        kind = "SpatialMap" if dim == spatial else "TemporalMap"
        directives.append((dim, f"{kind}({tile},{tile}) {dim};", tile))
    directives += [(d, f"TemporalMap(Sz({d}),Sz({d})) {d};", 0) for d in fixed]
    order = draw(st.permutations(directives))
    return [text for _, text, _ in order]


def _tiles(level: list[str]) -> dict[str, int]:
    tiles = {}
    for text in level:
        head, dim = text.rstrip(";").split(") ")
        if "Sz" not in head:
            tiles[dim] = int(head.split("(")[1].split(",")[0])
    return tiles


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A random layer (CONV, DSCONV or GEMM) with a one- or two-level mapping."""
    kind = draw(st.sampled_from(["CONV", "DSCONV", "GEMM"]))
    size = st.integers(1, 6)
    if kind == "GEMM":
        extents = {d: draw(size) for d in GEMM_DIMS}
        fixed: tuple[str, ...] = ()
        dims = ", ".join(f"{d}: {extents[d]}" for d in GEMM_DIMS)
    else:
        extents = {d: draw(size) for d in CONV_DATA_DIMS}
        if kind == "DSCONV":
            del extents["K"]
        r, s = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        fixed = ("R", "S")
        declared = {**extents, "R": r, "S": s}
        declared.setdefault("K", 1)
        declared["Y"] = declared.pop("Y'") + r - 1
        declared["X"] = declared.pop("X'") + s - 1
        dims = ", ".join(f"{d}: {v}" for d, v in declared.items())
    levels = [draw(_level(extents, fixed))]
    clusters = []
    if draw(st.booleans()):
        clusters.append(draw(st.integers(1, 4)))
        levels.append(draw(_level(_tiles(levels[0]), fixed)))
    inner = clusters[0] if clusters else 1
    pes = inner * draw(st.integers(1, 5))
    lanes = draw(st.sampled_from([1, 2, 4]))
    bandwidth = draw(st.sampled_from([1, 4, 64, 2**31 - 1]))
    dataflow = levels[0] + [
        f"Cluster({c},P); " + " ".join(lv) for c, lv in zip(clusters, levels[1:], strict=True)
    ]
    body = (
        f"Layer NAME {{ Type: {kind} Dimensions {{ {dims} }} Dataflow {{ {' '.join(dataflow)} }} }}"
    )
    hardware = Hardware.maestro_hw_file(num_pes=pes, noc_bw_cstr=bandwidth, simd_lanes=lanes)
    return Case(body, hardware)


def _run(case: Case, *names: str, compat: bool = False) -> tuple[Network, list[LayerResult]]:
    network = parse_mapping_text(case.text(*names))
    return network, list(
        analytic.analyze_network(network, case.hardware, maestro_compat=compat).layers
    )


@PROPERTY
@given(cases())
def test_macs_equal_the_layer_when_the_mapping_covers_it_exactly(case: Case) -> None:
    network, (result,) = _run(case, "L")
    assert result.macs == network.layers[0].layer.macs


@PROPERTY
@given(cases())
def test_no_more_than_one_mac_per_lane_per_cycle(case: Case) -> None:
    """The fixed model only: MAESTRO's spatial-edge over-count (D1) can report more MACs
    than its own runtime allows (K1 C1 S3 X5 under SpatialMap(2,2) X' on 1 PE: 15 MACs in
    12 cycles for a 9-MAC layer)."""
    _, (result,) = _run(case, "L")
    lanes = case.hardware.num_pes * case.hardware.simd_lanes
    assert result.runtime_cycles * lanes >= result.macs
    assert 0 < result.metric("utilization") <= 1


@PROPERTY
@given(cases())
def test_counts_are_non_negative_integers(case: Case) -> None:
    _, (result,) = _run(case, "L")
    counts = [result.runtime_cycles, result.macs]
    counts += [getattr(c, k) for _, c in result.tensors for k in c.to_dict()]
    counts += [result.metric(k) for k in ("l1_size_req_elems", "l2_size_req_elems")]
    counts += [result.metric(k) for k in ("noc_bw_req_peak_elems_per_cycle",)]
    counts += [result.metric("offchip_bw_req_elems_per_cycle")]
    assert all(isinstance(c, int) and not isinstance(c, bool) for c in counts), counts
    assert all(c >= 0 for c in counts), counts
    assert result.runtime_cycles > 0


@PROPERTY
@given(cases(), st.booleans())
def test_results_do_not_depend_on_the_layer_name(case: Case, compat: bool) -> None:
    _, (a,) = _run(case, "first", compat=compat)
    _, (b,) = _run(case, "other_name", compat=compat)
    assert a.flat() == b.flat()


@PROPERTY
@given(cases(), cases())
def test_results_do_not_depend_on_file_order(one: Case, two: Case) -> None:
    hardware = one.hardware.with_changes(num_pes=one.hardware.num_pes * 12)
    text_ab = f"Network net {{ {one.body.replace('NAME', 'A')} {two.body.replace('NAME', 'B')} }}"
    text_ba = f"Network net {{ {two.body.replace('NAME', 'B')} {one.body.replace('NAME', 'A')} }}"
    ab = analytic.analyze_network(parse_mapping_text(text_ab), hardware).layers
    ba = analytic.analyze_network(parse_mapping_text(text_ba), hardware).layers
    by_name_ab = {r.layer: r.flat() for r in ab}
    by_name_ba = {r.layer: r.flat() for r in ba}
    assert by_name_ab == by_name_ba


@st.composite
def wild_cases(draw: st.DrawFn) -> tuple[str, Hardware]:
    """Any layer type, sizes, strides and up to three levels of arbitrary directives
    (overlapping, gapped or oversized tiles, dimensions mapped only below the top)."""
    kind = draw(st.sampled_from(["CONV", "DSCONV", "NGCONV", "TRCONV", "GEMM"]))
    if kind == "GEMM":
        dims = {d: draw(st.integers(1, 9)) for d in GEMM_DIMS}
        names = list(GEMM_DIMS)
        stride = ""
    else:
        r, s = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        dims = {"K": draw(st.integers(1, 6)), "C": draw(st.integers(1, 6)), "R": r, "S": s}
        dims |= {"Y": r + draw(st.integers(0, 7)), "X": s + draw(st.integers(0, 7))}
        if kind == "NGCONV":
            dims["G"] = draw(st.integers(1, 3))
        names = [d for d in dims if d not in ("R", "S", "Y", "X")] + ["Y", "X", "Y'", "X'"]
        sy, sx = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        stride = f"Stride {{ X: {sx}, Y: {sy} }}"
    lines: list[str] = []
    for level in range(draw(st.integers(1, 3))):
        if level:
            lines.append(f"Cluster({draw(st.integers(1, 3))},P);")
        chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=4, unique=True))
        chosen = [d for d in chosen if not (d.endswith("'") and d[0] in chosen)]
        spatial = draw(st.sampled_from(chosen))
        for dim in chosen:
            size, offset = draw(st.integers(1, 6)), draw(st.integers(1, 7))
            keyword = "SpatialMap" if dim == spatial else "TemporalMap"
            lines.append(f"{keyword}({size},{offset}) {dim};")
        if kind != "GEMM":
            lines += [f"TemporalMap(Sz({f}),Sz({f})) {f};" for f in ("R", "S")]
    declared = ", ".join(f"{k}: {v}" for k, v in dims.items())
    text = (
        f"Network n {{ Layer L {{ Type: {kind} {stride} Dimensions {{ {declared} }}"
        f" Dataflow {{ {' '.join(lines)} }} }} }}"
    )
    hardware = Hardware.maestro_hw_file(
        num_pes=draw(st.integers(1, 16)),
        noc_bw_cstr=draw(st.sampled_from([1, 3, 64])),
        simd_lanes=draw(st.sampled_from([1, 2])),
    )
    return text, hardware


@PROPERTY
@given(wild_cases(), st.booleans())
def test_any_mapping_gives_a_result_or_a_spec_error(
    case: tuple[str, Hardware], compat: bool
) -> None:
    """Never a traceback: a result that serialises (JSON without NaN, MAESTRO CSV,
    table), or a SpecError. Default-mode results have positive runtime and MACs."""
    text, hardware = case
    try:
        network = parse_mapping_text(text)
        run = analytic.analyze_network(network, hardware, maestro_compat=compat)
    except SpecError:
        return
    dumps_json(run.to_dict())
    assert analytic.maestro_csv(run).count("\n") == 2
    assert run.layers[0].layer in analytic.render_table(run)
    if not compat:
        assert run.layers[0].runtime_cycles > 0
        assert run.layers[0].macs > 0
