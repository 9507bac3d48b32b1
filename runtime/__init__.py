"""The composition root: what builds clients, stores and use cases for a process, and the
processes' entry points (worker, bootstrap, replay, one-off commands). Nothing below imports it."""
