"""`seks proxy` as a service: it announces one ready line on stdout (all other logging goes to
stderr), serves, and exits cleanly with 0 on SIGINT as on SIGTERM.
"""

from __future__ import annotations

import signal

from harness import READY_RE, ProxyProcess, base_env, curl, write_config


def test_ready_line_is_the_only_stdout_and_sigint_exits_0(
    seks, openai_upstream, anthropic_upstream, test_ca, tmp_path
):
    config = write_config(seks, openai_upstream, anthropic_upstream, test_ca)
    proxy = ProxyProcess(seks, config)
    try:
        proxy.wait_ready()
        token = seks.issue("openai")
        served = curl(
            "-x",
            proxy.url,
            "--cacert",
            str(seks.ca_path()),
            "https://api.openai.com/v1/models",
            headers=(f"Authorization: Bearer {token}",),
            env=base_env(tmp_path),
        )
    finally:
        code = proxy.stop(signal.SIGINT)

    assert served.status == 200
    assert code == 0, proxy.output().decode()
    (line,) = proxy.stdout
    assert READY_RE.fullmatch(line.decode().rstrip("\n"))
    assert line == f"seks proxy listening on 127.0.0.1:{proxy.port}\n".encode()
    assert b"Bearer" not in proxy.output()  # the console never shows headers
