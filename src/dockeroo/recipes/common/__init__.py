"""Helpers shared by several recipes (recipes never import each other)."""
