"""The sending use case: one batch of send requests, from request to provider and back to
events (batch.py), what each request composes (content.py), which jobs it shows
(job_picks.py), and the interfaces it needs from stores and providers (ports.py)."""
