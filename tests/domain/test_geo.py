"""Offline geodata: ZIP centres and zones, the zone of a point, distances."""
from __future__ import annotations

import pytest

from domain.geo import haversine_km, point_timezone, zip_point, zip_timezone


@pytest.mark.parametrize("zip5, zone", [
    ("10001", "America/New_York"),
    ("90012", "America/Los_Angeles"),
    ("60601", "America/Chicago"),
    ("85004", "America/Phoenix"),
    ("80202", "America/Denver"),
    ("96813", "Pacific/Honolulu"),
    ("10001-2062", "America/New_York"),
])
def test_zip_timezone(zip5, zone):
    assert zip_timezone(zip5) == zone


def test_zip_point_is_the_zip_centre():
    lat, lon = zip_point("10001")
    assert lat == pytest.approx(40.75, abs=0.02) and lon == pytest.approx(-74.00, abs=0.02)


@pytest.mark.parametrize("zip5", ["00000", "99999", "abcde", "1234", "", "09001"])
def test_unknown_or_placeless_zip_is_none(zip5):
    # 09001 is a military (APO) ZIP: listed, but with no centre and no zone.
    assert zip_point(zip5) is None
    assert zip_timezone(zip5) is None


@pytest.mark.parametrize("point, zone", [
    ((33.4484, -112.0740), "America/Phoenix"),  # Phoenix: no daylight saving, not Denver's zone
    ((40.7128, -74.0060), "America/New_York"),
    ((34.0522, -118.2437), "America/Los_Angeles"),
    ((41.8781, -87.6298), "America/Chicago"),
])
def test_point_timezone(point, zone):
    assert point_timezone(*point) == zone


def test_point_timezone_of_an_impossible_point_is_none():
    assert point_timezone(95.0, 0.0) is None
    assert point_timezone(0.0, float("nan")) is None


def test_haversine_km():
    new_york, los_angeles = (40.7128, -74.0060), (34.0522, -118.2437)
    assert haversine_km(new_york, los_angeles) == pytest.approx(3936, rel=0.01)
    assert haversine_km(new_york, new_york) == 0
    assert haversine_km(new_york, los_angeles) == haversine_km(los_angeles, new_york)


def test_the_shipped_zip_table_is_the_zipcodes_package_data():
    # domain/data/us_zips.tsv.gz is made by stack/zip_table.py: it must say what the installed
    # package says (centre, (0, 0) as none, the zone map where the data has no zone)
    import gzip

    from domain.geo import ZIP_TABLE_PATH
    from stack.zip_table import text

    assert gzip.decompress(ZIP_TABLE_PATH.read_bytes()) == text()


def test_the_zip_table_holds_no_more_than_the_platform_needs():
    # the package's 42,000 sixteen-field dicts used to stay in every process that matched a job
    # (~200 MB each); the table keeps a centre and a zone per ZIP
    from domain.geo import _zip_table

    table = _zip_table()
    assert len(table) > 40_000
    assert table["10001"] == ((40.7484, -73.9967), "America/New_York")
    assert sum(1 for info in table.values() if info.point is None and info.timezone is None) > 0
