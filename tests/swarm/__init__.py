"""Swarm tests: run against a private engine (see conftest.py)."""
