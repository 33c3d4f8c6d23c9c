"""The statusflow dashboard: a small aiohttp service that folds the public topics into a live page."""
