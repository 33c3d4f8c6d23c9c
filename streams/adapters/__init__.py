"""Provider adapters: one module per provider, found through `registry.ADAPTERS`."""
