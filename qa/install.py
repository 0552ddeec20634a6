"""How qa was installed, and the pip command that adds to it: the advice in errors and in `qa doctor`
must work for a checkout, a wheel and a package index alike."""

from __future__ import annotations

import importlib.metadata
import json
import shlex
import sys
from urllib.parse import unquote, urlparse


def _installed_from(distribution: str) -> dict:
    """What pip recorded of where qa came from (direct_url.json), from whichever copy of its metadata
    has it (a checkout also holds a qa.egg-info without it); {} when it came from a package index."""
    for found in importlib.metadata.distributions(name=distribution):
        try:
            recorded = json.loads(found.read_text("direct_url.json") or "{}")
        except ValueError:
            continue
        if recorded.get("url"):
            return recorded
    return {}


def install_command(extra: str = "", distribution: str = "qa") -> str:
    """The pip command that adds `extra` to qa as it was installed (no extra: installs it again):
    from a checkout (editable), a wheel or other file, or a package index. Run with this Python, so
    it lands in the right place."""
    pip = f"{shlex.quote(sys.executable)} -m pip install"
    recorded = _installed_from(distribution)
    url = urlparse(recorded.get("url", ""))
    where = unquote(url.path) if url.scheme == "file" else recorded.get("url", "")
    extras = f"[{extra}]" if extra else ""
    if not where:
        return f"{pip} {shlex.quote(distribution + extras)}"
    if recorded.get("dir_info", {}).get("editable"):
        return f"{pip} -e {shlex.quote(where + extras)}"
    return f"{pip} {shlex.quote(where + extras)}"  # the same wheel (or folder) again, with the extra
