"""`seks proxy` with parts of its per-request work switched off, for bench/ablation.py only.

Never a way to run SEKS: a proxy started through this file breaks SEKS's promises on purpose,
to measure what each part costs. Parts, from $SEKS_BENCH_ABLATE (comma-separated):

  nolog    no console line per request (the `seks` logger at warning)
  memo     vault reads memoized for the process's life: token lookup, secret decryption,
           the secrets' fingerprint, the agent's proxy-auth and the secret's approval flags
  noscrub  responses are not scrubbed

Audit rows are discarded with SEKS_BENCH_ONLY_DISCARD_AUDIT=1, as in bench/overhead.py.
Usage: python bench/_ablated_seks.py proxy --config FILE --listen HOST:PORT
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

PARTS = {"nolog", "memo", "noscrub"}


def memoized(f: Callable[..., Any]) -> Callable[..., Any]:
    cache: dict[object, Any] = {}

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = (args[1:], tuple(sorted(kwargs.items())))  # args[0]: the vault or its db
        if key not in cache:
            cache[key] = f(*args, **kwargs)
        return cache[key]

    return wrapper


def ablate(parts: set[str]) -> None:
    if "nolog" in parts:
        import seks.proxy

        setup = seks.proxy._setup_logging
        seks.proxy._setup_logging = lambda level: setup("warning")  # type: ignore[assignment]
    if "memo" in parts:
        from seks.store import approvals, proxy_auth
        from seks.store.vault import Vault

        for name in ("resolve_token", "reveal_secret", "secrets_fingerprint"):
            setattr(Vault, name, memoized(getattr(Vault, name)))
        # The gate calls these through their modules, so replacing them there reaches it.
        proxy_auth.requires_proxy_auth = memoized(proxy_auth.requires_proxy_auth)
        approvals.requires_approval = memoized(approvals.requires_approval)
    if "noscrub" in parts:
        from seks.addon.responses import ResponseScrubber

        async def no_plan(self: ResponseScrubber, flow: object) -> None:
            return None

        ResponseScrubber.responseheaders = no_plan  # type: ignore[assignment,method-assign]
        ResponseScrubber.response = lambda self, flow: None  # type: ignore[assignment,method-assign]


def main() -> None:
    parts = set(filter(None, os.environ.get("SEKS_BENCH_ABLATE", "").split(",")))
    if parts - PARTS:
        sys.exit(f"unknown parts in SEKS_BENCH_ABLATE: {', '.join(sorted(parts - PARTS))}")
    ablate(parts)
    from seks.cli import main as seks_main

    sys.argv = ["seks", *sys.argv[1:]]
    seks_main()


if __name__ == "__main__":
    main()
