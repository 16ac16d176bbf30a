"""Headless Chromium driven over the Chrome DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON messages
separated by NUL bytes on file descriptors 3 and 4), with the standard library only: no websocket client, no
browser download. Used by tests/test_report_browser.py and benchmarks/report_routerbench.py.

:func:`open_page` loads a local file with the network cut off (every host resolves to nothing) and returns a
:class:`Page`: what the page logged to the console, threw, or tried to fetch, its DOM through ``evaluate``, and
full-page screenshots.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_LAUNCHER = ("import os, sys; a, b = os.dup(int(sys.argv[1])), os.dup(int(sys.argv[2])); os.dup2(a, 3); "
             "os.dup2(b, 4); os.set_inheritable(3, True); os.set_inheritable(4, True); "
             "os.execvp(sys.argv[3], sys.argv[3:])")
#: luminance statistics of boxes of a PNG, computed in the browser (its decoder, no imaging library here)
_REGION_STATS = """(async () => {
  const img = new Image(); img.src = 'data:image/png;base64,__PNG__'; await img.decode();
  const canvas = document.createElement('canvas'); canvas.width = img.width; canvas.height = img.height;
  const ctx = canvas.getContext('2d'); ctx.drawImage(img, 0, 0);
  return __BOXES__.map(b => {
    const d = ctx.getImageData(b.x, b.y, b.width, b.height).data; let n = 0, s = 0, s2 = 0, ink = 0;
    for (let i = 0; i < d.length; i += 4) {
      const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2]; n++; s += y; s2 += y * y;
      if (y < 235) ink++;
    }
    return {std: Math.sqrt(Math.max(0, s2 / n - (s / n) ** 2)), ink: ink / n};
  });
})()"""
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The first Chromium-family browser on PATH ($CHROMIUM overrides), or None."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


class Page:
    """One tab of a headless browser: ``call`` a DevTools method, ``evaluate`` JavaScript, ``screenshot``."""

    def __init__(self, writer: Any, reader: Any, session: str | None = None) -> None:
        self._writer, self._reader, self._buffer = writer, reader, b""
        self._next = 0
        self.session = session
        self.events: list[dict] = []

    def call(self, method: str, params: dict | None = None, *, session: bool = True, timeout: float = 30) -> dict:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        self._writer.write(json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._reader], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("the browser did not answer in time")
            chunk = os.read(self._reader, 1 << 20)
            if not chunk:
                raise RuntimeError("the browser closed its DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def wait_for(self, method: str, *, since: int = 0, timeout: float = 30) -> dict:
        """The first event ``method`` at or after index ``since`` of :attr:`events`, waiting for it."""
        deadline = time.monotonic() + timeout
        while True:
            found = next((e for e in self.events[since:] if e.get("method") == method), None)
            if found is not None:
                return found
            self.events.append(self._receive(deadline))

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                     "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path | None = None, *, full_page: bool = True, scale: float = 1.0) -> bytes:
        """PNG bytes of the page (the whole document with ``full_page``, ``scale`` pixels per CSS pixel), also
        written to ``path``."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            width, height = self.evaluate("[document.documentElement.scrollWidth, "
                                          "document.documentElement.scrollHeight]")
            params.update(captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": width, "height": height,
                                                            "scale": scale})
        data = base64.b64decode(self.call("Page.captureScreenshot", params)["data"])
        if path is not None:
            Path(path).write_bytes(data)
        return data

    def region_stats(self, png: bytes, boxes: list[dict]) -> list[dict]:
        """Per box ({x, y, width, height} in the screenshot's pixels): the standard deviation of luminance and the
        share of pixels that are not near-white, measured by the browser's own PNG decoder on a blank page (this
        navigates away from the page under test)."""
        self.call("Page.navigate", {"url": "about:blank"})
        script = _REGION_STATS.replace("__PNG__", base64.b64encode(png).decode()).replace("__BOXES__",
                                                                                      json.dumps(boxes))
        return self.evaluate(script)

    def messages(self) -> dict[str, list[str]]:
        """What the page said: console calls by level, uncaught exceptions, browser log entries, requests made."""
        out: dict[str, list[str]] = {"console": [], "errors": [], "log": [], "requests": []}
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                out["console"].append(f"{params.get('type')}: {text}")
                if params.get("type") in ("error", "assert"):
                    out["errors"].append(text)
            elif method == "Runtime.exceptionThrown":
                out["errors"].append(str(params.get("exceptionDetails", {}).get("text")))
            elif method == "Log.entryAdded":
                entry = params.get("entry", {})
                out["log"].append(f"{entry.get('level')}: {entry.get('text')} {entry.get('url', '')}")
                if entry.get("level") == "error":
                    out["errors"].append(entry.get("text", ""))
            elif method == "Network.requestWillBeSent":
                out["requests"].append(params.get("request", {}).get("url", ""))
        return out


@contextmanager
def open_page(path: Path, *, width: int = 1400, height: int = 900, browser: str | None = None) -> Iterator[Page]:
    """A headless browser showing the local file ``path`` (loaded, fonts ready), closed on exit."""
    browser = browser or find_chromium()
    if browser is None:
        raise FileNotFoundError("no chromium on PATH")
    to_browser, from_us = os.pipe()
    to_us, from_browser = os.pipe()

    with tempfile.TemporaryDirectory(prefix="tinydancer-chromium-") as profile:
        # a tiny launcher moves our pipe ends to the browser's fds 3 (commands) and 4 (replies), then becomes the
        # browser (exec); no preexec_fn, which is unsafe in a process with threads (LanceDB's runtime has some)
        process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(to_browser), str(from_browser), browser, "--headless",
             "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions", "--mute-audio",
             "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(to_browser, from_browser), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        writer = os.fdopen(from_us, "wb", buffering=0)
        try:
            page = Page(writer, to_us)
            target = page.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            page.session = page.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                page.call(f"{domain}.enable")
            page.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                             "deviceScaleFactor": 1, "mobile": False})
            since = len(page.events)
            page.call("Page.navigate", {"url": Path(path).resolve().as_uri()})
            page.wait_for("Page.loadEventFired", since=since)
            page.evaluate("document.fonts.ready.then(() => true)")
            yield page
        finally:
            try:
                page.call("Browser.close", session=False, timeout=5)
            except (RuntimeError, TimeoutError, OSError):
                process.kill()  # it did not close by itself
            writer.close()
            os.close(to_us)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
