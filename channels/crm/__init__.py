"""CRM connectors: adapters to a CRM's API (HubSpot first)."""
