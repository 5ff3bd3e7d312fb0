"""The README's first walk-through, end to end."""

from __future__ import annotations


def test_run_rm_prints_hello_and_leaves_nothing(moorage):
    assert moorage.ok("run", "--rm", "busybox", "echo", "hello") == "hello\n"
    assert moorage.ok("ps", "-aq") == ""


def test_background_web_server_logs_exec_and_forced_removal(moorage):
    cid = moorage.ok("run", "-d", "--name", "web", "busybox", "httpd", "-f", "-p", "80").strip()
    assert len(cid) == 64
    assert "web" in moorage.ok("ps")
    assert moorage.ok("exec", "web", "hostname").strip() == cid[:12]
    assert "httpd -f -p 80" in moorage.ok("exec", "web", "ps")
    assert moorage.ok("rm", "-f", "web") == "web\n"
    assert moorage.ok("ps", "-aq") == ""
