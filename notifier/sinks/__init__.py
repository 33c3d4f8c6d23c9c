"""Where notifications go: Alertmanager, an HTTP webhook, email. Each raises SinkError when it
did not take a notification; the delivery loop retries, then parks."""
