"""Offline geodata: US ZIP centres and time zones, time zone of a point, great-circle distance.

Deterministic lookups in data shipped with the code: no network, no clock. The ZIP table
(centre and zone of every US ZIP, domain/data/us_zips.tsv.gz, made from the zipcodes package by
stack/zip_table.py) is read once, on first use, into a dict; the zone map is tzfpy's.
"""
from __future__ import annotations

import gzip
import math
import re
import sys
from functools import cache
from pathlib import Path
from typing import NamedTuple

EARTH_RADIUS_KM = 6371.0088
_ZIP5 = re.compile(r"^\s*(\d{5})(?:-?\d{4})?\s*$")
ZIP_TABLE_PATH = Path(__file__).parent / "data" / "us_zips.tsv.gz"

Point = tuple[float, float]  # (lat, lon) in degrees


class ZipInfo(NamedTuple):
    """What the platform needs of one ZIP code."""

    point: Point | None
    timezone: str | None


def zip_point(zip5: str) -> Point | None:
    """(lat, lon) of a US ZIP code's centre (ZIP+4 accepted), or None when unknown."""
    info = _zip_info(zip5)
    return info.point if info else None


def profile_point(profile: dict | None) -> Point | None:
    """Where a lead is, from its profile: its coordinates, else its ZIP code's centre."""
    p = profile or {}
    if p.get("lat") is not None and p.get("lon") is not None:
        return (p["lat"], p["lon"])
    return zip_point(str(p["zip"])[:5]) if p.get("zip") else None


def zip_timezone(zip5: str) -> str | None:
    """The IANA time zone of a US ZIP code, or None when unknown."""
    info = _zip_info(zip5)
    return info.timezone if info else None


def point_timezone(lat: float, lon: float) -> str | None:
    """The IANA time zone at a point (Etc/GMT±N over open sea), or None for an invalid point."""
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):  # also False for NaN
        return None
    return _tz_at(lat, lon)


def haversine_km(a: Point, b: Point) -> float:
    """Great-circle distance in km between two (lat, lon) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def _zip_info(zip5: str) -> ZipInfo | None:
    """The table row for a ZIP, after normalising ZIP+4 and spaces."""
    match = _ZIP5.match(str(zip5 or ""))
    return _zip_table().get(match.group(1)) if match else None


@cache
def _zip_table() -> dict[str, ZipInfo]:
    """Every US ZIP with its centre and zone (about 42,000 rows, ~10 MB), read once."""
    table: dict[str, ZipInfo] = {}
    for line in gzip.decompress(ZIP_TABLE_PATH.read_bytes()).decode().splitlines():
        zip5, lat, lon, tz = line.split("\t")
        table[zip5] = ZipInfo((float(lat), float(lon)) if lat else None, sys.intern(tz) if tz else None)
    return table


@cache
def _tz_finder():
    """The tzfpy lookup function, imported on first use (its polygon index loads then)."""
    from tzfpy import get_tz

    return get_tz


def _tz_at(lat: float, lon: float) -> str | None:
    """tzfpy takes (lon, lat); an empty answer means unknown."""
    return _tz_finder()(lon, lat) or None
