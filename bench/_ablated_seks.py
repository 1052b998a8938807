"""`seks proxy` with parts of its per-request work switched off, for bench/ablation.py only.

Never a way to run SEKS: a proxy started through this file breaks SEKS's promises on purpose,
to measure what each part costs. Parts, from $SEKS_BENCH_ABLATE (comma-separated):

  nolog    no console line per request (the `seks` logger at warning)
  memo     the proxy's vault reads (seks/store/read_cache.py) kept for the process's life:
           the change counter is never read again (secrets are still decrypted per use)
  noscrub  responses are not scrubbed

Audit rows are discarded with SEKS_BENCH_ONLY_DISCARD_AUDIT=1, as in bench/overhead.py.
Usage: python bench/_ablated_seks.py proxy --config FILE --listen HOST:PORT
"""

from __future__ import annotations

import os
import sys

PARTS = {"nolog", "memo", "noscrub"}


def ablate(parts: set[str]) -> None:
    if "nolog" in parts:
        import seks.proxy

        setup = seks.proxy._setup_logging
        seks.proxy._setup_logging = lambda level: setup("warning")  # type: ignore[assignment]
    if "memo" in parts:
        from seks.store.read_cache import ReadCache

        # The proxy's reads are kept until the vault changes (seks/store/read_cache.py); here
        # the change counter is read once, so they are never read again.
        refresh = ReadCache.refresh

        def refresh_once(self: ReadCache) -> None:
            if self._seen is None:
                refresh(self)

        ReadCache.refresh = refresh_once  # type: ignore[method-assign]
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
