"""`at tui --web` in headless Chromium: the token gate, the control room on the page, a tab
switched and an approval answered with the keyboard, checked against the real daemon.

Chromium comes from the distribution's packages (.ci/run installs it); Playwright drives it
and never downloads a browser of its own. The page draws the terminal on a canvas, so the
test reads the screen from xterm.js's own buffer (see SCREEN).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from at_cli import AT, agent_state, asker_config, at, daemon_town, pending_approvals, wait_for
from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # The page links a web font; nothing but this machine is to be asked for anything.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]

SCREEN = """
// textual-serve keeps its xterm.js Terminal in a property named `terminal` of an object the
// page never exposes: a setter on Object.prototype catches the assignment, stores the value
// where it belongs, and keeps the terminal for the test.
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  set(value) {
    Object.defineProperty(this, "terminal", {value, writable: true, configurable: true});
    if (value && value.buffer) window.atTerminal = value;
  },
});
window.atScreen = () => {
  const term = window.atTerminal;
  if (!term) return "";
  const rows = [];
  const lines = term.buffer.active;
  for (let y = 0; y < term.rows; y++) rows.push(lines.getLine(y).translateToString(true));
  return rows.join("\\n");
};
"""


@pytest.fixture
def chromium() -> str:
    """The distribution's Chromium: required on CI, a skip elsewhere."""
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs Debian's chromium package)")
        pytest.skip("needs chromium (apt-get install chromium)")
    return path


@pytest.fixture
def town() -> Iterator[Path]:
    """A daemon town whose agent asks before it runs a command; no popups, only the inbox.

    The agent is started, not waited for: the test waits for it on the page."""
    with daemon_town(demo_agent=False) as root:
        with (root / "tundra.toml").open("a") as config:
            config.write(asker_config("asker") + "\n[ui]\napproval_popup = false\n")
        at(root, "agent", "start", "asker")
        yield root


def read_link(server: subprocess.Popen[str], timeout: float = 15) -> str:
    """The link `at tui --web` prints once it is serving."""
    assert server.stdout is not None
    ready, _, _ = select.select([server.stdout], [], [], timeout)
    assert ready, "at tui --web printed no link"
    line = server.stdout.readline()
    link = next((word for word in line.split() if word.startswith("http://")), None)
    assert link is not None, f"no link in {line!r}"
    return link


def status(url: str, **headers: str) -> int:
    """The HTTP status of a GET."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5):
            return 200
    except urllib.error.HTTPError as error:
        return error.code


def wait_screen(page: Page, text: str, timeout: float = 20) -> None:
    """Wait until the page's terminal shows `text`."""
    try:
        page.wait_for_function(
            "text => window.atScreen().includes(text)", arg=text, timeout=timeout * 1000
        )
    except PlaywrightTimeout:
        screen = page.evaluate("window.atScreen()")
        raise AssertionError(f"{text!r} never showed:\n{screen}") from None


UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


def test_the_control_room_in_a_browser(chromium: str, town: Path) -> None:
    server = subprocess.Popen(
        [*AT, "--town", str(town), "tui", "--web", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        link = read_link(server)
        base, _, token = link.partition("?token=")
        assert link.startswith("http://127.0.0.1:") and token
        # Without the token nothing is served: not the page, its script or the websocket.
        assert status(base) == 403
        assert status(f"{base}?token=not-{token}") == 403
        assert status(f"{base}static/js/textual.js") == 403
        assert status(f"{base}ws", **UPGRADE) == 403
        # With it, still no websocket for a page of another site.
        assert status(f"{base}ws?token={token}", Origin="http://example.invalid", **UPGRADE) == 403
        port = base.rstrip("/").rpartition(":")[2]
        taken = at(town, "tui", "--web", "--port", port, check=False)
        assert (taken.returncode, taken.stderr) == (
            2,
            f"at: port {port} on 127.0.0.1 is in use (choose another with --port)\n",
        )

        with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
            browser = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=chromium,
                args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 800},
            )
            browser.add_init_script(SCREEN)
            asked: list[str] = []
            browser.on("request", lambda request: asked.append(request.url))
            page = browser.pages[0] if browser.pages else browser.new_page()
            page.goto(link)
            wait_screen(page, "1 Dashboard")
            wait_screen(page, "asker")
            assert [url for url in asked if not url.startswith(base)] == [], "only this server"
            page.focus("textarea.xterm-helper-textarea")  # where xterm.js takes the keys

            page.keyboard.press("2")
            wait_screen(page, "asker · idle")  # the Agents tab's tile of the agent

            at(town, "send", "asker", "ask touch web.txt")
            wait_screen(page, "1 waiting")  # the title bar's counter
            page.keyboard.press("I")
            wait_screen(page, "Approvals waiting: 1")
            wait_screen(page, "touch web.txt")
            page.keyboard.press("y")
            wait_for(lambda: (town / "web.txt").exists())
            # The agent may act on the keys before the daemon's record of the answer is read
            # back, so the list is waited on; the answer must be the operator's approval.
            wait_for(lambda: pending_approvals(town) == [])
            approved = json.loads(
                at(town, "events", "--kind", "approval.approved", "--json").stdout
            )
            assert [(e["data"]["id"], e["actor"]) for e in approved] == [(1, "operator")]
            assert (town / "keys.log").read_text() == "y"
            browser.close()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            out, err = server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert server.returncode == 0, err
    assert "token=" not in out, "the link is printed once"
    assert agent_state(town, "asker") in ("working", "idle"), "the agent outlives the server"
