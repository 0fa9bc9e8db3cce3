"""What the browser scripts share (tests/web/browser.py, tests/web/calls.py): Chromium's
flags for a headless run with fake media and no network, and the checks and the file handshake
with the Rust test that runs them."""

import os
import sys
import time

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def ask(sync, what, timeout=60):
    """Asks the test for `what` (writes want-WHAT) and waits for its answer (the file WHAT)."""
    open(os.path.join(sync, f"want-{what}"), "w").close()
    deadline = time.time() + timeout
    while not os.path.exists(os.path.join(sync, what)):
        if time.time() > deadline:
            fail(f"the test did not make {what} happen within {timeout} s")
        time.sleep(0.05)
