#!/usr/bin/env python3
"""Attended transfers between a real phone (Linphone's console client, played by the Rust test
crates/server/tests/transfer_attended.rs through the files in --sync) and the web app in
Chromium. Exits non-zero with a message on the first failed check.

  1. --user and --other sign in, each in a browser profile of their own;
  2. the phone calls --other's page, which answers; the phone holds that call and calls
     --user's page, which answers; the phone transfers --other to --user (attended: a REFER
     with Replaces). --other's page calls --user's with Replaces, which takes that call at once
     in place of the phone's and hangs the phone's up: --user and --other talk (each receives
     the other's audio), and neither is still in a call with the phone;
  3. the phone calls --user's page, which answers, puts it on hold and calls --other first
     ("Talk first"); --other answers; --user's page completes the transfer: the phone is asked
     (REFER with Replaces) to call --other in place of --user, and does; --other's page takes
     it at once in place of its call with --user, and receives the phone's audio; --user's page
     says both its calls are over.
"""

import argparse
import os

from playwright.sync_api import expect, sync_playwright

from common import CHROMIUM_FLAGS as COMMON_FLAGS, ask, check, sign_in

# The relay's only candidate is on 127.0.0.1 (RFC 8445 leaves loopback out).
CHROMIUM_FLAGS = COMMON_FLAGS + ["--allow-loopback-in-peer-connection"]


def signed_in(browser, url, user, password):
    """A page of a browser profile of its own, signed in as `user`, its phone ready."""
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20000)
    sign_in(page, url, user, password)
    return page


def receiving(page, name):
    """Waits until the page's call with `name` has received audio packets of the other side."""
    page.wait_for_function(
        f"() => Number(document.querySelector('.call[data-call-with=\"{name}\"][data-call-state=\"connected\"] .call-quality')?.dataset.received || 0) > 50",
        timeout=20000)


def close_ended(page):
    while page.get_by_role("button", name="Close").count():
        page.get_by_role("button", name="Close").first.click()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--other", required=True)
    ap.add_argument("--other-password", required=True)
    ap.add_argument("--phone", required=True, help="the phone's username")
    ap.add_argument("--sync", required=True)
    ap.add_argument("--shots", required=True)
    ap.add_argument("--chromium", default=os.environ.get("SAMBUNG_CHROMIUM", "/usr/bin/chromium"))
    a = ap.parse_args()
    os.makedirs(a.shots, exist_ok=True)
    url = a.url.rstrip("/")
    errors = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=a.chromium, headless=True, args=CHROMIUM_FLAGS)
        user = signed_in(browser, url, a.user, a.password)
        other = signed_in(browser, url, a.other, a.other_password)
        for p in (user, other):
            p.on("pageerror", lambda e: errors.append(str(e)))

        # 2. the phone calls --other, then --user, and transfers --other to --user
        ask(a.sync, "phone-calls-other")
        from_phone = other.locator(f'.call[data-call-with="{a.phone}"]')
        expect(from_phone.locator(".call-title")).to_have_text(f"{a.phone} is calling")
        from_phone.get_by_role("button", name="Answer", exact=True).click()
        expect(from_phone).to_have_attribute("data-call-state", "connected")
        ask(a.sync, "phone-calls-user")
        to_user = user.locator(f'.call[data-call-with="{a.phone}"]')
        expect(to_user.locator(".call-title")).to_have_text(f"{a.phone} is calling")
        to_user.get_by_role("button", name="Answer", exact=True).click()
        expect(to_user).to_have_attribute("data-call-state", "connected")
        ask(a.sync, "phone-transfers")
        # --other's page calls --user's with Replaces; --user's takes it in place of the phone's.
        user_with_other = user.locator(f'.call[data-call-with="{a.other}"]')
        other_with_user = other.locator(f'.call[data-call-with="{a.user}"]')
        expect(user_with_other).to_have_attribute("data-call-state", "connected")
        expect(other_with_user).to_have_attribute("data-call-state", "connected")
        receiving(user, a.other)
        receiving(other, a.user)
        expect(to_user).to_have_attribute("data-call-state", "ended")
        expect(to_user.locator(".call-status")).to_have_text(f"Transferred to {a.other}")
        expect(from_phone).to_have_attribute("data-call-state", "ended")
        user.screenshot(path=f"{a.shots}/attended-by-phone.png")
        print(f"the phone sent {a.other} on to {a.user} (attended): their pages talk, the phone's calls ended")
        other_with_user.get_by_role("button", name="Hang up").click()
        expect(user_with_other).to_have_attribute("data-call-state", "ended")
        for p in (user, other):
            close_ended(p)

        # 3. the phone calls --user, who talks to --other first and then sends the phone on
        ask(a.sync, "phone-calls-user-again")
        expect(to_user.locator(".call-title")).to_have_text(f"{a.phone} is calling")
        to_user.get_by_role("button", name="Answer", exact=True).click()
        expect(to_user).to_have_attribute("data-call-state", "connected")
        to_user.get_by_role("button", name="Transfer").click()
        to_user.get_by_label("Transfer to").fill(a.other)
        to_user.get_by_role("button", name="Talk first").click()
        expect(to_user).to_have_attribute("data-on-hold", "true")
        consult_in = other.locator(f'.call[data-call-with="{a.user}"]')
        expect(consult_in.locator(".call-title")).to_have_text(f"{a.user} is calling")
        consult_in.get_by_role("button", name="Answer", exact=True).click()
        consult = user.locator(f'.call[data-call-with="{a.other}"]')
        expect(consult).to_have_attribute("data-call-state", "connected")
        receiving(other, a.user)
        user.screenshot(path=f"{a.shots}/attended-consult.png")
        consult.get_by_role("button", name="Complete transfer").click()
        # The phone calls --other with Replaces: --other's page takes it in place of --user's.
        phone_in = other.locator(f'.call[data-call-with="{a.phone}"]')
        expect(phone_in).to_have_attribute("data-call-state", "connected")
        receiving(other, a.phone)
        expect(consult_in).to_have_attribute("data-call-state", "ended")
        expect(to_user).to_have_attribute("data-call-state", "ended")
        expect(consult).to_have_attribute("data-call-state", "ended")
        expect(to_user.locator(".call-status")).to_have_text("Transferred")
        other.screenshot(path=f"{a.shots}/attended-by-app.png")
        print(f"{a.user}'s page sent the phone on to {a.other} (attended): {a.other}'s page hears it")
        phone_in.get_by_role("button", name="Hang up").click()
        expect(phone_in).to_have_attribute("data-call-state", "ended")

        check(not errors, f"errors in the pages: {errors}")
        browser.close()
    print("OK")


if __name__ == "__main__":
    main()
