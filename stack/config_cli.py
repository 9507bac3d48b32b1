"""`./dev config import FILE` and `./dev config export [FILE]`: the tenant file in and out.

Import checks everything first and prints every problem with its path in the file; then it
makes the changes in one transaction and says how many entities were created, changed or left
as they were. Export writes the current configuration as a tenant file (stdout without FILE).
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import yaml

from domain.config_changes import Refused
from services.config_import import export_doc, import_doc, read_tenant_file
from streams.config_view import ConfigUnavailable
from streams.config_writer import ConfigWriteError
from streams.settings import get_settings
from runtime.deps import build

USAGE = "usage: ./dev config import FILE | ./dev config export [FILE]"


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("import", "export") or (argv[0] == "import" and len(argv) != 2):
        print(USAGE, file=sys.stderr)
        return 2
    deps = build(get_settings())
    try:
        if argv[0] == "import":
            return asyncio.run(_import(deps, Path(argv[1])))
        return _export(deps, Path(argv[1]) if len(argv) > 1 else None)
    except ConfigUnavailable as exc:
        print(f"config: {exc}", file=sys.stderr)
        return 1


async def _import(deps, path: Path) -> int:
    try:
        doc = read_tenant_file(path, deps.settings.placeholders)
        result = await import_doc(deps.config_service, doc, str(path))
    except Refused as exc:
        print(f"config import: {exc.message}", file=sys.stderr)
        for field, problem in exc.problems:
            print(f"  {field}: {problem}", file=sys.stderr)
        return 1
    except ConfigWriteError as exc:
        print(f"config import: {exc}; nothing was imported, retry", file=sys.stderr)
        return 1
    print(f"imported {path}: {result.created} created, {result.changed} changed, {result.unchanged} unchanged "
          f"(configuration version {deps.tenants.version})")
    for a in result.applied:
        if a.changed:
            print(f"  {a.ref.key} -> version {a.version}")
    return 0


def _export(deps, path: Path | None) -> int:
    text = ("# leadstream configuration, exported (import it with ./dev config import FILE)\n"
            + yaml.safe_dump(export_doc(deps.config_service), sort_keys=False, allow_unicode=True))
    if path is None:
        sys.stdout.write(text)
    else:
        path.write_text(text)
        print(f"exported the configuration (version {deps.tenants.version}) to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
