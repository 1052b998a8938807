"""An agent calling every non-LLM-SDK provider the way its docs show, with real clients.

Tokens come from the environment `seks env` wrote (never argv); proxy and CA likewise.
Prints one JSON report: for each call, its HTTP status and parsed body (or the SDK's answer).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import httpx
import requests

GEMINI = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"


def _answer(status: int, text: str) -> dict[str, Any]:
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = text
    return {"status": status, "body": body}


def via_httpx(method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    with httpx.Client(timeout=30) as client:
        r = client.request(method, url, **kwargs)
    return _answer(r.status_code, r.text)


def via_requests(method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    r = requests.request(method, url, timeout=30, **kwargs)
    return _answer(r.status_code, r.text)


def groq() -> dict[str, Any]:
    import openai

    client = openai.OpenAI(
        api_key=os.environ["GROQ_API_KEY"], base_url="https://api.groq.com/openai/v1"
    )
    done = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "ping from groq"}]
    )
    return {"content": done.choices[0].message.content}


def gemini_sdk() -> dict[str, Any]:
    from google import genai

    client = genai.Client(api_key=os.environ["GEMINI_API_KEY"])
    done = client.models.generate_content(model="gemini-2.5-flash", contents="ping from gemini")
    return {"content": done.text}


def gemini_query() -> dict[str, Any]:
    body = {"contents": [{"parts": [{"text": "ping by query"}]}]}
    return via_httpx("POST", GEMINI, params={"key": os.environ["GEMINI_API_KEY"]}, json=body)


CALLS = {
    "groq": groq,
    "gemini_sdk": gemini_sdk,
    "gemini_query": gemini_query,
    "brave": lambda: via_requests(
        "GET",
        "https://api.search.brave.com/res/v1/web/search",
        params={"q": "seks"},
        headers={"X-Subscription-Token": os.environ["BRAVE_API_KEY"]},
    ),
    "notion": lambda: via_httpx(
        "GET",
        "https://api.notion.com/v1/users/me",
        headers={
            "Authorization": f"Bearer {os.environ['NOTION_TOKEN']}",
            "Notion-Version": "2022-06-28",
        },
    ),
    "cloudflare": lambda: via_requests(
        "GET",
        "https://api.cloudflare.com/client/v4/user/tokens/verify",
        headers={"Authorization": f"Bearer {os.environ['CLOUDFLARE_API_TOKEN']}"},
    ),
    "discord": lambda: via_httpx(
        "GET",
        "https://discord.com/api/v10/users/@me",
        headers={"Authorization": f"Bot {os.environ['DISCORD_BOT_TOKEN']}"},
    ),
    "telegram": lambda: via_requests(
        "GET", f"https://api.telegram.org/bot{os.environ['TELEGRAM_BOT_TOKEN']}/getMe"
    ),
    "github_api": lambda: via_requests(
        "GET",
        "https://api.github.com/user",
        headers={"Authorization": f"token {os.environ['GITHUB_TOKEN']}"},
    ),
    "github_git": lambda: via_requests(
        "GET",
        "https://github.com/o/r.git/info/refs?service=git-upload-pack",
        auth=("x-access-token", os.environ["GITHUB_TOKEN"]),
    ),
}


def main() -> None:
    names = sys.argv[1:] or list(CALLS)
    print(json.dumps({name: CALLS[name]() for name in names}))


main()
