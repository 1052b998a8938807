"""An agent talking WebSocket to api.openai.com with `websockets`, through the proxy.

Sends one text message, then prints one JSON report: the handshake response's headers and
every message the server sent (text as is, binary as base64) until it closed.
"""

from __future__ import annotations

import base64
import json
import os
import ssl

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

HELLO = "hello from the agent"


def main() -> None:
    received: list[dict[str, str]] = []
    with connect(
        "wss://api.openai.com/echo/ws",
        additional_headers={"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"]},
        ssl=ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"]),
        open_timeout=30,
    ) as ws:
        ws.send(HELLO)
        try:
            while True:
                message = ws.recv(timeout=30)
                if isinstance(message, str):
                    received.append({"text": message})
                else:
                    received.append({"binary": base64.b64encode(message).decode()})
        except ConnectionClosed:
            pass
        headers = list(ws.response.headers.raw_items())
    print(json.dumps({"headers": headers, "messages": received}))


main()
