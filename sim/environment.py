"""The radiation environment along the orbit: trapped protons from NASA's AP8 model, the
South Atlantic Anomaly where the present field puts it, and galactic cosmic rays.

Trapped protons. sim/data/ap8.npz holds AP8MIN and AP8MAX (through IRBEM, as the
`aep8` package wraps them), the omnidirectional flux of protons above 30 MeV on a
geodetic grid: 150-3000 km in 50 km, latitude +-80 deg in 2 deg, longitude in 4 deg.
`python -m sim.data.make_tables` regenerates it from the models. Between grid points
the flux is interpolated in log10, linearly in altitude, latitude and longitude.

The anomaly's drift. AP8 comes with the geomagnetic fields it was built with (epochs
1964 for AP8MIN and 1970 for AP8MAX), so on its own it puts the South Atlantic Anomaly
where it was then. The field has moved since: by IGRF-14, the minimum of |B| at 500 km
went from 47 W to 60 W between 1965 and 2030. The table is moved by IGRF's drift from
the model's epoch to the mission epoch (beyond 2030, by the last five years' rate).

Galactic cosmic rays: a floor of GCR_FLUX protons-equivalent per cm^2 per second
everywhere (about 4 cm^-2 s^-1 of GCR reach 1 AU at solar minimum; the geomagnetic
cutoff lets roughly a quarter through, averaged over a sun-synchronous orbit). Upsets
from the heavy-ion part, by direct ionisation, are not modelled apart from it.

Electrons (AE8) are left out: at the energies trapped electrons carry, they upset
modern memories far less than protons do.
"""

from __future__ import annotations

import datetime
import functools
import math
from pathlib import Path

import numpy as np

from hal.errors import InputError

TABLE = Path(__file__).with_name("data") / "ap8.npz"
MODEL_EPOCH_YEAR = {"min": 1964.0, "max": 1970.0}  # the epochs of AP8's own fields
GCR_FLUX = 1.0  # cm^-2 s^-1, the floor everywhere
SAA_FLUX = 1.0  # cm^-2 s^-1 of trapped protons: inside, the belt outweighs the floor
ALTITUDE_STEP_KM = 1.0  # the slice at the orbit's altitude is redone when it moves this far


@functools.cache
def _table() -> dict[str, np.ndarray]:
    with np.load(TABLE) as data:
        return {k: data[k] for k in data.files}


def saa_drift_deg(year: float) -> tuple[float, float]:
    """Where IGRF puts the minimum of |B| at 500 km in `year`: (latitude, longitude)."""
    drift = _table()["saa_drift"]
    years, lats, lons = drift[:, 0], drift[:, 1], drift[:, 2]
    if year > years[-1]:  # carry the last five years' rate on
        rate = (drift[-1, 1:] - drift[-2, 1:]) / (years[-1] - years[-2])
        lat, lon = drift[-1, 1:] + rate * (year - years[-1])
        return float(lat), float(lon)
    return float(np.interp(year, years, lats)), float(np.interp(year, years, lons))


def decimal_year(unix_s: float) -> float:
    t = datetime.datetime.fromtimestamp(unix_s, datetime.UTC)
    start = datetime.datetime(t.year, 1, 1, tzinfo=datetime.UTC)
    end = datetime.datetime(t.year + 1, 1, 1, tzinfo=datetime.UTC)
    return t.year + (t - start) / (end - start)


class TrappedProtons:
    """AP8 protons above 30 MeV (cm^-2 s^-1) at a place, moved to the mission epoch."""

    def __init__(self, solar: str = "min", epoch_unix_s: float | None = None) -> None:
        if solar not in MODEL_EPOCH_YEAR:
            raise InputError(f"radiation solar cycle must be 'min' or 'max', got {solar!r}")
        table = _table()
        self.solar = solar
        self.alt_km = table["alt_km"]
        self.lat0, self.dlat = float(table["lat_deg"][0]), float(np.diff(table["lat_deg"][:2])[0])
        self.lon0, self.dlon = float(table["lon_deg"][0]), float(np.diff(table["lon_deg"][:2])[0])
        self.log_flux = table[f"log10_flux_{solar}"].astype(np.float64)
        self.floor = float(table["floor"])
        self.year = decimal_year(epoch_unix_s) if epoch_unix_s is not None else None
        if self.year is None:
            self.shift_lat = self.shift_lon = 0.0  # the model's own epoch
        else:
            now, then = saa_drift_deg(self.year), saa_drift_deg(MODEL_EPOCH_YEAR[solar])
            self.shift_lat, self.shift_lon = now[0] - then[0], now[1] - then[1]
        self._slice_alt = math.nan
        self._slice: list[list[float]] = []

    def _at_altitude(self, alt_km: float) -> list[list[float]]:
        if abs(alt_km - self._slice_alt) >= ALTITUDE_STEP_KM or not self._slice:
            alts = self.alt_km
            if not alts[0] <= alt_km <= alts[-1]:
                raise InputError(f"altitude {alt_km:.0f} km is outside the radiation model's "
                                 f"{alts[0]:.0f}..{alts[-1]:.0f} km")
            i = min(int(np.searchsorted(alts, alt_km, side="right")) - 1, len(alts) - 2)
            w = (alt_km - alts[i]) / (alts[i + 1] - alts[i])
            self._slice = ((1 - w) * self.log_flux[i] + w * self.log_flux[i + 1]).tolist()
            self._slice_alt = alt_km
        return self._slice

    def flux(self, lat_deg: float, lon_deg: float, alt_km: float) -> float:
        """The flux at a geodetic place (cm^-2 s^-1)."""
        grid = self._at_altitude(alt_km)
        y = (lat_deg - self.shift_lat - self.lat0) / self.dlat
        y = min(max(y, 0.0), len(grid) - 1.000001)
        x = ((lon_deg - self.shift_lon - self.lon0) % 360.0) / self.dlon
        x = min(x, len(grid[0]) - 1.000001)
        i, j = int(y), int(x)
        fy, fx = y - i, x - j
        row0, row1 = grid[i], grid[i + 1]
        log = ((1 - fy) * ((1 - fx) * row0[j] + fx * row0[j + 1])
               + fy * ((1 - fx) * row1[j] + fx * row1[j + 1]))
        return max(10.0 ** log - self.floor, 0.0)

    def flux_grid(self, lat_deg: np.ndarray, lon_deg: np.ndarray, alt_km: float) -> np.ndarray:
        """flux() over arrays of places at one altitude."""
        return np.vectorize(lambda la, lo: self.flux(la, lo, alt_km))(lat_deg, lon_deg)

    def centroid_deg(self, alt_km: float = 500.0) -> tuple[float, float]:
        """The flux-weighted centre of the South Atlantic Anomaly at an altitude: over
        60 S .. 20 N, 120 W .. 60 E, where the belt comes lowest."""
        lat, lon = np.meshgrid(np.arange(-60.0, 20.1, 1.0), np.arange(-120.0, 60.1, 1.0),
                               indexing="ij")
        f = self.flux_grid(lat, lon, alt_km)
        return float((f * lat).sum() / f.sum()), float((f * lon).sum() / f.sum())
