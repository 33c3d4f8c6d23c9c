"""Developer tooling for statusflow (local Kafka broker management, etc.)."""
