"""The workers a supervisor starts run with the allocator limited to two arenas (glibc's default
of one per allocating thread, 8 per core, made their RSS creep in the soak), unless the
environment says otherwise."""
from __future__ import annotations

from scaling.drill import Drill
from streams.settings import get_settings


def _environ(pid: int) -> dict[bytes, bytes]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        return dict(part.split(b"=", 1) for part in f.read().split(b"\0") if b"=" in part)


def _first_worker_env(drill: Drill) -> dict[bytes, bytes]:
    [pid] = [w["pid"] for w in drill.client.status()["agents"]["intake"]["workers"] if w["ready"]][:1]
    return _environ(pid)


def test_a_worker_runs_with_two_malloc_arenas_unless_told_otherwise():
    drill = Drill(get_settings(), lag_per_worker=1000, min_workers=1, max_workers=1, window_s=5)
    drill.env.pop("MALLOC_ARENA_MAX", None)  # ./dev's own environment sets it too: not this time
    with drill:
        assert _first_worker_env(drill)[b"MALLOC_ARENA_MAX"] == b"2"
    drill = Drill(get_settings(), lag_per_worker=1000, min_workers=1, max_workers=1, window_s=5)
    drill.env["MALLOC_ARENA_MAX"] = "4"
    with drill:
        assert _first_worker_env(drill)[b"MALLOC_ARENA_MAX"] == b"4"


def test_the_image_gives_its_processes_the_same_malloc_arenas_as_the_supervisor():
    """Containers (docker-compose, the k8s manifests) run the image's environment: the same value."""
    import re

    from scaling.fleet import WORKER_ENV_DEFAULTS
    from streams.settings import ROOT
    env_lines = [ln for ln in (ROOT / "Dockerfile").read_text().splitlines() if ln.startswith("ENV ")]
    found = [m.group(1) for ln in env_lines for m in [re.search(r"\bMALLOC_ARENA_MAX=(\S+)", ln)] if m]
    assert found == [WORKER_ENV_DEFAULTS["MALLOC_ARENA_MAX"]]
