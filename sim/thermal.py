"""Lumped-node thermal model: heat capacities joined by conductances, radiators to
deep space (εσT⁴), sunlight absorbed by exposed surfaces, the Earth's infrared and
albedo on nadir-facing ones, and internal dissipation.

Earth: a nadir-facing plate of area A at altitude h sees the Earth with view factor
F = (R/(R+h))^2. It absorbs Earth infrared eps * 237 W/m^2 * F * A, day and night, and
albedo a * 0.30 * S * F * A * cos(theta) where theta is the sun's angle from the
satellite's zenith (only on the day side).
"""

from __future__ import annotations

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


@dataclass(slots=True)
class ThermalModel:
    nodes: dict[str, Node]
    links_w_k: list[tuple[str, str, float]] = field(default_factory=list)

    def step(self, dt_s: float, heat_w: dict[str, float], illumination: float,
             earth_view: float = 0.0, albedo_cos: float = 0.0,
             solar_w_m2: float = SOLAR_W_M2) -> None:
        """Advance by dt_s (explicit Euler; dt_s must be well below every node's C/G).
        `earth_view` is the view factor to the Earth of a nadir-facing plate, `albedo_cos`
        the cosine of the sun's angle from zenith (0 on the night side), `solar_w_m2` the
        sun's flux at the Earth's distance from it (the solar constant at 1 AU)."""
        flow = {name: heat_w.get(name, 0.0) for name in self.nodes}
        for a, b, g in self.links_w_k:
            q = g * (self.nodes[a].temp_c - self.nodes[b].temp_c)
            flow[a] -= q
            flow[b] += q
        for name, node in self.nodes.items():
            t_k = node.temp_c + KELVIN
            if node.radiator_m2:
                flow[name] -= (node.emissivity * STEFAN_BOLTZMANN_W_M2_K4 * node.radiator_m2
                               * (t_k**4 - DEEP_SPACE_K**4))
            if illumination and node.sunlit_m2:
                flow[name] += node.absorptivity * solar_w_m2 * node.sunlit_m2 * illumination
            if node.nadir_m2 and earth_view:
                planet_w_m2 = (node.emissivity * EARTH_IR_W_M2
                               + node.absorptivity * ALBEDO * solar_w_m2 * albedo_cos)
                flow[name] += planet_w_m2 * earth_view * node.nadir_m2
        for name, node in self.nodes.items():
            node.temp_c += flow[name] * dt_s / node.heat_capacity_j_k


def default_model() -> ThermalModel:
    """A compute satellite: a 700 W accelerator on a cold plate tied to a radiator sized to
    hold it well below its 85 degC slowdown at full power in full sun (edge-on to the
    Earth, it sees deep space); a flight computer and a battery mounted on the structure,
    whose faces see the sun and the Earth and radiate."""
    return ThermalModel(
        nodes={
            "accelerator": Node(heat_capacity_j_k=15_000.0),
            "radiator": Node(heat_capacity_j_k=30_000.0, radiator_m2=1.5, emissivity=0.9),
            "structure": Node(heat_capacity_j_k=40_000.0, radiator_m2=1.0, emissivity=0.8,
                              sunlit_m2=0.5, absorptivity=0.3, nadir_m2=0.5),
            "flight_computer": Node(heat_capacity_j_k=3_000.0),
            "battery": Node(heat_capacity_j_k=20_000.0),
        },
        links_w_k=[
            ("accelerator", "radiator", 60.0),
            ("structure", "radiator", 5.0),
            ("flight_computer", "structure", 4.0),
            ("battery", "structure", 2.0),
        ],
    )
