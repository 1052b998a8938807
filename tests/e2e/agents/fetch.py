"""An agent making one raw request with `httpx`, proxy and CA from its environment.

Usage: python fetch.py METHOD URL [HEADER:VALUE ...] [--json BODY]
Header values may name environment variables as $NAME, so tokens never go through argv.
"""

from __future__ import annotations

import json
import os
import string
import sys

import httpx


def main() -> None:
    args = sys.argv[1:]
    body = None
    if "--json" in args:
        i = args.index("--json")
        body = args[i + 1].encode()
        del args[i : i + 2]
    method, url, *header_args = args
    headers = {}
    for h in header_args:
        name, _, value = h.partition(":")
        headers[name.strip()] = string.Template(value.strip()).substitute(os.environ)
    if body is not None:
        headers.setdefault("content-type", "application/json")
    with httpx.Client(timeout=30) as client:
        response = client.request(method, url, headers=headers, content=body)
    print(
        json.dumps(
            {
                "status": response.status_code,
                "headers": dict(response.headers),
                "text": response.text,
                "http_version": response.http_version,
            }
        )
    )


main()
