"""No folder imports "upwards": each layer may import only the layers below it.

domain (pure rules) < schemas (the wire format) < streams (Kafka plumbing) < projections
(stores and read models) < channels (provider adapters) < services (use cases, owning the
interfaces they need) < agents < api < scaling < runtime (the composition root and the
processes' entry points). Every import counts, including those inside functions.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["domain", "schemas", "streams", "projections", "channels", "services", "agents", "api", "scaling",
          "runtime"]
RANK = {name: n for n, name in enumerate(LAYERS)}


def imported_tops(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    tops = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            tops |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.split(".")[0])
    return tops & set(LAYERS)


def upward_imports(layer: str) -> list[str]:
    bad = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        for top in sorted(imported_tops(path)):
            if RANK[top] > RANK[layer]:
                bad.append(f"{path.relative_to(ROOT)} imports {top}")
    return bad


@pytest.mark.parametrize("layer", LAYERS)
def test_no_layer_imports_a_layer_above_it(layer):
    assert upward_imports(layer) == []


def test_the_check_sees_imports_inside_functions(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def main():\n    from runtime.deps import build\n    import agents.sender\n")
    assert imported_tops(probe) == {"runtime", "agents"}
