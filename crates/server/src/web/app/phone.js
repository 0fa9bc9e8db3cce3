// The app's phone: a small SIP user agent over the app's SIP WebSocket (RFC 7118) at
// /api/v1/sip, signed in by the app's session (no digest), with WebRTC for media. The
// browser registers as a device of the signed-in account, so calls to the person ring it
// with their other devices, and it calls anyone a phone can.
//
// What it speaks (RFC 3261): REGISTER (refreshed), INVITE/ACK/BYE/CANCEL both ways, re-INVITE
// answered (hold from the other side), OPTIONS, and 200 for MESSAGE and NOTIFY (the app shows
// messages through its own API). Keys go as RFC 4733 events (RTCDTMFSender).

const EXPIRES = 300;

function random(n = 10) {
  const bytes = crypto.getRandomValues(new Uint8Array(n));
  return Array.from(bytes, (b) => "abcdefghijklmnopqrstuvwxyz0123456789"[b % 36]).join("");
}

// --- SIP messages --------------------------------------------------------------------------

const COMPACT = { v: "via", f: "from", t: "to", i: "call-id", m: "contact", l: "content-length", c: "content-type", k: "supported", e: "content-encoding", s: "subject", o: "event", r: "refer-to", b: "referred-by", u: "allow-events", x: "session-expires" };

export function parse(text) {
  const split = text.indexOf("\r\n\r\n");
  const head = split < 0 ? text : text.slice(0, split);
  const body = split < 0 ? "" : text.slice(split + 4);
  const lines = head.split("\r\n");
  const start = lines.shift();
  const headers = [];
  for (const line of lines) {
    if (/^[ \t]/.test(line) && headers.length) {
      headers[headers.length - 1][1] += " " + line.trim();
      continue;
    }
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    let name = line.slice(0, colon).trim().toLowerCase();
    name = COMPACT[name] || name;
    headers.push([name, line.slice(colon + 1).trim()]);
  }
  const message = { headers, body };
  const status = /^SIP\/2\.0 (\d{3}) ?(.*)$/.exec(start);
  if (status) {
    message.status = Number(status[1]);
    message.reason = status[2];
  } else {
    const [method, uri] = start.split(" ");
    message.method = method;
    message.uri = uri;
  }
  message.get = (name) => (headers.find(([n]) => n === name) || [])[1];
  message.all = (name) => headers.filter(([n]) => n === name).map(([, v]) => v);
  return message;
}

function serialize(start, headers, body = "") {
  const lines = [start];
  for (const [name, value] of headers) lines.push(`${name}: ${value}`);
  lines.push(`Content-Length: ${new TextEncoder().encode(body).length}`);
  return lines.join("\r\n") + "\r\n\r\n" + body;
}

function tagOf(value) {
  const match = /;\s*tag=([^;>\s]+)/i.exec(value || "");
  return match ? match[1] : null;
}

function uriOf(value) {
  const angle = /<([^>]*)>/.exec(value || "");
  return angle ? angle[1] : (value || "").split(";")[0].trim();
}

// A `Replaces` value (RFC 3891 §6.1: `call-id;to-tag=T;from-tag=F`) as its three parts.
function parseReplaces(value) {
  const [callId, ...params] = (value || "").split(";").map((p) => p.trim());
  const param = (name) => (params.find((p) => p.toLowerCase().startsWith(`${name}=`)) || "").slice(name.length + 1);
  return callId && param("to-tag") && param("from-tag") ? { callId, toTag: param("to-tag"), fromTag: param("from-tag") } : null;
}

function userOf(value) {
  const match = /sips?:([^@;>]+)@/.exec(uriOf(value));
  return match ? decodeURIComponent(match[1]) : uriOf(value);
}

function displayOf(value) {
  const quoted = /^\s*"((?:[^"\\]|\\.)*)"\s*</.exec(value || "");
  if (quoted) return quoted[1].replace(/\\(.)/g, "$1");
  const bare = /^\s*([^<"]+?)\s*</.exec(value || "");
  return bare ? bare[1] : null;
}

// Waits until the connection has gathered its candidates (the server is ICE-lite, so the
// description must carry them; a local-only gathering takes milliseconds).
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 3000);
  });
}

// --- the user agent ------------------------------------------------------------------------

export class Phone extends EventTarget {
  constructor(username, domain) {
    super();
    this.username = username;
    this.domain = domain;
    this.aor = `sip:${username}@${domain}`;
    this.contactUser = random(8);
    this.contact = `<sip:${this.contactUser}@${random(12)}.invalid;transport=ws>;+sip.instance="<urn:uuid:${crypto.randomUUID()}>";reg-id=1`;
    this.viaHost = `${random(12)}.invalid`;
    this.socket = null;
    this.registered = false;
    this.cseq = 1;
    this.regCallId = random(16);
    this.pending = new Map(); // branch -> resolver of the final response
    this.calls = new Map(); // Call-ID -> Call
    this.refresh = null;
    this.closed = false;
    this.cleanAudio = localStorage.getItem("sambung.cleanAudio") !== "off";
    // The microphone and camera chosen in the Phone view ("": the browser's default).
    this.microphone = localStorage.getItem("sambung.microphone") || "";
    this.camera = localStorage.getItem("sambung.camera") || "";
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  start() {
    this.closed = false;
    const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1/sip`, "sip");
    this.socket = socket;
    socket.addEventListener("open", () => this.register());
    socket.addEventListener("message", (event) => this.received(typeof event.data === "string" ? event.data : ""));
    socket.addEventListener("close", () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.registered = false;
      clearTimeout(this.refresh);
      this.emit("state", { registered: false });
      for (const call of this.calls.values()) call.ended("Connection lost");
      if (!this.closed) setTimeout(() => !this.closed && this.start(), 3000);
    });
  }

  stop() {
    this.closed = true;
    clearTimeout(this.refresh);
    for (const call of this.calls.values()) call.hangUp();
    if (this.socket && this.registered) {
      this.register(0).finally(() => this.socket && this.socket.close());
    } else if (this.socket) {
      this.socket.close();
    }
  }

  send(text) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(text);
  }

  via(branch) {
    return `SIP/2.0/WSS ${this.viaHost};branch=${branch}`;
  }

  // Sends a request outside a transaction's retransmissions (the WebSocket is reliable) and
  // resolves with its final response; provisional ones go to `onProvisional`.
  request(method, uri, headers, body = "", onProvisional = null) {
    const branch = `z9hG4bK${random(12)}`;
    const all = [["Via", this.via(branch)], ["Max-Forwards", "70"], ...headers];
    this.send(serialize(`${method} ${uri} SIP/2.0`, all, body));
    return new Promise((resolve) => {
      this.pending.set(branch, { resolve, onProvisional, method });
      if (method !== "INVITE") {
        setTimeout(() => {
          if (this.pending.delete(branch)) resolve({ status: 408, reason: "Request Timeout", headers: [], get: () => undefined, all: () => [] });
        }, 32000);
      }
    });
  }

  async register(expires = EXPIRES) {
    const response = await this.request("REGISTER", `sip:${this.domain}`, [
      ["From", `<${this.aor}>;tag=${random(8)}`],
      ["To", `<${this.aor}>`],
      ["Call-ID", this.regCallId],
      ["CSeq", `${this.cseq++} REGISTER`],
      ["Contact", this.contact],
      ["Expires", String(expires)],
      ["Supported", "path, outbound, gruu"],
      ["User-Agent", "Sambung web app"],
    ]);
    clearTimeout(this.refresh);
    if (expires === 0) {
      this.registered = false;
      this.emit("state", { registered: false });
      return response;
    }
    this.registered = response.status >= 200 && response.status < 300;
    this.emit("state", { registered: this.registered, status: response.status, reason: response.reason });
    const granted = Number((/expires=(\d+)/i.exec(response.get?.("contact") || "") || [])[1] || EXPIRES);
    this.refresh = setTimeout(() => this.socket && this.register(), Math.max(granted * 800, 5000));
    return response;
  }

  received(text) {
    if (!text.trim()) return;
    let message;
    try {
      message = parse(text);
    } catch {
      return;
    }
    if (message.status) return this.response(message);
    this.incoming(message);
  }

  response(message) {
    const via = message.get("via") || "";
    const branch = (/branch=([^;\s,]+)/.exec(via) || [])[1];
    const waiting = this.pending.get(branch);
    if (!waiting) {
      // A 2xx to an INVITE retransmitted after ours was settled: acknowledge it again.
      const call = this.calls.get(message.get("call-id"));
      if (call && message.status >= 200 && message.status < 300 && /INVITE/.test(message.get("cseq"))) call.ack(message);
      return;
    }
    if (message.status < 200) {
      if (waiting.onProvisional) waiting.onProvisional(message);
      return;
    }
    this.pending.delete(branch);
    waiting.resolve(message);
  }

  reply(request, status, reason, extra = [], body = "") {
    const headers = [];
    for (const via of request.all("via")) headers.push(["Via", via]);
    let to = request.get("to");
    if (status > 100 && !tagOf(to)) to = `${to};tag=${request.localTag || (request.localTag = random(8))}`;
    headers.push(["From", request.get("from")], ["To", to], ["Call-ID", request.get("call-id")], ["CSeq", request.get("cseq")], ...extra);
    this.send(serialize(`SIP/2.0 ${status} ${reason}`, headers, body));
  }

  incoming(request) {
    const callId = request.get("call-id");
    const call = this.calls.get(callId);
    switch (request.method) {
      case "INVITE":
        if (call) return call.reinvite(request);
        return this.ring(request);
      case "REFER":
        if (!call || call.state !== "connected") return this.reply(request, 481, "Call/Transaction Does Not Exist");
        return call.referred(request);
      case "ACK":
        if (call) call.acked(request);
        return;
      case "CANCEL":
        this.reply(request, 200, "OK");
        if (call) call.cancelled(request);
        return;
      case "BYE":
        this.reply(request, call ? 200 : 481, call ? "OK" : "Call/Transaction Does Not Exist");
        if (call) call.ended(call.transfer === "done" ? "Transferred" : "The other side hung up");
        return;
      case "NOTIFY":
        this.reply(request, 200, "OK");
        if (call && /^refer/i.test(request.get("event") || "")) call.transferProgress(request.body);
        return;
      case "OPTIONS":
        return this.reply(request, 200, "OK", [["Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, NOTIFY, INFO"]]);
      case "MESSAGE":
      case "INFO":
        return this.reply(request, 200, "OK");
      default:
        return this.reply(request, 501, "Not Implemented");
    }
  }

  ring(invite) {
    // An INVITE with Replaces (RFC 3891): an attended transfer hands us a new call in place of
    // one we are in. It is taken at once, and the call it replaces hung up; one naming no call
    // of ours is refused.
    const replaces = invite.get("replaces");
    if (replaces) {
      const named = parseReplaces(replaces);
      const old = named && this.calls.get(named.callId);
      if (!old || old.localTag !== named.toTag || old.remoteTag !== named.fromTag || old.state !== "connected") {
        return this.reply(invite, 481, "Call/Transaction Does Not Exist");
      }
      const call = new Call(this, { incoming: true, invite });
      this.calls.set(call.callId, call);
      this.reply(invite, 100, "Trying");
      invite.localTag = call.localTag;
      this.emit("call", call);
      call.accept({ video: old.cameraOn }).then(() => {
        if (call.state === "connected") old.replacedBy(call);
      });
      return;
    }
    const live = [...this.calls.values()].filter((c) => c.state !== "ended");
    if (live.some((c) => c.state === "ringing" && c.incoming) || live.length >= 2) {
      // One call waiting at a time here; the others ring the person's other devices.
      return this.reply(invite, 486, "Busy Here");
    }
    const call = new Call(this, { incoming: true, invite });
    this.calls.set(call.callId, call);
    this.reply(invite, 100, "Trying");
    this.reply(invite, 180, "Ringing", [["Contact", `<sip:${this.contactUser}@${this.viaHost};transport=ws>`]]);
    invite.localTag = call.localTag;
    this.emit("call", call);
  }

  // Calls `target` (a username, an extension, a number or a SIP URI); `replaces` names a call
  // the new one takes the place of (an attended transfer, RFC 3891).
  call(target, { video = false, replaces = null } = {}) {
    const uri = /^sips?:/.test(target) ? target : `sip:${encodeURIComponent(target).replace(/%2B/g, "+")}@${this.domain}`;
    const call = new Call(this, { incoming: false, target: uri, video });
    call.replaces = replaces;
    this.calls.set(call.callId, call);
    this.emit("call", call);
    call.dial();
    return call;
  }
}

// True when a description sends video: its video section is enabled and sendrecv or sendonly
// (the default is sendrecv, RFC 3264 §5.1).
function sendsVideo(sdp) {
  const start = sdp.search(/^m=video /m);
  if (start < 0) return false;
  const rest = sdp.slice(start);
  const next = rest.slice(1).search(/^m=/m);
  const section = next < 0 ? rest : rest.slice(0, next + 1);
  if (/^m=video 0 /.test(section)) return false;
  return !/^a=(recvonly|inactive)\s*$/m.test(section);
}

// One call: its dialog and its RTCPeerConnection.
export class Call extends EventTarget {
  constructor(phone, { incoming, invite = null, target = null, video = false }) {
    super();
    this.phone = phone;
    this.incoming = incoming;
    this.invite = invite;
    this.video = video || (incoming && /m=video [1-9]/.test(invite?.body || ""));
    // Video was wanted in this call (a video call, or a camera turned on since): an idle
    // video stream then takes the other side's video.
    this.videoWanted = this.video;
    this.callId = incoming ? invite.get("call-id") : random(20);
    this.localTag = random(8);
    this.remoteTag = incoming ? tagOf(invite.get("from")) : null;
    this.remoteTarget = incoming ? uriOf(invite.get("contact")) : target;
    // Who the call is with, as an address of record (what a transfer to them names).
    this.address = incoming ? uriOf(invite.get("from")) : target;
    this.peer = incoming ? invite.get("from") : `<${target}>`;
    this.name = incoming ? displayOf(invite.get("from")) || userOf(invite.get("from")) : userOf(target);
    this.state = incoming ? "ringing" : "calling";
    this.localCseq = 1;
    this.inviteCseq = 1;
    this.pc = null;
    this.stream = null;
    this.remote = new MediaStream();
    this.started = null;
    this.muted = false;
  }

  emit(state, detail = {}) {
    if (state) this.state = state;
    this.dispatchEvent(new CustomEvent("change", { detail: { state: this.state, ...detail } }));
  }

  headers(method, cseq) {
    const ours = `<${this.phone.aor}>;tag=${this.localTag}`;
    const theirs = this.remoteTag ? `${this.peer.replace(/;\s*tag=[^;>]*/i, "")};tag=${this.remoteTag}` : this.peer;
    return [["From", ours], ["To", theirs], ["Call-ID", this.callId], ["CSeq", `${cseq} ${method}`]];
  }

  async media() {
    // The browser's own clean-up of the microphone (echo cancellation, noise suppression,
    // level control) is on unless the person turned it off (a headset, music).
    const clean = this.phone.cleanAudio;
    const audio = clean ? {} : { echoCancellation: false, noiseSuppression: false, autoGainControl: false };
    if (this.phone.microphone) audio.deviceId = { ideal: this.phone.microphone };
    const video = this.video && (this.phone.camera ? { deviceId: { ideal: this.phone.camera } } : true);
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: Object.keys(audio).length ? audio : true, video });
    this.pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
    for (const track of this.stream.getTracks()) this.pc.addTrack(track, this.stream);
    // A call we place without the camera still offers a video stream, idle (inactive), so that
    // either side can turn a camera on in the middle of the call without adding a stream.
    if (!this.video && !this.incoming) this.pc.addTransceiver("video", { direction: "inactive", streams: [this.stream] });
    this.pc.addEventListener("track", (event) => {
      this.remote.addTrack(event.track);
      this.emit(null, { track: event.track });
    });
    this.pc.addEventListener("connectionstatechange", () => {
      if (this.pc && this.pc.connectionState === "failed") this.hangUp("Media failed");
    });
  }

  async dial() {
    try {
      await this.media();
      const offer = await this.pc.createOffer();
      await this.pc.setLocalDescription(offer);
      await gathered(this.pc);
    } catch (error) {
      return this.ended(`No microphone: ${error.message}`);
    }
    if (this.state === "ended") return;
    const headers = [
      ["From", `<${this.phone.aor}>;tag=${this.localTag}`],
      ["To", `<${this.remoteTarget}>`],
      ["Call-ID", this.callId],
      ["CSeq", `${this.inviteCseq} INVITE`],
      ["Contact", `<sip:${this.phone.contactUser}@${this.phone.viaHost};transport=ws>`],
      ["Content-Type", "application/sdp"],
      ["Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, NOTIFY, INFO"],
      ["User-Agent", "Sambung web app"],
    ];
    if (this.replaces) headers.push(["Replaces", this.replaces]);
    this.branch = null;
    const response = await this.phone.request("INVITE", this.remoteTarget, headers, this.pc.localDescription.sdp, (provisional) => {
      this.branch = (/branch=([^;\s,]+)/.exec(provisional.get("via")) || [])[1];
      if (provisional.status === 180 || provisional.status === 183) this.emit("ringing");
    });
    if (response.status >= 200 && response.status < 300) {
      this.remoteTag = tagOf(response.get("to"));
      this.remoteTarget = uriOf(response.get("contact")) || this.remoteTarget;
      this.ack(response);
      if (this.state === "ending") return this.bye();
      try {
        await this.pc.setRemoteDescription({ type: "answer", sdp: response.body });
      } catch (error) {
        this.bye();
        return this.ended(`Bad answer: ${error.message}`);
      }
      this.answered();
    } else {
      this.finalStatus = `${response.status} ${response.reason}`;
      this.ackFailure(response);
      this.ended(response.status === 487 ? "Cancelled" : `${response.status} ${response.reason}`);
    }
  }

  ack(response) {
    const headers = this.headers("ACK", this.inviteCseq);
    this.phone.send(serialize(`ACK ${this.remoteTarget} SIP/2.0`, [["Via", this.phone.via(`z9hG4bK${random(12)}`)], ["Max-Forwards", "70"], ...headers]));
  }

  // A non-2xx final answer to our INVITE is acknowledged in its transaction (RFC 3261 §17.1.1.3).
  ackFailure(response) {
    const via = response.get("via");
    this.phone.send(
      serialize(`ACK ${this.invite ? this.invite.uri : uriOf(response.get("to"))} SIP/2.0`, [
        ["Via", via],
        ["Max-Forwards", "70"],
        ["From", response.get("from")],
        ["To", response.get("to")],
        ["Call-ID", this.callId],
        ["CSeq", `${this.inviteCseq} ACK`],
      ]),
    );
  }

  // Answers an incoming call.
  async accept({ video = this.video } = {}) {
    if (!this.incoming || this.state !== "ringing") return;
    this.video = video;
    this.emit("answering");
    // An INVITE without an offer (click-to-call rings the person's devices so): our offer
    // goes in the 200, the answer comes in the ACK (RFC 3264 §2).
    this.lateOffer = !this.invite.body.trim();
    try {
      await this.media();
      if (this.lateOffer) {
        await this.pc.setLocalDescription(await this.pc.createOffer());
      } else {
        await this.pc.setRemoteDescription({ type: "offer", sdp: this.invite.body });
        await this.pc.setLocalDescription(await this.pc.createAnswer());
      }
      await gathered(this.pc);
    } catch (error) {
      this.phone.reply(this.invite, 488, "Not Acceptable Here");
      return this.ended(`Cannot answer: ${error.message}`);
    }
    if (this.state === "ended") return;
    const contact = [["Contact", `<sip:${this.phone.contactUser}@${this.phone.viaHost};transport=ws>`], ["Content-Type", "application/sdp"]];
    this.phone.reply(this.invite, 200, "OK", contact, this.pc.localDescription.sdp);
    this.answered();
  }

  decline() {
    if (this.incoming && this.state === "ringing") {
      this.phone.reply(this.invite, 486, "Busy Here");
      this.ended("Declined");
    }
  }

  // The ACK of our 2xx: with a late offer it carries the answer. A short leg whose answer
  // holds no media (click-to-call's, before its REFER) stays up without any.
  async acked(ack) {
    if (!this.lateOffer || !ack.body.trim()) return;
    this.lateOffer = false;
    await this.pc.setRemoteDescription({ type: "answer", sdp: ack.body }).catch(() => {});
  }

  // The server asks us to call someone (RFC 3515: a transfer, or click-to-call): 202, then a
  // new call whose progress the server is told by NOTIFY; it ends this call once that one is
  // answered.
  referred(refer) {
    const referTo = uriOf(refer.get("refer-to"));
    if (!referTo) return this.phone.reply(refer, 400, "Missing Refer-To");
    // An attended transfer: the new call replaces the one its Refer-To names (RFC 3891 §7,
    // the header escaped in the URI).
    const [target, query = ""] = referTo.split("?");
    const escaped = query.split("&").find((h) => /^replaces=/i.test(h));
    const replaces = escaped ? decodeURIComponent(escaped.slice("replaces=".length)) : null;
    refer.localTag = this.localTag;
    this.phone.reply(refer, 202, "Accepted", [["Contact", `<sip:${this.phone.contactUser}@${this.phone.viaHost};transport=ws>`]]);
    const id = (/^\s*(\d+)/.exec(refer.get("cseq") || "") || [])[1];
    const notify = (line, last) => {
      this.localCseq = Math.max(this.localCseq, this.inviteCseq) + 1;
      const headers = [
        ...this.headers("NOTIFY", this.localCseq),
        ["Event", id ? `refer;id=${id}` : "refer"],
        ["Subscription-State", last ? "terminated;reason=noresource" : "active;expires=120"],
        ["Contact", `<sip:${this.phone.contactUser}@${this.phone.viaHost};transport=ws>`],
        ["Content-Type", "message/sipfrag;version=2.0"],
      ];
      this.phone.request("NOTIFY", this.remoteTarget, headers, `${line}\r\n`);
    };
    notify("SIP/2.0 100 Trying", false);
    const onward = this.phone.call(target, { video: false, replaces });
    onward.addEventListener("change", (event) => {
      if (event.detail.state === "connected") notify("SIP/2.0 200 OK", true);
      else if (event.detail.state === "ended" && !onward.started) notify(`SIP/2.0 ${onward.finalStatus || "487 Request Terminated"}`, true);
    });
  }

  cancelled() {
    if (this.state === "ringing") {
      this.phone.reply(this.invite, 487, "Request Terminated");
      this.ended("Missed call");
    }
  }

  // The other side's re-INVITE (hold, resume, a new description): answered from the same
  // connection.
  async reinvite(request) {
    try {
      await this.pc.setRemoteDescription({ type: "offer", sdp: request.body });
      // The other side turned its camera on: an idle video stream of ours takes its video.
      const video = this.videoTransceiver();
      if (video && !video.sender.track && !this.onHold && sendsVideo(request.body)) {
        this.videoWanted = true;
        video.direction = "recvonly";
      }
      const answer = await this.pc.createAnswer();
      await this.pc.setLocalDescription(answer);
      const contact = [["Contact", `<sip:${this.phone.contactUser}@${this.phone.viaHost};transport=ws>`], ["Content-Type", "application/sdp"]];
      request.localTag = this.localTag;
      this.phone.reply(request, 200, "OK", contact, this.pc.localDescription.sdp);
      const held = /a=(sendonly|inactive)/.test(request.body);
      this.heldByOther = held;
      this.emit(null, { held });
    } catch {
      request.localTag = this.localTag;
      this.phone.reply(request, 488, "Not Acceptable Here");
    }
  }

  answered() {
    this.started = Date.now();
    this.emit("connected");
  }

  // Sends the other party on to `target` (a blind transfer, RFC 3515): the server carries it
  // out, tells us how it goes by NOTIFY, and ends this call once the new one is answered.
  async transferTo(target) {
    if (this.state !== "connected") return false;
    const uri = /^sips?:/.test(target) ? target : `sip:${encodeURIComponent(target).replace(/%2B/g, "+")}@${this.phone.domain}`;
    this.localCseq = Math.max(this.localCseq, this.inviteCseq) + 1;
    const headers = [
      ...this.headers("REFER", this.localCseq),
      ["Refer-To", `<${uri}>`],
      ["Referred-By", `<${this.phone.aor}>`],
      ["Contact", `<sip:${this.phone.contactUser}@${this.phone.viaHost};transport=ws>`],
    ];
    this.transfer = "asked";
    this.emit(null, { transfer: `Transferring to ${userOf(uri)}…` });
    const response = await this.phone.request("REFER", this.remoteTarget, headers);
    if (response.status >= 200 && response.status < 300) return true;
    this.transfer = null;
    this.emit(null, { transfer: `Transfer refused: ${response.status} ${response.reason}` });
    return false;
  }

  // Our call was taken over by `call` (an INVITE with Replaces): it is hung up.
  replacedBy(call) {
    if (this.state !== "connected") return;
    this.bye();
    this.ended(`Transferred to ${call.name}`);
  }

  // Completes an attended transfer: the other party of this call (held) is sent on to the
  // party of `consult`, our call with the person we talked to first, which it replaces
  // (REFER with Replaces in its Refer-To, RFC 5589 §7).
  async transferToCall(consult) {
    if (this.state !== "connected" || consult.state !== "connected") return false;
    // The dialog as the one it is sent to knows it: its tag is the To tag (RFC 3891 §3).
    const replaces = `${consult.callId};to-tag=${consult.remoteTag};from-tag=${consult.localTag}`;
    this.consultCall = consult;
    return this.transferTo(`${consult.address}?Replaces=${encodeURIComponent(replaces)}`);
  }

  // A NOTIFY of our transfer: the status line of the new call (RFC 3515 §2.4.5).
  transferProgress(sipfrag) {
    const status = Number((/^SIP\/2\.0 (\d{3})/.exec(sipfrag || "") || [])[1] || 0);
    if (status >= 200 && status < 300) {
      this.transfer = "done";
      if (this.consultCall) this.consultCall.transfer = "done";
      this.emit(null, { transfer: "Transferred" });
    } else if (status >= 300) {
      this.transfer = null;
      this.emit(null, { transfer: `Transfer failed: ${sipfrag.split("\r\n")[0].replace(/^SIP\/2\.0 /, "")}` });
    }
  }

  // The call's video transceiver, if it has one (a phone may have offered audio alone).
  videoTransceiver() {
    return this.pc && this.pc.getTransceivers().find((t) => !t.stopped && t.receiver.track.kind === "video");
  }

  // The camera is sending in this call.
  get cameraOn() {
    return Boolean(this.videoTransceiver()?.sender.track);
  }

  // The direction of each stream (RFC 3264 §6.1): audio both ways, held: we only send. Video
  // both ways while our camera is on, else we take the other side's once video was wanted in
  // this call (by either side), else it stays idle; held: we send at most.
  directions() {
    for (const t of this.pc.getTransceivers()) {
      if (t.stopped) continue;
      const sending = Boolean(t.sender.track);
      if (t.receiver.track.kind === "audio") t.direction = this.onHold ? "sendonly" : "sendrecv";
      else if (sending) t.direction = this.onHold ? "sendonly" : "sendrecv";
      else t.direction = this.onHold || !this.videoWanted ? "inactive" : "recvonly";
    }
  }

  // Turns the camera on or off in the middle of the call (a re-INVITE changing the video
  // stream's direction). False when the call has no video stream or the other side refused.
  async camera(on) {
    const transceiver = this.videoTransceiver();
    if (this.state !== "connected" || !transceiver || this.updating || on === this.cameraOn) return false;
    let track = null;
    if (on) {
      try {
        const video = this.phone.camera ? { deviceId: { ideal: this.phone.camera } } : true;
        track = (await navigator.mediaDevices.getUserMedia({ video })).getVideoTracks()[0];
      } catch (error) {
        this.emit(null, { camera: false, cameraError: `No camera: ${error.message}` });
        return false;
      }
    }
    const previous = transceiver.sender.track;
    await transceiver.sender.replaceTrack(track);
    this.videoWanted = true;
    if (previous) {
      previous.stop();
      this.stream.removeTrack(previous);
    }
    if (track) this.stream.addTrack(track);
    const done = await this.renegotiate();
    if (!done && track) {
      // Refused: the camera goes off again.
      await transceiver.sender.replaceTrack(null);
      track.stop();
      this.stream.removeTrack(track);
    }
    this.emit(null, { camera: this.cameraOn });
    return done;
  }

  // Puts the call on hold (our media sendonly, RFC 3264 §8.4) or resumes it, by re-INVITE.
  async hold(on) {
    if (this.state !== "connected" || !this.pc || this.updating) return false;
    const was = this.onHold;
    this.onHold = on;
    const done = await this.renegotiate();
    if (!done) this.onHold = was;
    this.emit(null, { onHold: this.onHold });
    return done;
  }

  // A new offer of ours in a re-INVITE (hold, resume, the camera): false when it was refused,
  // and the offer is rolled back.
  async renegotiate() {
    if (this.updating) return false;
    this.updating = true;
    try {
      this.directions();
      const offer = await this.pc.createOffer();
      await this.pc.setLocalDescription(offer);
      await gathered(this.pc);
      this.localCseq = Math.max(this.localCseq, this.inviteCseq) + 1;
      const cseq = this.localCseq;
      const headers = [
        ...this.headers("INVITE", cseq),
        ["Contact", `<sip:${this.phone.contactUser}@${this.phone.viaHost};transport=ws>`],
        ["Content-Type", "application/sdp"],
      ];
      const response = await this.phone.request("INVITE", this.remoteTarget, headers, this.pc.localDescription.sdp);
      if (response.status >= 200 && response.status < 300) {
        const ack = this.headers("ACK", cseq);
        this.phone.send(serialize(`ACK ${this.remoteTarget} SIP/2.0`, [["Via", this.phone.via(`z9hG4bK${random(12)}`)], ["Max-Forwards", "70"], ...ack]));
        await this.pc.setRemoteDescription({ type: "answer", sdp: response.body });
        return true;
      }
      await this.pc.setLocalDescription({ type: "rollback" }).catch(() => {});
      return false;
    } finally {
      this.updating = false;
    }
  }

  hangUp(why = "You hung up") {
    if (this.state === "ended" || this.state === "ending") return;
    if (this.incoming && this.state === "ringing") return this.decline();
    if (!this.incoming && (this.state === "calling" || this.state === "ringing")) {
      this.state = "ending";
      if (this.branch) {
        const headers = [
          ["Via", this.phone.via(this.branch)],
          ["Max-Forwards", "70"],
          ["From", `<${this.phone.aor}>;tag=${this.localTag}`],
          ["To", `<${this.remoteTarget}>`],
          ["Call-ID", this.callId],
          ["CSeq", `${this.inviteCseq} CANCEL`],
        ];
        this.phone.send(serialize(`CANCEL ${this.remoteTarget} SIP/2.0`, headers));
      }
      return;
    }
    this.bye();
    this.ended(why);
  }

  bye() {
    this.localCseq = Math.max(this.localCseq, this.inviteCseq) + 1;
    this.phone.request("BYE", this.remoteTarget, this.headers("BYE", this.localCseq));
  }

  ended(why) {
    if (this.state === "ended") return;
    this.state = "ended";
    if (this.pc) this.pc.close();
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.phone.calls.delete(this.callId);
    this.emit("ended", { why });
  }

  mute(on) {
    this.muted = on;
    if (this.stream) for (const track of this.stream.getAudioTracks()) track.enabled = !on;
    this.emit(null, { muted: on });
  }

  // Sends keys as RFC 4733 telephone-events.
  keys(tones) {
    const sender = this.pc && this.pc.getSenders().find((s) => s.track && s.track.kind === "audio");
    if (sender && sender.dtmf) sender.dtmf.insertDTMF(tones, 160, 80);
  }

  // Round trip and loss of the audio, from getStats().
  async quality() {
    if (!this.pc) return null;
    const stats = await this.pc.getStats();
    let rtt = null;
    let lost = 0;
    let received = 0;
    // Keyframes the other side asked of our camera (RTCP PLI and FIR, RFC 4585, RFC 5104).
    let keyframesAsked = 0;
    // Video packets our camera sent.
    let videoSent = 0;
    stats.forEach((s) => {
      if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) rtt = s.currentRoundTripTime;
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        lost += s.packetsLost || 0;
        received += s.packetsReceived || 0;
      }
      if (s.type === "outbound-rtp" && s.kind === "video") {
        keyframesAsked += (s.pliCount || 0) + (s.firCount || 0);
        videoSent += s.packetsSent || 0;
      }
    });
    return {
      rttMs: rtt === null ? null : Math.round(rtt * 1000),
      lossPercent: received + lost ? (100 * lost) / (received + lost) : 0,
      received,
      keyframesAsked,
      videoSent,
    };
  }
}
