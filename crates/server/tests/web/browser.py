#!/usr/bin/env python3
"""The web app in a real browser: Debian's Chromium, headless, driven by Playwright for Python
(never a downloaded browser). Run by crates/server/tests/web_browser.rs against a running
`sambung serve`; exits non-zero with a message on the first failed check, and saves screenshots
of the main pages into --shots.

What it does, as a person would:
  1. opens the app, signs up as --user, sees the account page with the SIP address;
  2. makes an API token in the page and uses it from outside the page;
  3. finds --peer in the people search and adds them as a contact; asks the test (a file in
     --sync) to register --peer's baresip, sees them come online in the contact list without a
     reload; chats both ways with that baresip (the page's message reaches it and shows as
     delivered, its answer appears live); forwards every call to --peer in the page, and the
     test's next SIP call to --user reaches that baresip; turns forwarding off, the baresip
     leaves a voicemail, which plays in the page and is saved; records a greeting; a SIP phone
     of --user registers and the account page signs it out; asks for bob's phone to quit, and
     sees them go offline;
  4. a write without the CSRF token is refused (403, code "csrf");
  5. signs out, is refused with a wrong password, signs in again;
  6. the session cookie is replaced by an unknown one (an expired session): the next page
     load says the session ended and shows the sign-in page;
  7. signs in as --admin, makes an account and an invitation on the administration page;
  8. the app fits a phone-sized screen, every input has a label;
  9. on the server at --closed-url sign-up is refused, in the page and by the API;
 10. /api/v1/openapi.json validates as OpenAPI 3.1 (openapi-spec-validator).
"""

import argparse
import json
import os
import time

from openapi_spec_validator import validate
from playwright.sync_api import expect, sync_playwright

from common import CHROMIUM_FLAGS, ask, check, fail

# What alice writes in the page, and bob answers from his baresip (also in web_browser.rs).
FROM_THE_APP = "hello bob, written in the app"
FROM_BARESIP = "hi alice, typed on baresip"


# carol's password, as the administration page makes her account.
CAROL_PASSWORD = "amber meadow 73"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--closed-url", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--peer", required=True, help="an existing account to find in the people search")
    ap.add_argument("--admin", required=True)
    ap.add_argument("--admin-password", required=True)
    ap.add_argument("--shots", required=True)
    ap.add_argument("--microphone", required=True, help="a WAV file the browser's fake microphone says")
    ap.add_argument("--sync", required=True, help="a directory shared with the test: want-X asks, X answers")
    ap.add_argument("--chromium", default=os.environ.get("SAMBUNG_CHROMIUM", "/usr/bin/chromium"))
    a = ap.parse_args()
    os.makedirs(a.shots, exist_ok=True)
    url = a.url.rstrip("/")

    with sync_playwright() as pw:
        # Headless; every context below is a fresh profile.
        microphone = [f"--use-file-for-fake-audio-capture={a.microphone}"]
        browser = pw.chromium.launch(executable_path=a.chromium, headless=True, args=CHROMIUM_FLAGS + microphone)
        context = browser.new_context(ignore_https_errors=True, viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15000)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        # 1. sign up
        page.goto(f"{url}/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
        page.screenshot(path=f"{a.shots}/sign-in.png")
        page.get_by_role("link", name="Sign up").click()
        expect(page.get_by_role("heading", name="Sign up")).to_be_visible()
        page.get_by_label("Username").fill(a.user)
        page.get_by_label("Password", exact=True).fill(a.password)
        page.get_by_label("Email (optional").fill(f"{a.user}@example.com")
        page.screenshot(path=f"{a.shots}/sign-up.png")
        page.get_by_role("button", name="Create account").click()
        expect(page.get_by_role("heading", name="Your account")).to_be_visible()
        expect(page.get_by_role("status")).to_contain_text("Your account works on SIP phones too")
        expect(page.locator("main")).to_contain_text(f"sip:{a.user}@")
        # a queue's agent logs out of its queues in the page; a recorded call of hers is listed
        # and plays (its WAV file comes with the session)
        expect(page.locator("#queue-login")).to_contain_text("logged in to support")
        page.get_by_role("button", name="Log out of the queues").click()
        expect(page.locator("#queue-login")).to_contain_text("logged out of support")
        expect(page.locator("#recordings-list")).to_contain_text(f"bob → {a.user}")
        audio_url = page.locator("#recordings-list audio").get_attribute("src")
        audio = page.request.get(f"{url}{audio_url}")
        check(audio.status == 200 and audio.headers["content-type"] == "audio/wav" and audio.body()[:4] == b"RIFF",
              f"recording audio: {audio.status} {audio.headers.get('content-type')}")
        page.screenshot(path=f"{a.shots}/account.png", full_page=True)

        # 2. an API token made in the page works from outside it
        page.get_by_label("Token name").fill("crm export")
        page.get_by_role("button", name="Create token").click()
        secret = page.locator(".token-secret").inner_text()
        check(secret.startswith("sbg_"), f"token secret {secret!r}")
        expect(page.locator("#tokens")).to_contain_text("crm export")
        outside = pw.request.new_context(ignore_https_errors=True)
        me = outside.get(f"{url}/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
        check(me.status == 200 and me.json()["username"] == a.user, f"token use: {me.status} {me.text()}")

        # 3. people search, a contact, and its presence live
        page.get_by_role("navigation", name="Main").get_by_role("link", name="People", exact=True).click()
        page.get_by_label("Name, username or extension").fill(a.peer)
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#people-results")).to_contain_text(f"({a.peer})")
        page.get_by_role("button", name=f"Add {a.peer}").click()
        expect(page.locator("#people-results")).to_contain_text("Added to your contacts")
        page.screenshot(path=f"{a.shots}/people.png")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Contacts", exact=True).click()
        contact = page.locator(f'li.contact[data-username="{a.peer}"]')
        badge = contact.locator(".presence")
        expect(badge).to_have_text("Offline")
        ask(a.sync, "online")
        expect(badge).to_have_text("Available", timeout=20000)
        page.screenshot(path=f"{a.shots}/contacts.png")

        # chat both ways with bob's baresip
        contact.get_by_role("link", name=f"Message {a.peer}").click()
        expect(page.get_by_role("heading", name=f"Chat with {a.peer}")).to_be_visible()
        page.get_by_label("Message", exact=True).fill(FROM_THE_APP)
        page.get_by_role("button", name="Send").click()
        mine = page.locator(".message.mine", has_text=FROM_THE_APP)
        expect(mine).to_be_visible()
        ask(a.sync, "chat")
        expect(page.locator(".message", has_text=FROM_BARESIP)).to_be_visible(timeout=20000)
        expect(mine.locator(".state")).to_have_text("delivered", timeout=20000)
        # a voice message, recorded from the fake microphone: bob's phone gets a link to it
        record = page.get_by_role("button", name="Record a voice message")
        record.click()
        stop = page.get_by_role("button", name="Stop and send")
        expect(stop).to_be_visible()
        page.wait_for_timeout(2500)
        stop.click()
        expect(page.get_by_role("status")).to_contain_text("Voice message sent")
        expect(page.locator(".message.mine audio")).to_have_count(1)
        ask(a.sync, "voice-link")
        page.screenshot(path=f"{a.shots}/chat.png")
        nav = page.get_by_role("navigation", name="Main")
        nav.get_by_role("link", name="Contacts", exact=True).click()
        expect(badge).to_have_text("Available")

        # forwarding changed in the page takes effect on the next SIP call
        nav.get_by_role("link", name="Account", exact=True).click()
        page.get_by_label("Forward every call to").fill(a.peer)
        page.get_by_role("button", name="Save call settings").click()
        expect(page.get_by_role("status")).to_contain_text("Call settings saved")
        ask(a.sync, "forwarded-call", timeout=90)
        page.reload()
        expect(page.locator("#calls")).to_contain_text(a.admin)
        page.get_by_label("Forward every call to").fill("")
        page.get_by_role("button", name="Save call settings").click()
        expect(page.get_by_role("status")).to_contain_text("Call settings saved")

        # a voicemail left by bob's baresip plays in the page
        ask(a.sync, "voicemail", timeout=120)
        nav.get_by_role("link", name="Voicemail", exact=True).click()
        message = page.locator(".voicemail li").first
        expect(message).to_contain_text(a.peer, timeout=20000)
        audio = message.locator("audio")
        duration = audio.evaluate(
            """a => new Promise((ok, no) => {
                a.preload = 'auto';
                if (a.readyState >= 1) return ok(a.duration);
                a.addEventListener('loadedmetadata', () => ok(a.duration));
                a.addEventListener('error', () => no(new Error('the recording did not load')));
                a.load();
            })"""
        )
        check(duration > 1.0, f"the recording lasts {duration} s")
        audio.evaluate("a => a.play()")
        page.wait_for_function("() => document.querySelector('.voicemail audio').currentTime > 0.5", timeout=10000)
        page.screenshot(path=f"{a.shots}/voicemail.png")
        message.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator(".voicemail li").first).to_contain_text("saved")
        # a greeting recorded in the browser (from the fake microphone), stored as WAV
        expect(page.locator("#greeting")).to_contain_text("default greeting")
        page.get_by_role("button", name="Record a greeting").click()
        page.wait_for_timeout(2000)
        page.get_by_role("button", name="Stop and save the greeting").click()
        expect(page.get_by_role("status")).to_contain_text("Greeting saved")
        greeting = page.locator("#greeting audio")
        length = greeting.evaluate(
            """a => new Promise((ok, no) => {
                if (a.readyState >= 1) return ok(a.duration);
                a.addEventListener('loadedmetadata', () => ok(a.duration));
                a.addEventListener('error', () => no(new Error('the greeting did not load')));
            })"""
        )
        check(1.0 < length < 4.0, f"the recorded greeting lasts {length} s")

        # a SIP phone of alice's registers; the account page signs it out
        ask(a.sync, "alice-phone")
        nav.get_by_role("link", name="Account", exact=True).click()
        # This page's own phone is a device too; the SIP phone is the other one.
        device = page.locator("#devices li").filter(has_not_text="Sambung web app")
        expect(device).to_have_count(1)
        device.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("status")).to_contain_text("is signed out")
        expect(device).to_have_count(0)
        page.wait_for_timeout(1000)
        page.reload()
        expect(page.locator("#devices")).to_contain_text("No device is registered")

        nav.get_by_role("link", name="Contacts", exact=True).click()
        ask(a.sync, "offline")
        expect(badge).to_have_text("Offline", timeout=20000)
        # a nickname
        contact.get_by_text("Edit").click()
        contact.get_by_role("textbox", name="Nickname").fill("Bobby")
        contact.get_by_role("button", name="Save").click()
        expect(page.locator(f'li.contact[data-username="{a.peer}"] .name')).to_have_text("Bobby")

        # 4. a write without the CSRF token, from the signed-in page
        forged = page.evaluate(
            """async () => {
                const r = await fetch('/api/v1/me/tokens', { method: 'POST', credentials: 'same-origin',
                    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'forged' }) });
                return { status: r.status, type: r.headers.get('Content-Type'), body: await r.json() };
            }"""
        )
        check(forged["status"] == 403 and forged["body"]["code"] == "csrf", f"CSRF attempt got {forged}")
        check(forged["type"] == "application/problem+json", f"CSRF answer type {forged['type']}")

        # 5. sign out, a wrong password, sign in
        page.get_by_role("button", name="Sign out", exact=True).click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.get_by_label("Username").fill(a.user)
        page.get_by_label("Password", exact=True).fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("wrong username or password")
        page.screenshot(path=f"{a.shots}/wrong-password.png")
        page.get_by_label("Password", exact=True).fill(a.password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Contacts")).to_be_visible()
        expect(page.locator("#contacts")).to_contain_text("Bobby")

        # 6. the session ends under the page
        cookies = [c for c in context.cookies() if c["name"] == "__Host-sambung-session"]
        check(len(cookies) == 1, f"session cookie: {context.cookies()}")
        cookie = cookies[0]
        check(cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict", f"cookie flags: {cookie}")
        context.clear_cookies()
        context.add_cookies([{**cookie, "value": "an-expired-session"}])
        page.get_by_role("navigation", name="Main").get_by_role("link", name="People", exact=True).click()
        page.get_by_label("Name, username or extension").fill(a.peer)
        page.get_by_role("button", name="Search").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        expect(page.get_by_role("status")).to_contain_text("Your session has ended")
        page.screenshot(path=f"{a.shots}/session-ended.png")

        # 7. administration
        page.get_by_label("Username").fill(a.admin)
        page.get_by_label("Password", exact=True).fill(a.admin_password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Administration", exact=True)).to_be_visible()
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Administration", exact=True).click()
        expect(page.locator("#users")).to_contain_text(a.user)
        # the queue's figures, with alice logged out; every recording
        expect(page.locator("#queues")).to_contain_text("support (longest-idle)")
        expect(page.locator("#queues")).to_contain_text(f"{a.user}: logged-out")
        expect(page.locator("#all-recordings")).to_contain_text(f"bob → {a.user}")
        form = page.get_by_role("form", name="New account")
        form.get_by_label("Username").fill("carol")
        form.get_by_label("Password", exact=True).fill(CAROL_PASSWORD)
        form.get_by_label("Extension").fill("203")
        form.get_by_role("button", name="Create account").click()
        expect(page.get_by_role("status")).to_contain_text("Account carol made")
        expect(page.locator("#users")).to_contain_text("carol")
        page.get_by_role("button", name="Invite").click()
        link = page.locator(".invitation-link").inner_text()
        check("#/signup?invitation=" in link, f"invitation link {link!r}")
        page.screenshot(path=f"{a.shots}/admin.png", full_page=True)

        # two browsers exchange a voice message: carol records one for alice, who plays it
        def signed_in(username, password):
            ctx = browser.new_context(ignore_https_errors=True)
            p = ctx.new_page()
            p.set_default_timeout(15000)
            p.goto(f"{url}/#/signin")
            p.get_by_label("Username").fill(username)
            p.get_by_label("Password", exact=True).fill(password)
            p.get_by_role("button", name="Sign in").click()
            expect(p.get_by_role("heading", name="Contacts")).to_be_visible()
            return ctx, p
        carol_ctx, carol = signed_in("carol", CAROL_PASSWORD)
        alice_ctx, alice = signed_in(a.user, a.password)
        alice.goto(f"{url}/#/chat?with=carol")
        expect(alice.get_by_role("heading", name="Chat with carol")).to_be_visible()
        carol.goto(f"{url}/#/chat?with={a.user}")
        carol.get_by_role("button", name="Record a voice message").click()
        carol.wait_for_timeout(2500)
        carol.get_by_role("button", name="Stop and send").click()
        expect(carol.get_by_role("status")).to_contain_text("Voice message sent")
        heard = alice.locator(".message:not(.mine) audio")
        expect(heard).to_have_count(1, timeout=20000)
        heard.evaluate("a => a.play()")
        alice.wait_for_function(
            "() => document.querySelector('.message:not(.mine) audio').currentTime > 0.5", timeout=15000)
        alice.screenshot(path=f"{a.shots}/voice-message.png")
        carol_ctx.close()
        alice_ctx.close()

        # 8. a phone-sized screen; labels
        phone = browser.new_context(ignore_https_errors=True, viewport={"width": 390, "height": 844},
                                    is_mobile=True, has_touch=True)
        small = phone.new_page()
        small.goto(f"{url}/#/signup")
        expect(small.get_by_role("heading", name="Sign up")).to_be_visible()
        expect(small.get_by_role("button", name="Sign out", exact=True)).to_be_hidden()
        overflow = small.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        check(overflow <= 0, f"the sign-up page is {overflow}px wider than a phone's screen")
        small.screenshot(path=f"{a.shots}/phone-sign-up.png", full_page=True)
        unlabelled = page.evaluate(
            "[...document.querySelectorAll('input')].filter(i => i.labels.length === 0).map(i => i.name)"
        )
        check(unlabelled == [], f"inputs without a label: {unlabelled}")
        manifest = small.evaluate("fetch('/manifest.webmanifest').then(r => r.json())")
        check(manifest["display"] == "standalone" and manifest["icons"], f"manifest {manifest}")
        phone.close()

        # 9. sign-up closed
        closed = browser.new_context(ignore_https_errors=True)
        cpage = closed.new_page()
        cpage.goto(f"{a.closed_url.rstrip('/')}/#/signup")
        expect(cpage.locator("main")).to_contain_text("Sign-up is closed on this server")
        cpage.screenshot(path=f"{a.shots}/sign-up-closed.png")
        refused = cpage.evaluate(
            """async () => {
                const r = await fetch('/api/v1/signup', { method: 'POST', headers: { 'Content-Type': 'application/json' },
                    body: JSON.stringify({ username: 'mallory', password: 'mallory secret 1' }) });
                return { status: r.status, body: await r.json() };
            }"""
        )
        check(refused["status"] == 403 and refused["body"]["code"] == "signup_closed", f"closed sign-up got {refused}")
        closed.close()

        # 10. the OpenAPI document
        doc = outside.get(f"{url}/api/v1/openapi.json")
        check(doc.status == 200, f"openapi.json: {doc.status}")
        spec = doc.json()
        check(spec["openapi"].startswith("3.1"), f"openapi version {spec['openapi']}")
        validate(spec)

        check(not errors, f"errors in the page: {errors}")
        outside.dispose()
        browser.close()
    print(json.dumps({"ok": True, "shots": sorted(os.listdir(a.shots))}))


if __name__ == "__main__":
    main()
