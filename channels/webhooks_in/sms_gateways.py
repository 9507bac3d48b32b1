"""The SMS gateways added beside Twilio and Esendex (Vonage, Plivo, Telnyx), by webhook name.

Kept apart so channels/webhooks_in/__init__.py only gains one line per group of providers.
"""
from __future__ import annotations

from types import ModuleType

from channels.webhooks_in import plivo, telnyx, vonage

PROVIDERS: dict[str, ModuleType] = {"vonage": vonage, "plivo": plivo, "telnyx": telnyx}
