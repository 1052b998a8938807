"""An agent fetching several paths from api.openai.com on one `httpx` connection.

Usage: python scrub_fetch.py [--no-auth] PATH [PATH ...]
Sends the token from OPENAI_API_KEY as a bearer token (unless --no-auth) and prints one JSON
report: per response its status, reason, headers, raw body bytes (base64, as they came off the
connection, not content-decoded) and the local port of the connection it came on.
"""

from __future__ import annotations

import base64
import json
import os
import sys

import httpx


def fetch(client: httpx.Client, path: str, headers: dict[str, str]) -> dict[str, object]:
    with client.stream("GET", "https://api.openai.com" + path, headers=headers) as response:
        body = b"".join(response.iter_raw())
        stream = response.extensions["network_stream"]
        return {
            "status": response.status_code,
            "reason": response.reason_phrase,
            "headers": response.headers.multi_items(),
            "body": base64.b64encode(body).decode(),
            "local_port": stream.get_extra_info("client_addr")[1],
        }


def main() -> None:
    paths = sys.argv[1:]
    headers = {}
    if paths[0] == "--no-auth":
        paths = paths[1:]
    else:
        headers["Authorization"] = "Bearer " + os.environ["OPENAI_API_KEY"]
    with httpx.Client(timeout=30) as client:
        responses = [fetch(client, path, headers) for path in paths]
    print(json.dumps({"responses": responses}))


main()
