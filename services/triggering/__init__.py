"""The trigger engine: product and platform events in, segment membership kept, triggered
messages out (as send.requested on the priority path), timers for what waits. The decisions
are in domain/triggers.py; engine.py does the reading and writing around them."""
