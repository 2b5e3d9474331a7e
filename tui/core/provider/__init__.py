"""Reaching a provider: profiles in config.toml, keys, connect() and its SDK client, failures."""
