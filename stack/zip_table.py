"""The compact US ZIP table domain/geo.py reads: python -m stack.zip_table [--check]

The zipcodes package hands out every ZIP as a dict of sixteen fields (42,000 of them, ~200 MB
of a process's memory that Python never gives back). The platform needs three: the centre and
the time zone. This writes them, once, to domain/data/us_zips.tsv.gz ("zip, lat, lon, zone"
per line, empty where unknown); `--check` (and tests/domain/test_geo.py) compares the file with
the installed package, so an upgrade of zipcodes that changes the data is seen.
"""
from __future__ import annotations

import gzip
import sys

from domain.geo import ZIP_TABLE_PATH, point_timezone


def rows_from_package() -> list[str]:
    """One line per ZIP, sorted: the centre ((0, 0) means none) and the zone (asked of the
    zone map where the data has none but has a centre)."""
    from zipcodes import _zipcodes  # the module-level list_all() would keep its 42,000 dicts

    lines = []
    for row in _zipcodes.list_all():
        try:
            lat, lon = float(row["lat"]), float(row["long"])
            point = None if lat == 0 and lon == 0 else (row["lat"], row["long"])
        except (KeyError, TypeError, ValueError):
            point = None
        tz = row.get("timezone") or None
        if tz is None and point is not None:
            tz = point_timezone(float(point[0]), float(point[1]))
        lines.append("\t".join([row["zip_code"], *(point or ("", "")), tz or ""]))
    return sorted(lines)


def text() -> bytes:
    return ("\n".join(rows_from_package()) + "\n").encode()


def main(argv: list[str]) -> int:
    fresh = text()
    if "--check" in argv:
        same = gzip.decompress(ZIP_TABLE_PATH.read_bytes()) == fresh
        print("the ZIP table matches the zipcodes package" if same else
              "the ZIP table differs from the zipcodes package: run python -m stack.zip_table")
        return 0 if same else 1
    ZIP_TABLE_PATH.write_bytes(gzip.compress(fresh, compresslevel=9, mtime=0))
    print(f"wrote {ZIP_TABLE_PATH} ({len(fresh.splitlines())} ZIPs)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
