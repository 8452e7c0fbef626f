"""syncd: task notifications and Google Calendar sync for a CRM."""
