"""An agent that calls OpenAI and Anthropic with their SDKs; exits 0 only if both answer.

Run it as `seks exec --agent A -- python both.py`: it uses the keys, proxy and CA that seks
put in its environment, and knows nothing else.
"""

from __future__ import annotations

import sys
from typing import Any

from _report import report
from anthropic import Anthropic
from openai import OpenAI

results: dict[str, bool] = {}


def openai_chat() -> dict[str, Any]:
    client = OpenAI(max_retries=0, timeout=30)
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "ping from both.py"}]
    )
    results["openai"] = True
    return {"content": completion.choices[0].message.content}


def anthropic_message() -> dict[str, Any]:
    client = Anthropic(max_retries=0, timeout=30)
    msg = client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=64,
        messages=[{"role": "user", "content": "ping from both.py"}],
    )
    results["anthropic"] = True
    return {"content": "".join(b.text for b in msg.content if b.type == "text")}


report({"openai_chat": openai_chat, "anthropic_message": anthropic_message})
sys.exit(0 if results == {"openai": True, "anthropic": True} else 1)
