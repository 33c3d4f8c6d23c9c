"""The HTTP receiver: authenticates webhooks and acknowledges them once Kafka holds them."""
