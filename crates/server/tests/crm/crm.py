#!/usr/bin/env python3
"""A small CRM stand-in for crates/server/tests/webhooks.rs: an HTTP server that receives
Sambung's webhooks and checks each one as a real receiver would (Standard Webhooks: the HMAC-SHA256
signature over "id.timestamp.body" with the secret's key, a timestamp within five minutes, an id
not processed before), and a client of Sambung's API. Exits non-zero with a message on the first
failed check.

What it does:
  1. signs in as --admin, makes an API token, and with it a webhook for every account's events
     (to its own server on 127.0.0.1, which only an administrator's webhook may reach);
     signs in as --user and makes a webhook of its own to the same loopback address;
  2. answers the first delivery of call.answered with 503, every other one with 204;
  3. asks the test (a file in --sync) to make a call from --user to --callee with SIPp;
  4. waits for call.started, call.ringing, call.answered (again after its retry) and call.ended of
     that call and device.registered of --callee, every one validly signed; checks the payloads;
  5. shows that a forged body, a wrong key, a stale timestamp and a replay are each detected: it
     resends a captured delivery to itself (refused: the id was processed), and asks Sambung to
     replay one (a new signature, the same id: recognised and not processed twice);
  6. reads the delivery log: call.answered delivered on its second attempt, the retry recorded;
     the user's webhook never reached loopback (refused as not public); exports the call
     records with a token that may only read them: the call has the relay's figures of its
     audio (packets, loss, jitter, estimated MOS), in JSON and CSV;
  7. /metrics needs an administrator, parses with the Prometheus client's own text parser and
     counts the call; /healthz and /readyz answer;
  8. click-to-call: asks the test for three baresips (--user, --callee and --third, answering
     by themselves), then with a token that may only control calls starts a call from --user to
     --callee through the API: --user's baresip rings and answers, is asked (REFER) to call
     --callee, whose baresip answers; originate.ended says it connected. A user may not ring
     another's phone, and an unknown target is refused;
  9. transfer: through the API --user is sent on to --third: its baresip is asked (REFER) to
     call --third, who answers; transfer.ended says it connected and the first call ended as
     transferred; the CRM hangs the new call up through the API; both calls' records have the
     relay's figures of both sides' audio.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.parser import text_string_to_metric_families

TOLERANCE = 300
INSECURE = ssl.create_default_context()
INSECURE.check_hostname = False
INSECURE.verify_mode = ssl.CERT_NONE


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def verify(secret, msg_id, timestamp, body, header, now=None):
    """Standard Webhooks verification, written from the specification."""
    now = time.time() if now is None else now
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > TOLERANCE:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    for part in header.split(" "):
        version, _, sig = part.partition(",")
        if version == "v1" and hmac.compare_digest(base64.b64decode(sig), expected):
            return True
    return False


class Crm:
    def __init__(self):
        self.lock = threading.Lock()
        self.secret = None
        self.received = []  # (headers, body) of every request, valid or not
        self.processed = {}  # webhook-id -> payload
        self.duplicates = []  # ids received again after they were processed
        self.refused_once = set()  # event types whose first delivery got 503

    def handle(self, headers, body):
        msg_id = headers.get("webhook-id", "")
        with self.lock:
            self.received.append((dict(headers), body))
            if not verify(self.secret, msg_id, headers.get("webhook-timestamp", ""), body,
                          headers.get("webhook-signature", "")):
                return 401
            if msg_id in self.processed:
                self.duplicates.append(msg_id)
                return 204
            event = json.loads(body)
            if event["type"] == "call.answered" and "call.answered" not in self.refused_once:
                self.refused_once.add("call.answered")
                return 503
            self.processed[msg_id] = event
            return 204

    def events(self, kind):
        with self.lock:
            return [e for e in self.processed.values() if e["type"] == kind]


def serve(crm):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = crm.handle({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Api:
    def __init__(self, url):
        self.url = url
        self.token = None
        self.cookie = None
        self.csrf = None

    def call(self, method, path, body=None, auth=True, raw=False):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if auth and self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        elif auth and self.cookie:
            request.add_header("Cookie", self.cookie)
            request.add_header("X-CSRF-Token", self.csrf)
        try:
            with urllib.request.urlopen(request, context=INSECURE, timeout=20) as answer:
                text = answer.read()
                return answer.status, (text.decode() if raw else (json.loads(text) if text else None))
        except urllib.error.HTTPError as e:
            text = e.read()
            return e.code, (text.decode() if raw else (json.loads(text) if text else None))

    def sign_in(self, username, password):
        request = urllib.request.Request(self.url + "/api/v1/session", method="POST",
                                         data=json.dumps({"username": username, "password": password}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, context=INSECURE, timeout=20) as answer:
            check(answer.status == 200, f"sign-in as {username}: {answer.status}")
            self.cookie = answer.headers["Set-Cookie"].split(";")[0]
            self.csrf = json.loads(answer.read())["csrf_token"]


def ask(sync, what, timeout=120):
    open(os.path.join(sync, f"want-{what}"), "w").close()
    deadline = time.time() + timeout
    while not os.path.exists(os.path.join(sync, what)):
        if time.time() > deadline:
            fail(f"the test did not make {what} happen within {timeout} s")
        time.sleep(0.05)


def wait_for(what, condition, timeout=30):
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            fail(f"no {what} within {timeout} s")
        time.sleep(0.1)


def main():
    ap = argparse.ArgumentParser()
    for name in ["url", "admin", "admin-password", "user", "password", "callee", "third", "sync"]:
        ap.add_argument(f"--{name}", required=True)
    a = ap.parse_args()
    crm = Crm()
    server = serve(crm)
    hook_url = f"http://127.0.0.1:{server.server_address[1]}/sambung"

    # 1. an administrator's token, and with it a webhook for every account
    admin = Api(a.url)
    admin.sign_in(a.admin, a.admin_password)
    status, made = admin.call("POST", "/api/v1/me/tokens", {"name": "crm"})
    check(status == 201, f"token: {status} {made}")
    admin.token = made["secret"]
    status, hook = admin.call("POST", "/api/v1/webhooks", {
        "url": hook_url, "all_accounts": True, "description": "the CRM",
        "events": ["call.started", "call.ringing", "call.answered", "call.ended", "device.registered",
                   "originate.ended", "transfer.ended"],
    })
    check(status == 201 and hook["secret"].startswith("whsec_"), f"webhook: {status} {hook}")
    crm.secret = hook["secret"]
    status, listed = admin.call("GET", f"/api/v1/webhooks/{hook['id']}")
    check(status == 200 and "secret" not in listed, f"the secret is shown once: {listed}")
    status, bad = admin.call("POST", "/api/v1/webhooks", {"url": hook_url, "events": ["call.exploded"]})
    check(status == 422 and bad["code"] == "invalid_value", f"unknown event type: {status} {bad}")
    # a user's own webhook: no every-account events, and loopback is out of its reach
    user = Api(a.url)
    user.sign_in(a.user, a.password)
    status, refused = user.call("POST", "/api/v1/webhooks", {"url": hook_url, "events": ["call.ended"],
                                                             "all_accounts": True})
    check(status == 403 and refused["code"] == "not_admin", f"all_accounts by a user: {status} {refused}")
    status, own = user.call("POST", "/api/v1/webhooks", {"url": hook_url, "events": ["call.started"]})
    check(status == 201, f"the user's webhook: {status} {own}")

    # 3. the call
    ask(a.sync, "call")

    # 4. the events of that call, each validly signed
    wait_for("call.ended", lambda: crm.events("call.ended"), timeout=60)
    wait_for("call.answered after its retry", lambda: crm.events("call.answered"), timeout=30)
    started = crm.events("call.started")
    check(len(started) == 1, f"one call.started: {started}")
    call = started[0]["data"]
    check(call["caller"] == a.user and call["callee"] == a.callee, f"call.started data {call}")
    for kind in ["call.ringing", "call.answered", "call.ended"]:
        events = crm.events(kind)
        check(len(events) == 1 and events[0]["data"]["call_id"] == call["call_id"], f"{kind}: {events}")
    ended = crm.events("call.ended")[0]
    check(ended["data"]["result"] == "answered" and ended["data"]["cause_code"] == 200, f"call.ended {ended}")
    check(ended["timestamp"].endswith("Z") and "T" in ended["timestamp"], f"timestamp {ended['timestamp']}")
    registered = [e for e in crm.events("device.registered") if e["data"]["user"] == a.callee]
    check(registered, f"device.registered of {a.callee}: {crm.events('device.registered')}")
    with crm.lock:
        received = list(crm.received)
    for headers, body in received:
        check(verify(crm.secret, headers["webhook-id"], headers["webhook-timestamp"], body,
                     headers["webhook-signature"]), f"a delivery that does not verify: {headers}")
    answered = [(h, b) for h, b in received if json.loads(b)["type"] == "call.answered"]
    check(len(answered) == 2 and answered[0][0]["webhook-id"] == answered[1][0]["webhook-id"],
          f"call.answered twice, with the same id: {[h for h, _ in answered]}")

    # 5. forgeries and replays
    headers, body = received[0]
    msg_id, ts, sig = headers["webhook-id"], headers["webhook-timestamp"], headers["webhook-signature"]
    check(not verify(crm.secret, msg_id, ts, body.replace(b"}", b',"x":1}', 1), sig), "a forged body verified")
    wrong = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    check(not verify(wrong, msg_id, ts, body, sig), "another key verified")
    check(not verify(crm.secret, msg_id, ts, body, sig, now=int(ts) + TOLERANCE + 1), "a stale timestamp verified")
    copied = {k: v for k, v in headers.items() if k.startswith("webhook-") or k == "content-type"}
    resent = urllib.request.Request(hook_url, data=body, method="POST", headers=copied)
    with urllib.request.urlopen(resent, timeout=10) as answer:
        check(answer.status == 204, f"resent: {answer.status}")
    check(msg_id in crm.duplicates, "a replayed delivery was processed again")
    status, log = admin.call("GET", f"/api/v1/webhooks/{hook['id']}/deliveries?limit=100")
    check(status == 200, f"delivery log: {status} {log}")
    ended_delivery = next(d for d in log["items"] if d["event_type"] == "call.ended")
    before = len(crm.received)
    status, copy = admin.call("POST", f"/api/v1/webhooks/{hook['id']}/deliveries/{ended_delivery['id']}/replay")
    check(status == 202 and copy["message_id"] == ended_delivery["message_id"], f"replay: {status} {copy}")
    wait_for("the replayed delivery", lambda: len(crm.received) > before)
    check(ended_delivery["message_id"] in crm.duplicates, "Sambung's replay was not recognised as one")
    check(len(crm.events("call.ended")) == 1, "call.ended processed twice")

    # 6. the delivery log
    log_answered = [d for d in log["items"] if d["event_type"] == "call.answered"]
    check(len(log_answered) == 1 and log_answered[0]["state"] == "delivered" and log_answered[0]["attempts"] == 2
          and log_answered[0]["last_status"] == 204, f"call.answered in the log: {log_answered}")
    check(all(d["state"] == "delivered" for d in log["items"]), f"undelivered: {log['items']}")
    status, own_log = user.call("GET", f"/api/v1/webhooks/{own['id']}/deliveries")
    check(status == 200 and own_log["items"], f"the user's log: {status} {own_log}")
    for d in own_log["items"]:
        check(d["state"] == "pending" and "not a public address" in (d["last_error"] or ""),
              f"the user's webhook reached loopback: {d}")
    status, _ = user.call("GET", f"/api/v1/webhooks/{hook['id']}/deliveries")
    check(status == 404, f"a user reads the admin's webhook log: {status}")

    # the call records, exported with a token for software that may only read them, carry the
    # relay's figures of the call's audio (alice's SIPp sent 3 s of PCMU; bob's side sent none)
    status, made = admin.call("POST", "/api/v1/me/tokens", {"name": "cdr export", "scopes": ["calls:read"]})
    check(status == 201, f"scoped token: {status} {made}")
    reader = Api(a.url)
    reader.token = made["secret"]
    status, _ = reader.call("GET", "/api/v1/webhooks")
    check(status == 403, f"a calls:read token lists webhooks: {status}")
    def exported():
        status, records = reader.call("GET", "/api/v1/calls/export?format=json")
        check(status == 200, f"export: {status} {records}")
        return next((r for r in records if r["call_id"] == call["call_id"]), None)
    wait_for("the call's media figures", lambda: (exported() or {}).get("legs"), timeout=20)
    record = exported()
    check(record["result"] == "answered" and record["duration_secs"] >= 2, f"record {record}")
    caller_leg = next(l for l in record["legs"] if l["side"] == "caller")
    check(caller_leg["packets"] >= 100 and caller_leg["lost"] == 0, f"caller leg {caller_leg}")
    check(caller_leg["mos"] is not None and caller_leg["mos"] >= 4.0, f"caller leg MOS {caller_leg}")
    check(caller_leg["jitter_ms"] < 20, f"caller leg jitter {caller_leg}")
    status, csv_text = reader.call("GET", "/api/v1/calls/export", raw=True)
    check(status == 200 and call["call_id"] in csv_text and "caller_mos" in csv_text.splitlines()[0],
          f"CSV export: {status} {csv_text[:300]}")

    # 7. operations
    status, _ = Api(a.url).call("GET", "/metrics", auth=False, raw=True)
    check(status == 401, f"/metrics without credentials: {status}")
    status, _ = user.call("GET", "/metrics", raw=True)
    check(status == 403, f"/metrics for a user: {status}")
    status, text = admin.call("GET", "/metrics", raw=True)
    check(status == 200, f"/metrics: {status}")
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    def value(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        check(key in samples, f"{name}{labels} not in /metrics")
        return samples[key]
    check(value("sambung_calls_started_total") >= 1, "no call counted")
    check(value("sambung_calls_ended_total", result="answered") >= 1, "no answered call counted")
    check(value("sambung_registrations") >= 1, "no registration")
    check(value("sambung_media_packets_total", channel="rtp", kind="received") > 0, "no RTP counted")
    check(value("sambung_webhook_backlog") >= 1, "the user's undeliverable webhook is not in the backlog")
    for path in ["/healthz", "/readyz"]:
        status, body = Api(a.url).call("GET", path, auth=False, raw=True)
        check(status == 200, f"{path}: {status} {body}")

    # 8. click-to-call between two baresips, ended through the API
    ask(a.sync, "phones")
    status, refused = user.call("POST", "/api/v1/calls/originate", {"from": a.callee, "to": a.user})
    check(status == 403, f"a user rings someone else's phone: {status} {refused}")
    status, refused = admin.call("POST", "/api/v1/calls/originate", {"from": a.user, "to": "nobody-here"})
    check(status == 422 and refused["code"] == "invalid_target", f"an unknown target: {status} {refused}")
    status, made = admin.call("POST", "/api/v1/me/tokens", {"name": "click to call", "scopes": ["calls:control"]})
    check(status == 201, f"calls:control token: {status} {made}")
    control = Api(a.url)
    control.token = made["secret"]
    status, attempt = control.call("POST", "/api/v1/calls/originate", {"from": a.user, "to": a.callee})
    check(status == 202 and attempt["from"] == a.user and attempt["to"] == a.callee, f"originate: {status} {attempt}")

    def outcome():
        return [e for e in crm.events("originate.ended") if e["data"]["id"] == attempt["id"]]
    wait_for("originate.ended", outcome, timeout=60)
    done = outcome()[0]["data"]
    check(done["connected"] and done["status"] == 200 and done["user"] == a.user, f"originate.ended {done}")

    def placed():
        return [e["data"] for e in crm.events("call.started")
                if e["data"]["call_id"] != call["call_id"] and e["data"]["caller"] == a.user]
    wait_for("call.started of the click-to-call", placed, timeout=10)
    second = placed()[0]
    check(second["callee"] == a.callee, f"the device called someone else: {second}")
    wait_for("call.answered of the click-to-call",
             lambda: [e for e in crm.events("call.answered") if e["data"]["call_id"] == second["call_id"]])
    time.sleep(3)

    # 9. transfer: the caller is sent on to the third phone
    path = f"/api/v1/calls/live/{second['call']}/transfer"
    status, bad = control.call("POST", path, {"to": a.third, "party": "bystander"})
    check(status == 422, f"an unknown party: {status} {bad}")
    status, body = control.call("POST", path, {"to": a.third, "party": "caller"})
    check(status == 202, f"transfer through the API: {status} {body}")

    def transferred():
        return [e["data"] for e in crm.events("transfer.ended") if e["data"]["call"] == second["call"]]
    wait_for("transfer.ended", transferred, timeout=40)
    check(transferred()[0]["connected"] and transferred()[0]["to"] == a.third, f"transfer.ended {transferred()}")

    def ended_call(call_id):
        return [e["data"] for e in crm.events("call.ended") if e["data"]["call_id"] == call_id]
    wait_for("call.ended of the transferred call", lambda: ended_call(second["call_id"]), timeout=20)
    first_end = ended_call(second["call_id"])[0]
    check(first_end["cause_reason"] == "Transferred" and first_end["result"] == "answered", f"call.ended {first_end}")

    def onward():
        return [e["data"] for e in crm.events("call.started")
                if e["data"]["caller"] == a.user and e["data"]["callee"] == a.third]
    wait_for("call.started of the transferred caller", onward, timeout=10)
    third = onward()[0]
    wait_for("call.answered of the transferred caller",
             lambda: [e for e in crm.events("call.answered") if e["data"]["call_id"] == third["call_id"]])
    time.sleep(3)
    status, body = control.call("DELETE", f"/api/v1/calls/live/{third['call']}")
    check(status == 202, f"hang up through the API: {status} {body}")
    wait_for("call.ended of the onward call", lambda: ended_call(third["call_id"]), timeout=20)
    check(ended_call(third["call_id"])[0]["hangup_side"] == "system", f"call.ended {ended_call(third['call_id'])}")

    def record_of(call_id):
        status, records = reader.call("GET", "/api/v1/calls/export?format=json")
        check(status == 200, f"export: {status} {records}")
        return next((r for r in records if r["call_id"] == call_id), None)
    legs = []
    for placed_call in [second, third]:
        wait_for("the media figures of " + placed_call["call_id"],
                 lambda: len((record_of(placed_call["call_id"]) or {}).get("legs") or []) == 2, timeout=20)
        for leg in record_of(placed_call["call_id"])["legs"]:
            check(leg["packets"] >= 50 and leg["mos"] is not None and leg["mos"] >= 4.0, f"leg {leg}")
            legs.append(leg)

    print("ok: every delivery verified; forgeries and replays detected; metrics parsed; "
          f"the call's caller leg: {caller_leg}; click-to-call {done}; transfer {transferred()[0]}; "
          f"the legs of both: {legs}")


if __name__ == "__main__":
    main()
