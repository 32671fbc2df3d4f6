"""Open any input Metronome understands and resolve the hardware to run it on.

* ``.m`` – a MAESTRO mapping file (or model-only file); a MAESTRO hardware file is
  recognised and refused with a hint to pass it as ``--hw``;
* ``.pragma`` (or a ``.m`` whose first word is a 2018 pragma keyword) – the 2018 pragma
  language of the MAESTRO arXiv paper, which also carries hardware;
* ``.yaml``/``.yml`` – a scenario (see :mod:`metronome.spec.scenario`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .hardware import UNBOUNDED, Hardware
from .lexer import read_source
from .maestro import looks_like_hw_file, parse_hw_file, parse_mapping_text
from .network import Network
from .pragma import looks_like_pragma, parse_pragma_text
from .source import SpecError

__all__ = ["HardwareFlags", "load_network", "resolve_hardware"]


def load_network(path: str | Path, *, shrink: dict[str, int] | None = None) -> Network:
    """Parse a mapping file of any supported language into a :class:`Network`
    (``shrink`` caps dimension sizes, see :func:`metronome.spec.maestro.parse_mapping_text`)."""
    shown = str(path)
    if Path(shown).suffix in (".yaml", ".yml"):
        raise SpecError.at(None, f"{shown}: is a scenario; run it with 'metronome validate'")
    text = read_source(path)
    if Path(shown).suffix == ".pragma" or looks_like_pragma(text):
        return parse_pragma_text(text, shown, shrink=shrink)
    if looks_like_hw_file(text):
        raise SpecError.at(
            None,
            f"{shown}: is a MAESTRO hardware file, not a mapping",
            hint=f"pass it with --hw {shown}",
        )
    return parse_mapping_text(text, shown, shrink=shrink)


@dataclass(frozen=True, slots=True, kw_only=True)
class HardwareFlags:
    """Hardware given on the command line; ``None`` means "not given"."""

    num_pes: int | None = None
    l1_size: int | None = None
    l2_size: int | None = None
    noc_bw: int | None = None
    noc_hops: int | None = None
    noc_hop_latency: int | None = None
    offchip_bw: int | None = None
    simd_lanes: int | None = None

    def given(self) -> dict[str, int]:
        """The flags that were set."""
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}


def resolve_hardware(
    hw_file: str | Path | None, flags: HardwareFlags, network: Network | None = None
) -> Hardware:
    """The hardware a run uses, following MAESTRO's two modes.

    With ``hw_file`` the file decides PEs, sizes and bandwidths and the NoC latency is its
    ``NoC_NumHops`` (default 1); only ``simd_lanes`` is taken from the flags (as MAESTRO
    does), and any other flag is refused rather than silently ignored. Without a file,
    hardware that the input itself carries (2018 pragma files) is the base and flags
    override it; otherwise the flags with MAESTRO's command-line defaults are used
    (7 PEs, unbounded NoC with latency ``noc_hops * noc_hop_latency`` = 0, off-chip 70000).
    """
    given = flags.given()
    if hw_file is not None:
        ignored = sorted(set(given) - {"simd_lanes"})
        if ignored:
            raise SpecError.at(
                None,
                f"--{ignored[0].replace('_', '-')} cannot be combined with --hw: MAESTRO lets a"
                " hardware file replace those settings",
                hint="edit the hardware file, or drop --hw and give every setting as a flag",
            )
        return parse_hw_file(hw_file, simd_lanes=flags.simd_lanes or 1)
    if network is not None and network.hardware is not None:
        base = network.hardware
        changes: dict[str, object] = {}
        mapping = {
            "num_pes": "num_pes",
            "l1_size": "l1_size_elems",
            "l2_size": "l2_size_elems",
            "noc_bw": "noc_bw_elems_per_cycle",
            "offchip_bw": "offchip_bw_elems_per_cycle",
            "simd_lanes": "simd_lanes",
            "noc_hops": "noc_hops",
            "noc_hop_latency": "noc_hop_latency_cycles",
        }
        for flag, value in given.items():
            changes[mapping[flag]] = value
        if "noc_hops" in given or "noc_hop_latency" in given:
            hops = given.get("noc_hops", base.noc_hops)
            latency = given.get("noc_hop_latency", base.noc_hop_latency_cycles)
            changes["noc_latency_cycles"] = hops * latency
        source = base.source + (" with flags" if given else "")
        return base.with_changes(**changes, source=source)
    return Hardware.maestro_flags(
        num_pes=given.get("num_pes", 7),
        l1_size=given.get("l1_size", UNBOUNDED),
        l2_size=given.get("l2_size", UNBOUNDED),
        noc_bw=given.get("noc_bw", UNBOUNDED),
        noc_hops=given.get("noc_hops", 1),
        noc_hop_latency=given.get("noc_hop_latency", 0),
        offchip_bw=given.get("offchip_bw", 70000),
        simd_lanes=given.get("simd_lanes", 1),
        source="command-line flags" if given else "MAESTRO's command-line defaults",
    )
