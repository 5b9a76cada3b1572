"""Plan mode: while ``dockeroo plan`` runs, nothing may change Docker or a file."""



#: True while ``dockeroo plan`` runs: no lock, no file written, read-only docker commands only
#: (the process's mode, set before any Run exists: a documented exception in
#: tests/unit/test_state.py)
PLANNING = False


class PlanViolation(RuntimeError):
    """Something tried to change Docker or the buildout while planning (a bug)."""


def check_writable(what):
    """Raise PlanViolation if planning: WHAT would change Docker or a file."""
    if PLANNING:
        raise PlanViolation("dockeroo plan must not %s" % what)
