"""A `mitmdump -s` script with the hooks `seks proxy` implements, each doing nothing.

For bench/ablation.py: what mitmproxy itself spends dispatching SEKS's hooks (three addons,
async where SEKS's are), with none of SEKS's work.
"""

from __future__ import annotations

from typing import Any


class Swap:
    """Where SeksAddon hooks in."""

    async def requestheaders(self, flow: Any) -> None:
        return None

    def responseheaders(self, flow: Any) -> None:
        return None

    def response(self, flow: Any) -> None:
        return None

    def error(self, flow: Any) -> None:
        return None

    def http_connect(self, flow: Any) -> None:
        return None

    def client_disconnected(self, client: Any) -> None:
        return None


class Scrub:
    """Where ResponseScrubber hooks in."""

    async def responseheaders(self, flow: Any) -> None:
        return None

    def response(self, flow: Any) -> None:
        return None

    def error(self, flow: Any) -> None:
        return None

    def websocket_message(self, flow: Any) -> None:
        return None


class Guard:
    """Where DestinationGuard hooks in."""

    async def request(self, flow: Any) -> None:
        return None


addons = [Swap(), Scrub(), Guard()]
