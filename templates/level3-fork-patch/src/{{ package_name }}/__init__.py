"""Tooling for a fork kept as a pinned upstream plus an ordered series of patches."""
