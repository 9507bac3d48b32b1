"""The demo's sign-ins: one person per role from the tenant file (demo_password beside each)."""
from __future__ import annotations


def demo_logins(path) -> list[tuple[str, str, str]]:
    """(role, email, password) of the demo file's people, one per role (the first of each)."""
    import yaml
    doc = yaml.safe_load(path.read_text()) or {}
    people, seen, out = doc.get("people") or {}, set(), []
    for g in doc.get("grants") or ():
        person = people.get(g.get("person")) or {}
        if g.get("role") not in seen and person.get("demo_password"):
            seen.add(g["role"])
            out.append((g["role"], g["person"], person["demo_password"]))
    return out
