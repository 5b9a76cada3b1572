"""A Run for unit tests: no lock, no signal handlers, no exit hook."""

import os

from dockeroo.runtime import run as lifecycle

def bare_run(tmp_path):
    """A Run without lock, signal handlers or exit hook (none in the test process)."""
    run = lifecycle.Run.__new__(lifecycle.Run)
    run.parts_directory = str(tmp_path / "parts")
    run.directory = str(tmp_path)
    run.state = os.path.join(run.parts_directory, lifecycle.STATE_DIR)
    run.id = "0123456789abcdef"
    run.configured, run.succeeded, run.deferred = {}, set(), {}
    run.engines, run.live, run.interrupted = [], set(), None
    run.removed_together, run.ahead, run.references = set(), None, {}
    return run
