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


def sign_in(page, url, user, password):
    """Signs `page` in as `user` and opens the Phone view; returns once the app's phone is
    registered ("ready")."""
    from playwright.sync_api import expect

    page.goto(f"{url}/#/signin")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Phone").click()
    expect(page.get_by_role("heading", name="Phone")).to_be_visible()
    expect(page.locator("[data-phone-state]")).to_have_attribute("data-phone-state", "ready")


def ask(sync, what, timeout=60):
    """Asks the test for `what` (writes want-WHAT) and waits for its answer (the file WHAT)."""
    open(os.path.join(sync, f"want-{what}"), "w").close()
    deadline = time.time() + timeout
    while not os.path.exists(os.path.join(sync, what)):
        if time.time() > deadline:
            fail(f"the test did not make {what} happen within {timeout} s")
        time.sleep(0.05)
