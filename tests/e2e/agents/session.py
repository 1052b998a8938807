"""An agent holding one `httpx` connection open across requests, proxy and CA from its
environment.

Usage: python session.py URL
Prints "ready", then for each token read from stdin makes GET URL with it as a bearer token
and prints one JSON line: status, parsed body, and the local address of the connection (equal
across lines when the connection was reused).
"""

from __future__ import annotations

import json
import sys

import httpx


def main() -> None:
    url = sys.argv[1]
    with httpx.Client(timeout=30) as client:
        print("ready", flush=True)
        for line in sys.stdin:
            token = line.strip()
            response = client.get(url, headers={"authorization": f"Bearer {token}"})
            stream = response.extensions.get("network_stream")
            client_addr = stream.get_extra_info("client_addr") if stream else None
            try:
                body = response.json()
            except ValueError:
                body = None
            print(
                json.dumps(
                    {"status": response.status_code, "json": body, "client_addr": client_addr}
                ),
                flush=True,
            )


main()
