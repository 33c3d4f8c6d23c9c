"""Avro contracts of every statusflow topic, the single-object codec and the shared settings."""
