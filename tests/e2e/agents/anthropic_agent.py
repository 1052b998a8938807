"""An agent using the real `anthropic` SDK, configured only by its environment.

Usage: python anthropic_agent.py [message] [stream] [stream_helper]   (default: all three)
"""

from __future__ import annotations

from typing import Any

from _report import report
from anthropic import Anthropic

PROMPT = "ping from the anthropic agent"
MODEL = "claude-sonnet-4-5"

client = Anthropic(max_retries=0, timeout=30)


def message() -> dict[str, Any]:
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": PROMPT}]
    )
    msg = raw.parse()
    return {
        "status": raw.status_code,
        "headers": dict(raw.headers),
        "text": raw.http_response.text,
        "content": "".join(b.text for b in msg.content if b.type == "text"),
        "stop_reason": msg.stop_reason,
    }


def stream() -> dict[str, Any]:
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    events = list(raw.parse())
    return {
        "status": raw.status_code,
        "headers": dict(raw.headers),
        "events": [e.model_dump(mode="json") for e in events],
        "event_types": [e.type for e in events],
        "content": "".join(
            e.delta.text
            for e in events
            if e.type == "content_block_delta" and e.delta.type == "text_delta"
        ),
    }


def stream_helper() -> dict[str, Any]:
    with client.messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": PROMPT}]
    ) as s:
        pieces = list(s.text_stream)
        final = s.get_final_message()
    return {
        "pieces": pieces,
        "content": "".join(b.text for b in final.content if b.type == "text"),
        "stop_reason": final.stop_reason,
    }


report({"message": message, "stream": stream, "stream_helper": stream_helper})
