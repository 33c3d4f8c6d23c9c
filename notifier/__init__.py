"""The notifier: reads wa.alerts in its own consumer group and tells people (docs/notifier.md).

Pure logic (alerts, routing, grouping, dedup, offsets, rendering, Alertmanager mapping) lives
apart from the I/O (sinks, the ledger and parking topics, the consumer loop).
"""
