#!/usr/bin/env python3
"""Calls in the app, in a real browser: Debian's Chromium, headless, driven by Playwright for
Python. Run by crates/server/tests/browser_calls.rs against a running `sambung serve`; exits
non-zero with a message on the first failed check.

  1. signs in as --user; the app's phone registers over the app's SIP WebSocket ("Phone ready");
  2. calls --listener (a baresip without video that answers by itself) from the Phone view; the call connects,
     the page's fake microphone (--microphone, speech) is heard by the baresip (the test scores
     it), and the page receives the baresip's audio (getStats, shown in the call panel); the
     page's keypad sends keys; the page hangs up;
  3. asks the test (a file in --sync) to have --peer's baresip call --user with video (VP8 from
     its fake camera): the page rings with the caller's name ("Video call"), answers with video,
     decodes the baresip's video and receives its audio, and the baresip hangs up;
  4. the page calls its own mailbox (*97) and moves through its menu with the keypad: 2 (saved
     messages: none), then * (goodbye), and the mailbox hangs up;
  5. a second person (--other) signs in in another browser profile; --user's page makes a video
     call to them, their page rings ("Video call") and answers with video: each page decodes
     the other's video and hears the other. Chromium's fake camera plays a Y4M file this
     script writes (bright above, dark below, a bar moving across): each page shows the file's
     size and picture, not Chromium's own test pattern;
  6. while in that call, --peer's baresip calls --user: a second call waits in the page, which
     holds the first (the other page is told it is held) and answers; the baresip hangs up and
     the page resumes the first call;
  7. --user's page calls --peer's baresip again and transfers it to --other (blind, REFER): the
     baresip calls --other's page, which rings with its name and answers; --user's page says
     the call was transferred;
  8. click-to-call through the API for --user: the page rings, is answered, is asked (REFER)
     to call --peer and does; the baresip answers and the page hears it;
  9. the page makes a video call to --video-phone (SIPp, which takes keyframe requests only by
     SIP INFO): the relay asks it for a keyframe by INFO (the test reads SIPp's trace), and its
     own INFO picture_fast_update reaches the page's camera as an RTCP keyframe request
     (pliCount in getStats); the page hangs up;
 10. the page calls --peer's baresip without video, then turns its camera on in the middle of
     the call (a re-INVITE): the baresip takes the page's video (the test reads its log) and
     sends its own, which the page shows; the camera goes off again and the page stops
     sending video; the page hangs up.
"""

import argparse
import os
import time

from playwright.sync_api import expect, sync_playwright

from common import CHROMIUM_FLAGS as COMMON_FLAGS, ask, check, fail, sign_in

# The relay's only candidate is on 127.0.0.1 (RFC 8445 leaves loopback out).
CHROMIUM_FLAGS = COMMON_FLAGS + ["--allow-loopback-in-peer-connection"]


# The fake camera's file (YUV4MPEG2, 4:2:0): CAMERA_SIZE at 15 frames a second, bright in its
# upper half and dark in its lower one, with a grey bar moving across so that the encoder has
# motion to code. Chromium plays the file once from when a call opens the camera, without
# looping, so it lasts longer than any video call of this script (20 s).
CAMERA_SIZE = (320, 240)
BRIGHT, DARK = 210, 50


def write_camera(path, frames=300):
    width, height = CAMERA_SIZE
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F15:1 Ip A1:1 C420jpeg\n".encode())
        chroma = bytes([128]) * ((width // 2) * (height // 2) * 2)
        for n in range(frames):
            start = (n * 8) % (width - 16)
            rows = []
            for level in (BRIGHT, DARK):
                row = bytearray([level]) * width
                row[start:start + 16] = bytes([128]) * 16
                rows.append(bytes(row) * (height // 2))
            out.write(b"FRAME\n" + rows[0] + rows[1] + chroma)


# The mean brightness of the upper and lower quarters of the remote video's picture.
PICTURE = """() => {
  const v = document.querySelector('.remote-video');
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  const mean = (from, to) => {
    let sum = 0, n = 0;
    for (let y = from; y < to; y += 2) for (let x = 0; x < c.width; x += 2) {
      const i = (y * c.width + x) * 4; sum += (d[i] + d[i + 1] + d[i + 2]) / 3; n += 1;
    }
    return n ? sum / n : 0;
  };
  return [mean(0, Math.floor(c.height / 4)), mean(Math.floor(c.height * 3 / 4), c.height)];
}"""


# Frames the page's remote video has shown (0 without one).
FRAMES = "() => { const v = document.querySelector('.remote-video'); return v && v.videoWidth > 0 ? v.getVideoPlaybackQuality().totalVideoFrames : 0; }"


def received(page):
    value = page.locator(".call-quality").get_attribute("data-received")
    return int(value or "0")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--peer", required=True)
    ap.add_argument("--listener", required=True, help="the baresip (audio only) the first call goes to")
    ap.add_argument("--other", required=True)
    ap.add_argument("--other-password", required=True)
    ap.add_argument("--video-phone", required=True)
    ap.add_argument("--microphone", required=True, help="a WAV file the browser's fake microphone says once")
    ap.add_argument("--talk", type=float, required=True, help="seconds to stay in the first call")
    ap.add_argument("--sync", required=True)
    ap.add_argument("--shots", required=True)
    ap.add_argument("--chromium", default=os.environ.get("SAMBUNG_CHROMIUM", "/usr/bin/chromium"))
    a = ap.parse_args()
    os.makedirs(a.shots, exist_ok=True)
    url = a.url.rstrip("/")

    with sync_playwright() as pw:
        microphone = [f"--use-file-for-fake-audio-capture={a.microphone}%noloop"]
        camera_file = os.path.join(a.sync, "camera.y4m")
        write_camera(camera_file)
        camera = [f"--use-file-for-fake-video-capture={camera_file}"]
        browser = pw.chromium.launch(executable_path=a.chromium, headless=True,
                                     args=CHROMIUM_FLAGS + microphone + camera)
        context = browser.new_context(ignore_https_errors=True, viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.set_default_timeout(20000)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        console = []
        page.on("console", lambda m: console.append(m.text))

        # 1. sign in; the phone registers
        sign_in(page, url, a.user, a.password)
        page.screenshot(path=f"{a.shots}/phone.png")
        # The test measures what the relay carries: the browser's own clean-up of the fake
        # microphone (level control, noise suppression) is turned off, as a person with a
        # headset may.
        page.get_by_label("Clean up my microphone").uncheck()

        # 2. the page calls the listener's baresip, which answers by itself
        page.get_by_label("Number or name").fill(a.listener)
        page.get_by_role("button", name="Call", exact=True).click()
        call = page.locator(".call")
        expect(call).to_have_attribute("data-call-state", "connected")
        expect(page.locator(".call-title")).to_have_text(f"In call with {a.listener}")
        started = time.time()
        page.wait_for_function("() => Number(document.querySelector('.call-quality')?.dataset.received || 0) > 50")
        page.screenshot(path=f"{a.shots}/in-call.png")
        time.sleep(max(0.0, a.talk - (time.time() - started)))
        # The keypad sends RFC 4733 events (the relay reads them), once the speech is over:
        # while a key sounds the browser sends events instead of audio, and a key pressed during
        # the speech took the start of it away in some runs (the speech starts 3 s after the
        # call asks for the microphone, the keys followed the call's connection).
        page.get_by_role("button", name="Keypad").click()
        for key in "12#":
            page.get_by_role("group", name="Keypad").get_by_role("button", name=key, exact=True).click()
            time.sleep(0.3)
        got = received(page)
        check(got > 100, f"the page received {got} packets of the baresip's audio")
        rtt = page.locator(".call-quality").get_attribute("data-rtt")
        print(f"first call: the page received {got} packets; round trip {rtt} ms")
        page.get_by_role("button", name="Hang up").click()
        expect(call).to_have_attribute("data-call-state", "ended")
        page.get_by_role("button", name="Close").click()

        # 3. the baresip calls the page
        ask(a.sync, "peer-calls")
        expect(page.locator(".call-title")).to_have_text(f"{a.peer} is calling")
        expect(page.locator(".call-status")).to_have_text("Video call")
        page.screenshot(path=f"{a.shots}/incoming.png")
        page.get_by_role("button", name="Answer with video").click()
        expect(call).to_have_attribute("data-call-state", "connected")
        page.wait_for_function("() => Number(document.querySelector('.call-quality')?.dataset.received || 0) > 50")
        page.wait_for_function(f"() => ({FRAMES})() > 30", timeout=30000)
        size = page.evaluate("() => { const v = document.querySelector('.remote-video'); return [v.videoWidth, v.videoHeight]; }")
        got = received(page)
        print(f"second call: the page received {got} packets and shows {page.evaluate(FRAMES)} frames of {a.peer}'s video at {size[0]}x{size[1]}")
        check(size == [352, 288], f"the baresip's video is 352x288, the page shows {size}")
        time.sleep(2)
        ask(a.sync, "peer-hangs-up")
        expect(call).to_have_attribute("data-call-state", "ended")
        expect(page.locator(".call-status")).to_have_text("The other side hung up")

        page.get_by_role("button", name="Close").click()
        # The microphone and camera can be chosen: once the page was allowed both, the Phone
        # view lists Chromium's fake devices by name.
        page.get_by_role("link", name="Phone").click()
        expect(page.locator("#microphone option")).not_to_have_count(1)
        expect(page.locator("#camera option")).not_to_have_count(1)
        print("devices:", page.locator("#microphone option").all_inner_texts(), page.locator("#camera option").all_inner_texts())

        # 4. the mailbox menu, driven by the page's keypad
        page.get_by_label("Number or name").fill("*97")
        page.get_by_role("button", name="Call", exact=True).click()
        expect(call).to_have_attribute("data-call-state", "connected")
        page.get_by_role("button", name="Keypad").click()
        keypad = page.get_by_role("group", name="Keypad")
        time.sleep(4)  # the announcement of the messages, then the menu
        keypad.get_by_role("button", name="2", exact=True).click()
        time.sleep(3)  # "no saved messages", then the menu again
        keypad.get_by_role("button", name="*", exact=True).click()
        expect(call).to_have_attribute("data-call-state", "ended", timeout=20000)
        expect(page.locator(".call-status")).to_have_text("The other side hung up")
        page.get_by_role("button", name="Close").click()

        # 5. a video call between two pages
        other_context = browser.new_context(ignore_https_errors=True, viewport={"width": 1000, "height": 800})
        other = other_context.new_page()
        other.set_default_timeout(20000)
        other.on("pageerror", lambda e: errors.append(f"{a.other}: {e}"))
        sign_in(other, url, a.other, a.other_password)
        page.get_by_label("Number or name").fill(a.other)
        page.get_by_role("button", name="Video call").click()
        expect(other.locator(".call-title")).to_have_text(f"{a.user} is calling")
        expect(other.locator(".call-status")).to_have_text("Video call")
        other.get_by_role("button", name="Answer with video").click()
        for p in (page, other):
            expect(p.locator(".call")).to_have_attribute("data-call-state", "connected")
        for p in (page, other):
            p.wait_for_function(f"() => ({FRAMES})() > 30", timeout=30000)
            p.wait_for_function("() => Number(document.querySelector('.call-quality')?.dataset.received || 0) > 50")
        frames = [p.evaluate(FRAMES) for p in (page, other)]
        for p, who in ((page, a.user), (other, a.other)):
            size = p.evaluate("() => { const v = document.querySelector('.remote-video'); return [v.videoWidth, v.videoHeight]; }")
            upper, lower = p.evaluate(PICTURE)
            print(f"video call: {who} sees {size[0]}x{size[1]}, brightness {upper:.0f} above and {lower:.0f} below")
            check(tuple(size) == CAMERA_SIZE, f"{who}'s page shows the other's camera file at {size}, not {CAMERA_SIZE}")
            check(upper > BRIGHT - 30 and lower < DARK + 30,
                  f"{who}'s page shows the camera file's picture: brightness {upper:.0f} above, {lower:.0f} below")
        print(f"video call: frames shown {frames}")
        page.screenshot(path=f"{a.shots}/video-call.png")

        # 6. a call waiting: hold the first call, answer, then resume
        with_other = page.locator(f'.call[data-call-with="{a.other}"]')
        with_peer = page.locator(f'.call[data-call-with="{a.peer}"]')
        ask(a.sync, "peer-calls-again")
        expect(with_peer.locator(".call-title")).to_have_text(f"{a.peer} is calling")
        with_peer.get_by_role("button", name="Hold and answer", exact=True).click()
        expect(with_other).to_have_attribute("data-on-hold", "true")
        expect(other.locator(".call-status")).to_have_text("Held by the other side")
        expect(with_peer).to_have_attribute("data-call-state", "connected")
        page.wait_for_function(
            f"() => Number(document.querySelector('.call[data-call-with=\"{a.peer}\"] .call-quality')?.dataset.received || 0) > 50")
        page.screenshot(path=f"{a.shots}/call-waiting.png")
        ask(a.sync, "peer-hangs-up-again")
        expect(with_peer).to_have_attribute("data-call-state", "ended")
        with_other.get_by_role("button", name="Resume").click()
        expect(with_other).to_have_attribute("data-on-hold", "false")
        expect(other.locator(".call-status")).not_to_have_text("Held by the other side")
        print("call waiting: held the video call, talked with the baresip, resumed")
        with_other.get_by_role("button", name="Hang up").click()
        expect(other.locator(".call")).to_have_attribute("data-call-state", "ended")
        for p in (page, other):
            while p.get_by_role("button", name="Close").count():
                p.get_by_role("button", name="Close").first.click()

        # 7. a blind transfer from the page: the baresip is sent on to the other page
        page.get_by_label("Number or name").fill(a.peer)
        page.get_by_role("button", name="Call", exact=True).click()
        expect(with_peer).to_have_attribute("data-call-state", "connected")
        with_peer.get_by_role("button", name="Transfer").click()
        with_peer.get_by_label("Transfer to").fill(a.other)
        with_peer.get_by_role("button", name="Send on").click()
        transferred_in = other.locator(f'.call[data-call-with="{a.peer}"]')
        expect(transferred_in.locator(".call-title")).to_have_text(f"{a.peer} is calling")
        transferred_in.get_by_role("button", name="Answer", exact=True).click()
        expect(transferred_in).to_have_attribute("data-call-state", "connected")
        other.wait_for_function(
            f"() => Number(document.querySelector('.call[data-call-with=\"{a.peer}\"] .call-quality')?.dataset.received || 0) > 50")
        expect(with_peer).to_have_attribute("data-call-state", "ended")
        expect(with_peer.locator(".call-status")).to_have_text("Transferred")
        print(f"transfer: {a.peer} sent on from {a.user}'s page to {a.other}'s, who hears them")
        ask(a.sync, "peer-hangs-up-3")
        expect(transferred_in).to_have_attribute("data-call-state", "ended")

        # 8. click-to-call: the API rings the page (an INVITE without an offer); answered, the
        #    page is asked to call the baresip, and does
        while page.get_by_role("button", name="Close").count():
            page.get_by_role("button", name="Close").first.click()
        session = page.request.get(f"{url}/api/v1/session").json()
        made = page.request.post(f"{url}/api/v1/calls/originate", data={"to": a.peer},
                                 headers={"X-CSRF-Token": session["csrf_token"]})
        check(made.status == 202, f"click-to-call through the API: {made.status} {made.text()}")
        ringing = page.locator('.call[data-call-state="ringing"]')
        expect(ringing).to_have_count(1)
        ringing.get_by_role("button", name="Answer", exact=True).click()
        onward = page.locator(f'.call[data-call-with="{a.peer}"]')
        expect(onward).to_have_attribute("data-call-state", "connected")
        page.wait_for_function(
            f"() => Number(document.querySelector('.call[data-call-with=\"{a.peer}\"] .call-quality')?.dataset.received || 0) > 50")
        print(f"click-to-call: {a.user}'s page rang, answered, and called {a.peer}, who answered")
        # The page hangs up (the baresip may hold more than one call by now: its /hangup picks one).
        onward.get_by_role("button", name="Hang up").click()
        expect(onward).to_have_attribute("data-call-state", "ended")

        # 9. a video call to a phone that asks for keyframes by SIP INFO
        while page.get_by_role("button", name="Close").count():
            page.get_by_role("button", name="Close").first.click()
        ask(a.sync, "video-phone")
        page.get_by_label("Number or name").fill(a.video_phone)
        page.get_by_role("button", name="Video call").click()
        with_phone = page.locator(f'.call[data-call-with="{a.video_phone}"]')
        expect(with_phone).to_have_attribute("data-call-state", "connected")
        page.wait_for_function(
            f"() => Number(document.querySelector('.call[data-call-with=\"{a.video_phone}\"] .call-quality')?.dataset.keyframesAsked || 0) > 0",
            timeout=15000)
        asked = with_phone.locator(".call-quality").get_attribute("data-keyframes-asked")
        print(f"video phone: {a.video_phone}'s INFO picture_fast_update reached the page's camera ({asked} keyframe requests)")
        with_phone.get_by_role("button", name="Hang up").click()
        expect(with_phone).to_have_attribute("data-call-state", "ended")

        # 10. video turned on and off in the middle of an audio call
        while page.get_by_role("button", name="Close").count():
            page.get_by_role("button", name="Close").first.click()
        page.get_by_label("Number or name").fill(a.peer)
        page.get_by_role("button", name="Call", exact=True).click()
        expect(with_peer).to_have_attribute("data-call-state", "connected")
        check(page.evaluate(FRAMES) == 0, "an audio call shows no video")
        with_peer.get_by_role("button", name="Camera on").click()
        expect(with_peer).to_have_attribute("data-camera", "true")
        page.wait_for_function(f"() => ({FRAMES})() > 30", timeout=30000)
        sent = lambda: int(with_peer.locator(".call-quality").get_attribute("data-video-sent") or "0")
        page.wait_for_function(
            f"() => Number(document.querySelector('.call[data-call-with=\"{a.peer}\"] .call-quality')?.dataset.videoSent || 0) > 100")
        print(f"camera on mid-call: the page shows {page.evaluate(FRAMES)} frames of {a.peer}'s video and sent {sent()} video packets")
        with_peer.get_by_role("button", name="Camera off").click()
        expect(with_peer).to_have_attribute("data-camera", "false")
        time.sleep(2.5)  # the statistics are read once a second
        before = sent()
        time.sleep(2.5)
        after = sent()
        print(f"camera off mid-call: video packets sent {before} then {after}")
        check(after == before, f"the page still sends video after its camera went off ({before} then {after})")
        with_peer.get_by_role("button", name="Hang up").click()
        expect(with_peer).to_have_attribute("data-call-state", "ended")

        check(not errors, f"errors in the page: {errors}")
        browser.close()
    print("OK")


if __name__ == "__main__":
    main()
