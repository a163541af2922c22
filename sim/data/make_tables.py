"""Regenerate the environment tables the sim ships (sim/data/*.npz) from the reference
models, so that their provenance is a command, not a claim:

    pip install aep8 ppigrf pymsis
    python -m sim.data.make_tables

- ap8.npz: NASA's AP8 trapped-proton model (AP8MIN and AP8MAX, through IRBEM as the
  `aep8` package wraps it, each with the geomagnetic field it was built with), the
  omnidirectional integral flux of protons above 30 MeV (cm^-2 s^-1) on a geodetic
  grid of altitude, latitude and longitude, stored as log10(flux + 1e-3) in half precision.
- The South Atlantic Anomaly's drift: the position of the minimum of |B| at 500 km in
  IGRF-14 (`ppigrf`), every 5 years from 1960 to 2030 (the last from IGRF's secular
  variation; the sim carries the last five years' drift on beyond). AP8's fields
  place the anomaly where it was when the model was built; the sim moves the table by
  the drift from then to the mission epoch.
- msis.npz: NRLMSIS 2.1 (`pymsis`), the total mass density (kg/m^3) from 100 to 1500 km
  in 10 km steps, averaged over the globe (area-weighted), over local time (every 15
  deg of longitude at one instant) and over the seasons (equinoxes and solstices of
  2027), for F10.7 (daily and 81-day) of 65, 70, 100, 150, 200 and 250 sfu at Ap 15:
  what an orbit averages over a day, which is what sets its decay.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
ALT_KM = np.arange(150.0, 3001.0, 50.0)
LAT_DEG = np.arange(-80.0, 80.1, 2.0)
LON_DEG = np.arange(-180.0, 180.1, 4.0)
ENERGY_MEV = 30.0
FLOOR = 1e-3  # cm^-2 s^-1: below it the table says "none"
DRIFT_YEARS = np.arange(1960.0, 2030.1, 5.0)
MSIS_ALT_KM = np.arange(100.0, 1501.0, 10.0)
MSIS_F107 = np.array([65.0, 70.0, 100.0, 150.0, 200.0, 250.0])
MSIS_AP = 15.0
MSIS_DATES = np.array(["2027-03-20T00:00", "2027-06-21T00:00", "2027-09-23T00:00",
                       "2027-12-21T00:00"], dtype="datetime64[m]")


def msis_table() -> np.ndarray:
    """log10 of the mean density, [F10.7, altitude]."""
    import pymsis

    lons = np.arange(-180.0, 180.0, 15.0)
    lats = np.arange(-87.5, 90.0, 5.0)
    weight = np.cos(np.radians(lats))[None, None, :, None]
    rows = []
    for f107 in MSIS_F107:
        n = len(MSIS_DATES)
        out = pymsis.calculate(MSIS_DATES, lons, lats, MSIS_ALT_KM, f107s=np.full(n, f107),
                               f107as=np.full(n, f107), aps=np.full((n, 7), MSIS_AP))
        rho = (out[..., 0] * weight).sum(axis=(0, 1, 2)) / (weight.sum() * n * len(lons))
        rows.append(np.log10(rho))
    return np.array(rows)


def ap8_tables() -> dict[str, np.ndarray]:
    import aep8
    from astropy import units as u
    from astropy.coordinates import EarthLocation
    from astropy.time import Time

    alt, lat, lon = np.meshgrid(ALT_KM, LAT_DEG, LON_DEG, indexing="ij")
    loc = EarthLocation.from_geodetic(lon * u.deg, lat * u.deg, alt * u.km)
    out = {}
    for solar in ("min", "max"):
        flux = aep8.model("p", solar).integral_flux(
            loc, Time("2000-01-01"), ENERGY_MEV * u.MeV).value
        flux = np.nan_to_num(np.asarray(flux, dtype=float), nan=0.0)
        out[f"log10_flux_{solar}"] = np.log10(np.maximum(flux, 0.0) + FLOOR).astype(np.float16)
    return out


def saa_drift() -> np.ndarray:
    """(year, latitude, longitude) of the minimum of |B| at 500 km, by IGRF-14."""
    import datetime

    import ppigrf

    lat = np.arange(-60.0, 10.1, 0.5)
    lon = np.arange(-120.0, 40.1, 0.5)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    rows = []
    for year in DRIFT_YEARS:
        be, bn, bu = ppigrf.igrf(lo, la, 500.0, datetime.datetime(int(year), 1, 1))
        b = np.sqrt(np.asarray(be) ** 2 + np.asarray(bn) ** 2 + np.asarray(bu) ** 2)
        b = b.reshape(la.shape)
        i = int(np.argmin(b))
        rows.append((year, la.flat[i], lo.flat[i]))
    return np.array(rows)


def main() -> None:
    t0 = time.perf_counter()
    np.savez_compressed(HERE / "msis.npz", alt_km=MSIS_ALT_KM, f107=MSIS_F107, ap=MSIS_AP,
                        log10_density=msis_table())
    print(f"wrote {HERE / 'msis.npz'}")
    if "--msis-only" in sys.argv:
        return
    tables = ap8_tables()
    drift = saa_drift()
    np.savez_compressed(HERE / "ap8.npz", alt_km=ALT_KM, lat_deg=LAT_DEG, lon_deg=LON_DEG,
                        energy_mev=ENERGY_MEV, floor=FLOOR, saa_drift=drift, **tables)
    print(f"wrote {HERE / 'ap8.npz'} in {time.perf_counter() - t0:.0f} s")
    for year, lat, lon in drift:
        print(f"  |B| minimum at 500 km, {year:.0f}: {lat:.1f} deg, {lon:.1f} deg")


if __name__ == "__main__":
    main()
