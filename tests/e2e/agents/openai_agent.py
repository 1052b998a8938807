"""An agent using the real `openai` SDK, configured only by its environment.

Usage: python openai_agent.py [models] [chat] [stream]   (default: all three)
"""

from __future__ import annotations

from typing import Any

from _report import report
from openai import OpenAI

PROMPT = "ping from the openai agent"

client = OpenAI(max_retries=0, timeout=30)


def models() -> dict[str, Any]:
    raw = client.models.with_raw_response.list()
    return {
        "status": raw.status_code,
        "headers": dict(raw.headers),
        "text": raw.http_response.text,
        "ids": [m.id for m in raw.parse().data],
    }


def chat() -> dict[str, Any]:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}]
    )
    completion = raw.parse()
    return {
        "status": raw.status_code,
        "headers": dict(raw.headers),
        "text": raw.http_response.text,
        "content": completion.choices[0].message.content,
    }


def stream() -> dict[str, Any]:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    chunks = list(raw.parse())
    return {
        "status": raw.status_code,
        "headers": dict(raw.headers),
        "chunks": [c.model_dump(mode="json") for c in chunks],
        "content": "".join(c.choices[0].delta.content or "" for c in chunks if c.choices),
        "finish_reason": chunks[-1].choices[0].finish_reason,
    }


report({"models": models, "chat": chat, "stream": stream})
