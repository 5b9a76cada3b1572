"""One module per recipe; each defines ``Recipe`` and ``uninstall``."""
