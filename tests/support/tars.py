"""Reading tar streams in tests."""

import tarfile


def list_names(src):
    """Names of the members of the tar stream SRC."""
    with tarfile.open(fileobj=src, mode="r|*") as tin:
        return [m.name for m in tin]
