"""Lumped-node thermal model: heat capacities joined by conductances, radiators to
deep space (εσT⁴), sunlight absorbed by exposed surfaces, the Earth's infrared and
albedo on nadir-facing ones, and internal dissipation.

Earth: a plate of area A sees the Earth with a view factor F that depends on how it
faces it (view_factors): F = (R/(R+h))^2 facing nadir, and for a plate edge-on to the
Earth (its normal horizontal, as a radiator's is) the tilted-plate formula at 90 deg,
F = 1/2 - acos(1/H)/pi - sqrt(H^2 - 1)/(pi H^2) with H = (R+h)/R: 0.27 at 500 km, 0.20
at 1000 km, 0.13 at 2000 km. The plate absorbs Earth infrared eps * 237 W/m^2 * F * A,
day and night, and albedo a * 0.30 * S * F * A * cos(theta) where theta is the sun's
angle from the satellite's zenith (only on the day side; for an edge-on plate this is
the usual first approximation).

The accelerator: an H100-class part, 700 W at full clock (sim/accelerator.py). Its die
sits on a cold plate (die to plate 0.01 K/W, sim/boards.py), the plate on a loop heat
pipe to the radiator (0.033 K/W), so at full power the die runs 30 K above the
radiator. The radiator is sized so that the die stays below the flight software's 75
degC throttle (and the part's own slowdown, near 87 degC) at full power in full sun at
500 km with the Earth's infrared and albedo on both its faces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

STEFAN_BOLTZMANN_W_M2_K4 = 5.670374419e-8
KELVIN = 273.15
DEEP_SPACE_K = 2.7
SOLAR_W_M2 = 1361.0
EARTH_IR_W_M2 = 237.0  # the Earth's mean outgoing longwave radiation
ALBEDO = 0.30


@dataclass(slots=True)
class Node:
    heat_capacity_j_k: float
    temp_c: float = 20.0
    radiator_m2: float = 0.0  # area radiating to deep space
    emissivity: float = 0.85
    sunlit_m2: float = 0.0  # area facing the sun
    absorptivity: float = 0.3
    nadir_m2: float = 0.0  # area facing the Earth
    edge_on: bool = False  # the radiating area is edge-on to the Earth (and sees it)


def view_factors(h_ratio: float) -> tuple[float, float]:
    """The view factors to the Earth of a plate facing nadir and of one edge-on to the
    Earth, at a distance h_ratio = (R + h) / R from its centre."""
    h2 = h_ratio * h_ratio
    edge = 0.5 - math.acos(1.0 / h_ratio) / math.pi - math.sqrt(h2 - 1.0) / (math.pi * h2)
    return 1.0 / h2, edge


@dataclass(slots=True)
class ThermalModel:
    nodes: dict[str, Node]
    links_w_k: list[tuple[str, str, float]] = field(default_factory=list)

    def step(self, dt_s: float, heat_w: dict[str, float], illumination: float,
             earth_view: float = 0.0, albedo_cos: float = 0.0,
             solar_w_m2: float = SOLAR_W_M2, edge_view: float = 0.0) -> None:
        """Advance by dt_s (explicit Euler; dt_s must be well below every node's C/G).
        `earth_view` is the view factor to the Earth of a nadir-facing plate and
        `edge_view` of one edge-on to it (view_factors), `albedo_cos`
        the cosine of the sun's angle from zenith (0 on the night side), `solar_w_m2` the
        sun's flux at the Earth's distance from it (the solar constant at 1 AU)."""
        flow = {name: heat_w.get(name, 0.0) for name in self.nodes}
        for a, b, g in self.links_w_k:
            q = g * (self.nodes[a].temp_c - self.nodes[b].temp_c)
            flow[a] -= q
            flow[b] += q
        albedo_w_m2 = ALBEDO * solar_w_m2 * albedo_cos
        for name, node in self.nodes.items():
            t_k = node.temp_c + KELVIN
            if node.radiator_m2:
                flow[name] -= (node.emissivity * STEFAN_BOLTZMANN_W_M2_K4 * node.radiator_m2
                               * (t_k**4 - DEEP_SPACE_K**4))
            if illumination and node.sunlit_m2:
                flow[name] += node.absorptivity * solar_w_m2 * node.sunlit_m2 * illumination
            if node.nadir_m2 and earth_view:
                planet_w_m2 = node.emissivity * EARTH_IR_W_M2 + node.absorptivity * albedo_w_m2
                flow[name] += planet_w_m2 * earth_view * node.nadir_m2
            if node.edge_on and edge_view:
                planet_w_m2 = node.emissivity * EARTH_IR_W_M2 + node.absorptivity * albedo_w_m2
                flow[name] += planet_w_m2 * edge_view * node.radiator_m2
        for name, node in self.nodes.items():
            node.temp_c += flow[name] * dt_s / node.heat_capacity_j_k


def default_model() -> ThermalModel:
    """A compute satellite: a 700 W accelerator on a cold plate tied to a two-sided
    radiator (white paint, absorptivity 0.2) edge-on to the Earth and the sun, sized as
    the module says; a flight computer and a battery mounted on the structure, whose
    faces see the sun and the Earth and radiate."""
    return ThermalModel(
        nodes={
            "accelerator": Node(heat_capacity_j_k=15_000.0),
            "radiator": Node(heat_capacity_j_k=30_000.0, radiator_m2=2.0, emissivity=0.9,
                             absorptivity=0.2, edge_on=True),
            "structure": Node(heat_capacity_j_k=40_000.0, radiator_m2=1.0, emissivity=0.8,
                              sunlit_m2=0.5, absorptivity=0.3, nadir_m2=0.5),
            "flight_computer": Node(heat_capacity_j_k=3_000.0),
            "battery": Node(heat_capacity_j_k=20_000.0),
        },
        links_w_k=[
            ("accelerator", "radiator", 30.0),  # cold plate and loop heat pipe
            ("structure", "radiator", 5.0),
            ("flight_computer", "structure", 4.0),
            ("battery", "structure", 2.0),
        ],
    )
