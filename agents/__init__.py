"""Faust agents, thin: decode, call the use case, produce. AGENTS names each one's register
function ("module" -> its register(app, deps); "module:fn" -> that function, which a plain
consumer loop names with :run) for runtime/worker.py and the scaling manifests."""

AGENTS = {"intake": "agents.intake", "intake_json": "agents.intake_json",
          "analytics": "agents.analytics", "planner": "agents.planner",
          "jobs": "agents.jobs", "sender_priority": "agents.sender:register_priority",
          "sender_bulk": "agents.sender:register_bulk", "retry": "agents.retry",
          "engagement": "agents.engagement", "hygiene": "agents.hygiene",
          "webhooks_out": "agents.webhooks_out", "crm": "agents.crm", "config_history": "agents.config_history:run",
          "triggers": "agents.triggers", "activity": "agents.digests:register_activity",
          "digests_priority": "agents.digests:register_priority",
          "digests_standard": "agents.digests:register_standard"}
