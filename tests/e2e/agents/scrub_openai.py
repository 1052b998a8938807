"""An agent using the real `openai` SDK against an upstream that echoes its key back.

Usage: python scrub_openai.py chat | split | gate ENCODING
chat and split print one JSON report; gate prints one JSON line per stream chunk the moment
the SDK yields it, so the test can watch events arrive.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from openai import OpenAI

client = OpenAI(max_retries=0, timeout=60)


def ask(prompt: str, **kw: Any) -> Any:
    return client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}], **kw
    )


def main() -> None:
    command = sys.argv[1]
    if command == "chat":
        raw = ask("echo")
        print(
            json.dumps(
                {
                    "status": raw.status_code,
                    "headers": raw.headers.multi_items(),
                    "text": raw.http_response.text,
                    "content": raw.parse().choices[0].message.content,
                }
            )
        )
    elif command == "split":
        raw = ask("split", stream=True)
        chunks = list(raw.parse())
        print(
            json.dumps(
                {
                    "status": raw.status_code,
                    "contents": [c.choices[0].delta.content for c in chunks],
                    "finish_reason": chunks[-1].choices[0].finish_reason,
                }
            )
        )
    else:  # gate ENCODING
        for chunk in ask(f"gate {sys.argv[2]}", stream=True).parse():
            choice = chunk.choices[0]
            print(json.dumps([choice.delta.content, choice.finish_reason]), flush=True)


main()
