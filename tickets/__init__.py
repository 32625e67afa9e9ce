"""The ticket (工单) domain: models, lifecycle, deadlines on the statutory calendar, reminders, supervision,
callbacks, member units, knowledge base, statistics and the HTTP API. Knows nothing of telephony or audio."""
