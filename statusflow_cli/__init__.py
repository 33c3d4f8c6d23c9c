"""The `statusflow` command line."""
