"""Use cases with I/O: one module per use case, each owning the small interfaces it needs."""
