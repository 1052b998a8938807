"""Run an agent's calls and print one JSON report on stdout for the test to read.

Everything the agent received (status, headers, bodies, parsed results, errors) goes into the
report, so a test can both check the answers and search them for a leaked credential.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

CREDENTIAL_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GITHUB_TOKEN")


def describe_error(e: BaseException) -> dict[str, Any]:
    err: dict[str, Any] = {"class": type(e).__name__, "str": str(e)}
    for attr in ("status_code", "code", "type", "body"):
        value = getattr(e, attr, None)
        if value is not None:
            err[attr] = value if isinstance(value, (str, int, dict, list)) else repr(value)
    response = getattr(e, "response", None)
    if response is not None:
        err["headers"] = dict(response.headers)
        try:
            err["text"] = response.text
        except Exception as read_error:  # a streamed response may not be readable any more
            err["text"] = f"<unreadable: {read_error!r}>"
    return err


def report(calls: dict[str, Callable[[], dict[str, Any]]]) -> None:
    wanted = sys.argv[1:] or list(calls)
    out: dict[str, Any] = {
        "env": {k: os.environ.get(k) for k in CREDENTIAL_VARS},
        "calls": {},
    }
    for name in wanted:
        try:
            out["calls"][name] = {"ok": True, **calls[name]()}
        except Exception as e:
            out["calls"][name] = {"ok": False, "error": describe_error(e)}
    print(json.dumps(out, default=str))
