"""The real Portage test builder (see builder.py) and its pytest fixture."""
