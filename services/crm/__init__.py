"""The CRM bridge: contacts in through the normal intake (engagement out comes next)."""
