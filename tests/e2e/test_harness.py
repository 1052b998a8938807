"""The harness itself: a stuck agent must fail its test with where it was stuck, not a bare
timeout (CI once showed only "timed out after 60 seconds" for a WebSocket agent)."""

from __future__ import annotations

import pytest
from harness import base_env, run_agent

STUCK = """\
import threading


def wait_for_a_reply_that_never_comes():
    threading.Event().wait()


wait_for_a_reply_that_never_comes()
"""


def test_a_stuck_agent_fails_the_test_with_the_stack_it_is_stuck_in(agent_python, tmp_path):
    script = tmp_path / "stuck.py"
    script.write_text(STUCK)

    with pytest.raises(pytest.fail.Exception) as failed:
        # 3 s: time to start Python and reach the wait even on a loaded CI machine.
        run_agent(agent_python, str(script), env=base_env(tmp_path), timeout=3)

    message = str(failed.value)
    assert "stuck.py was still running after 3 s" in message
    assert "in wait_for_a_reply_that_never_comes" in message
