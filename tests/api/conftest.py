"""The API tests use the live stack's fixtures (tests/integration/conftest.py)."""
from tests.integration.conftest import api, book, ch, keys, rds, settings  # noqa: F401  (pytest fixtures)
from tests.integration.conftest import supervisor  # noqa: F401,E402
