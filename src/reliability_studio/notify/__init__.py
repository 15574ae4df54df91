"""Notifications: channels (Slack, PagerDuty, signed webhooks, email) and their delivery."""
