"""The built-in profiles, as package data (see the generator in deid/standard)."""
