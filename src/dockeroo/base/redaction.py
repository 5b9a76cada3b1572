"""Secrets hidden from every message: registered values and URLs' user:password become ``***``."""

import re


# -- secrets -----------------------------------------------------------------------
#: values (build-env values, passwords in archive URLs) never shown: every
#: DockerError, logged command line, streamed output line and option error
#: shows ``***`` instead.  Process-wide on purpose (the documented exception
#: to "run state lives on the Run", tests/unit/test_state.py): a value seen
#: once as a secret stays hidden in every message the process forms, in any
#: layer, with or without a Run (dockeroo plan, errors at exit)
_SECRETS = set()
#: shorter values are not hidden: they would blank out unrelated text
SECRET_MIN_LENGTH = 4
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]*@")


def add_secret(value):
    """Hide VALUE (a str) wherever dockeroo forms a message from now on."""
    if value and len(value) >= SECRET_MIN_LENGTH:
        _SECRETS.add(value)


def redact(text):
    """TEXT with the registered secrets and the user:password of URLs as ``***``."""
    if not text or not isinstance(text, str):
        return text
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return _USERINFO.sub(r"\1***@", text) if "@" in text else text
