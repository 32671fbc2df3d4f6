"""Fuzzing the front ends: any input gives either a spec or a SpecError, never another
exception. Two generators: raw byte strings, and mutations of real files (token
deletions, duplications and replacements), which reach deep into the grammar."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from metronome.spec.lexer import decode_source, tokenize
from metronome.spec.maestro import parse_hw_text, parse_mapping_text
from metronome.spec.pragma import parse_pragma_text
from metronome.spec.source import SpecError
from tests.conftest import MAESTRO_INPUTS, MAESTRO_REFERENCE

SEEDS = [
    (MAESTRO_REFERENCE / "crosscheck/x09_two_level.m").read_text(),
    (MAESTRO_REFERENCE / "table2/t2_eyeriss_rs.m").read_text(),
    (MAESTRO_INPUTS / "data/mapping/GEMM_Example.m").read_text(),
    (MAESTRO_REFERENCE / "crosscheck/x07_stride2.m").read_text(),
    (MAESTRO_INPUTS / "data/mapping/example.m").read_text(),
]
PRAGMA_SEED = """NumPEs 64; L1Size 512; Bandwidth 64;
Layer CONV C1;
K 8; C 3; R 3; S 3; Y 12; X 12;
endLayer
Temporal_Map (1,1) K -> Temporal_Map (1,1) C -> Spatial_Map (1,1) Y -> Merge R
-> Temporal_Map (3,1) X -> Tile (3) S -> Spatial_Map (1,1) S
"""
HW_SEED = "num_pes: 64\nl1_size_cstr: 512\nnoc_bw_cstr: 32\n// comment\nNoC_NumHops: 2\n"
VOCAB = [
    "{",
    "}",
    "(",
    ")",
    ";",
    ",",
    ":",
    "-",
    "->",
    "'",
    "Sz",
    "Network",
    "Layer",
    "Type",
    "CONV",
    "GEMM",
    "DSCONV",
    "NGCONV",
    "TRCONV",
    "FC",
    "POOL",
    "Stride",
    "Dimensions",
    "Dataflow",
    "TemporalMap",
    "SpatialMap",
    "Cluster",
    "P",
    "L",
    "Constant",
    "K",
    "C",
    "R",
    "S",
    "Y",
    "X",
    "Y'",
    "X'",
    "N",
    "M",
    "G",
    "0",
    "1",
    "3",
    "-1",
    "64",
    "99999999999999999999",
    "//",
    "\n",
    "Tile",
    "Merge",
    "Unroll",
    "Temporal_Map",
    "Spatial_Map",
    "endLayer",
    "NumPEs",
    "num_pes",
]


def _parse_all(text: str) -> None:
    for parse in (parse_mapping_text, parse_pragma_text, parse_hw_text):
        error: SpecError | None = None
        try:
            parse(text, "fuzz.m")
        except SpecError as exc:
            error = exc
        if error is not None:
            assert error.diagnostics
            assert error.render().startswith(("fuzz.m:", "error:", "warning:"))


@given(st.binary(max_size=400))
def test_arbitrary_bytes_give_a_spec_or_a_spec_error(data: bytes) -> None:
    try:
        text = decode_source(data, "fuzz.m")
    except SpecError:
        return
    _parse_all(text)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[str]) -> str:
    text = draw(st.sampled_from(seeds))
    words = [t.text for t in tokenize(text, "seed")]
    for _ in range(draw(st.integers(1, 6))):
        if not words:
            break
        i = draw(st.integers(0, len(words) - 1))
        action = draw(st.sampled_from(["delete", "duplicate", "replace", "insert"]))
        if action == "delete":
            del words[i]
        elif action == "duplicate":
            words.insert(i, words[i])
        elif action == "replace":
            words[i] = draw(st.sampled_from(VOCAB))
        else:
            words.insert(i, draw(st.sampled_from(VOCAB)))
    separator = draw(st.sampled_from([" ", "\n", "\t", ";"]))
    return separator.join(words)


@given(mutated(SEEDS))
def test_mutated_mapping_files_give_a_spec_or_a_spec_error(text: str) -> None:
    _parse_all(text)


@given(mutated([PRAGMA_SEED, HW_SEED]))
def test_mutated_pragma_and_hw_files_give_a_spec_or_a_spec_error(text: str) -> None:
    _parse_all(text)


def test_seeds_themselves_parse() -> None:
    for text in SEEDS:
        assert parse_mapping_text(text, "seed.m").layers
    assert parse_pragma_text(PRAGMA_SEED, "seed.pragma").layers
    assert parse_hw_text(HW_SEED, "seed.m").noc_latency_cycles == 2
