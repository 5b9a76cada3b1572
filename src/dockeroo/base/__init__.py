"""Base layer: plan-mode switch, redaction, image references, fingerprints, state files, tar streams (imports nothing else of dockeroo)."""
