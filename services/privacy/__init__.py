"""Privacy: leads' data keys (sealing personal fields), and later subject export and erasure."""
