"""pytest fixtures for the Gentoo recipes (imported by tests/conftest.py)."""

import time

import pytest

from . import builder


@pytest.fixture(scope="session")
def portage_builder(engine):
    """The tag of the real Portage test builder, made once and cached by content hash.

    A warm run finds ``dockeroo-test/portage-builder:<hash>`` and makes
    nothing; a cold one takes about a minute (debootstrap, then Portage).
    """
    started = time.monotonic()
    try:
        tag = builder.make_builder(log=lambda msg: print("portage_builder:", msg))
    except RuntimeError as exc:
        pytest.fail("cannot make the Portage test builder: %s" % exc)
    print("portage_builder: %s ready in %.1f s" % (tag, time.monotonic() - started))
    return tag
