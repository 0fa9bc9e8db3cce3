// Calls in the app: the phone (phone.js) started when the person signs in, a call panel under
// the header for the call in progress (ringing, answered, ended), and the Phone view's dial
// pad. Built with DOM calls only, like the rest of the app.
import { h } from "./dom.js";
import { Phone } from "./phone.js";

let phone = null;
const panel = () => document.getElementById("call");
// The calls shown, in order: at most one in progress and one more ringing or on hold.
const calls = new Set();

function domainOf(me) {
  const match = /@(.+)$/.exec(me.sip_uri || "");
  return match ? match[1] : location.hostname;
}

// Starts the phone for the signed-in person: it registers over the app's SIP WebSocket.
export function startPhone(me) {
  if (phone) return phone;
  phone = new Phone(me.username, domainOf(me));
  phone.addEventListener("state", (event) => {
    for (const el of document.querySelectorAll("[data-phone-state]")) showState(el, event.detail);
  });
  phone.addEventListener("call", (event) => show(event.detail));
  phone.start();
  return phone;
}

export function stopPhone() {
  if (phone) phone.stop();
  phone = null;
  calls.clear();
  if (panel()) panel().replaceChildren();
}

function showState(el, state) {
  el.textContent = state.registered ? "Phone ready: calls to you ring here too." : "Phone offline.";
  el.dataset.phoneState = state.registered ? "ready" : "offline";
}

export function call(target, options) {
  if (!phone || [...calls].some((c) => c.state !== "ended")) return null;
  return phone.call(target, options);
}

// The other call in progress (not `call`), if any.
function other(call) {
  return [...calls].find((c) => c !== call && c.state !== "ended");
}

function clock(call) {
  if (!call.started) return "";
  const s = Math.floor((Date.now() - call.started) / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

// The call panel shows a block per call, following it until it ends.
function show(call) {
  calls.add(call);
  const el = panel();
  if (!el) return;
  const title = h("strong", { class: "call-title" });
  const status = h("span", { class: "call-status", "aria-live": "polite" });
  const quality = h("span", { class: "call-quality" });
  const audio = h("audio", { autoplay: true });
  audio.srcObject = call.remote;
  const videos = h("div", { class: "tiles" });
  const buttons = h("div", { class: "call-buttons" });
  const transferInput = h("input", { id: `transfer-${call.callId}`, name: "target", required: true, autocomplete: "off" });
  const transferForm = h("form", { class: "transfer", hidden: true, "aria-label": "Transfer", onsubmit: (event) => {
    event.preventDefault();
    const target = transferInput.value.trim();
    if (target) call.transferTo(target);
    transferForm.hidden = true;
  } }, h("label", { for: transferInput.id }, "Transfer to"), " ", transferInput, " ", h("button", { type: "submit" }, "Send on"), " ",
  // An attended transfer: this call waits on hold while we talk to the person first; then
  // "Complete transfer" in that call sends this one on to them.
  h("button", { type: "button", onclick: async () => {
    const target = transferInput.value.trim();
    if (!target || !phone) return;
    transferForm.hidden = true;
    if (!call.onHold && !(await call.hold(true))) return;
    const consult = phone.call(target);
    consult.consulting = call;
  } }, "Talk first"));
  const keypad = h("div", { class: "keypad", hidden: true, role: "group", "aria-label": "Keypad" },
    ..."123456789*0#".split("").map((k) => h("button", { type: "button", onclick: () => call.keys(k) }, k)));
  const block = h("div", { class: "call", "data-call-state": call.state, "data-call-with": call.name }, title, " ", status, " ", quality, buttons, transferForm, keypad, videos, audio);
  el.append(block);
  el.hidden = false;
  let timer = null;

  const button = (label, action, cls = "") => h("button", { type: "button", class: cls, onclick: action }, label);
  const update = (detail = {}) => {
    block.dataset.callState = call.state;
    switch (call.state) {
      case "ringing":
        if (call.incoming) {
          title.textContent = `${call.name} is calling`;
          status.textContent = call.video ? "Video call" : "Call";
          const busy = other(call);
          const answer = (video) => async () => {
            // A call waiting: the one in progress goes on hold first.
            if (busy && busy.state === "connected" && !busy.onHold) await busy.hold(true);
            call.accept({ video });
          };
          buttons.replaceChildren(
            button(busy ? "Hold and answer" : "Answer", answer(false)),
            button(busy ? "Hold and answer with video" : "Answer with video", answer(true)),
            button("Decline", () => call.decline(), "danger"),
          );
        } else {
          title.textContent = `Calling ${call.name}`;
          status.textContent = "Ringing";
        }
        break;
      case "calling":
        title.textContent = `Calling ${call.name}`;
        status.textContent = "Calling…";
        buttons.replaceChildren(button("Hang up", () => call.hangUp(), "danger"));
        break;
      case "answering":
        status.textContent = "Answering…";
        buttons.replaceChildren();
        break;
      case "connected": {
        title.textContent = `In call with ${call.name}`;
        const mute = button("Mute", () => call.mute(!call.muted));
        mute.setAttribute("aria-pressed", "false");
        const hold = button("Hold", async () => {
          const resume = call.onHold;
          // Resuming one call holds the other in progress.
          const busy = other(call);
          if (resume && busy && busy.state === "connected" && !busy.onHold) await busy.hold(true);
          await call.hold(!resume);
        });
        hold.dataset.hold = "";
        hold.setAttribute("aria-pressed", "false");
        const keys = button("Keypad", () => {
          keypad.hidden = !keypad.hidden;
        });
        const transfer = button("Transfer", () => {
          transferForm.hidden = !transferForm.hidden;
          if (!transferForm.hidden) transferForm.querySelector("input").focus();
        });
        // The camera, on or off in the middle of the call, when the call has a video stream.
        const camera = call.videoTransceiver() ? button(call.cameraOn ? "Camera off" : "Camera on", () => call.camera(!call.cameraOn)) : null;
        if (camera) {
          camera.dataset.camera = "";
          camera.setAttribute("aria-pressed", String(call.cameraOn));
        }
        // The call with the person a held call is to be sent to (an attended transfer).
        const complete = call.consulting
          ? button("Complete transfer", async () => {
            if (await call.consulting.transferToCall(call)) complete.disabled = true;
          })
          : null;
        buttons.replaceChildren(...[mute, hold, keys, transfer, camera, complete].filter(Boolean), button("Hang up", () => call.hangUp(), "danger"));
        if (!timer) {
          timer = setInterval(async () => {
            if (!call.onHold && !call.heldByOther) status.textContent = clock(call);
            const q = await call.quality();
            if (q) {
              quality.textContent = `Round trip ${q.rttMs === null ? "–" : `${q.rttMs} ms`} · loss ${q.lossPercent.toFixed(1)}%`;
              quality.dataset.rtt = q.rttMs ?? "";
              quality.dataset.received = q.received;
              quality.dataset.keyframesAsked = q.keyframesAsked;
              quality.dataset.videoSent = q.videoSent;
            }
          }, 1000);
        }
        break;
      }
      case "ended":
        clearInterval(timer);
        title.textContent = `Call with ${call.name} ended`;
        status.textContent = detail.why || "";
        buttons.replaceChildren(button("Close", () => {
          block.remove();
          calls.delete(call);
          el.hidden = !el.children.length;
        }));
        keypad.hidden = true;
        videos.replaceChildren();
        break;
      default:
        break;
    }
    if (detail.muted !== undefined) {
      const mute = buttons.querySelector("[aria-pressed]:not([data-hold])");
      if (mute) {
        mute.setAttribute("aria-pressed", String(detail.muted));
        mute.textContent = detail.muted ? "Unmute" : "Mute";
      }
    }
    if (detail.transfer !== undefined) status.textContent = detail.transfer;
    if (detail.held !== undefined) status.textContent = detail.held ? "Held by the other side" : clock(call);
    if (detail.onHold !== undefined) {
      const hold = buttons.querySelector("[data-hold]");
      if (hold) {
        hold.textContent = detail.onHold ? "Resume" : "Hold";
        hold.setAttribute("aria-pressed", String(detail.onHold));
      }
      block.dataset.onHold = String(detail.onHold);
      status.textContent = detail.onHold ? "On hold" : clock(call);
    }
    if (detail.camera !== undefined) {
      const camera = buttons.querySelector("[data-camera]");
      if (camera) {
        camera.textContent = detail.camera ? "Camera off" : "Camera on";
        camera.setAttribute("aria-pressed", String(detail.camera));
      }
      block.dataset.camera = String(detail.camera);
      if (detail.cameraError) status.textContent = detail.cameraError;
    }
    // The other side's video: a tile while its track has frames (it goes quiet, muted, when
    // the other side turns its camera off or holds the call).
    const track = detail.track;
    if (track && track.kind === "video" && !videos.querySelector(`[data-track="${track.id}"]`)) {
      const video = h("video", { autoplay: true, playsinline: true, muted: true, class: "remote-video", "data-track": track.id });
      video.srcObject = new MediaStream([track]);
      video.hidden = track.muted;
      track.addEventListener("mute", () => { video.hidden = true; });
      track.addEventListener("unmute", () => { video.hidden = false; });
      videos.append(video);
    }
  };
  call.addEventListener("change", (event) => update(event.detail));
  update();
}

// The Phone view: the line's state and a dial pad.
export function viewPhone(render, field) {
  const state = h("p", { "data-phone-state": "" });
  if (phone) showState(state, { registered: phone.registered });
  const target = field("Number or name", { name: "target", required: true, autocomplete: "off" });
  const input = target.querySelector("input");
  const dial = (video) => (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (value) call(value, { video });
  };
  const form = h("form", { "aria-label": "Dial", onsubmit: dial(false) }, target,
    h("div", { class: "call-buttons" },
      h("button", { type: "submit" }, "Call"),
      h("button", { type: "button", onclick: dial(true) }, "Video call")));
  const clean = h("input", { type: "checkbox", id: "clean-audio", checked: !phone || phone.cleanAudio, onchange: (event) => {
    localStorage.setItem("sambung.cleanAudio", event.target.checked ? "on" : "off");
    if (phone) phone.cleanAudio = event.target.checked;
  } });
  const settings = h("p", { class: "field check" }, clean, " ",
    h("label", { for: "clean-audio" }, "Clean up my microphone (echo cancellation, noise suppression, level)"));
  const microphone = h("select", { id: "microphone", onchange: (event) => choose("microphone", event.target.value) });
  const camera = h("select", { id: "camera", onchange: (event) => choose("camera", event.target.value) });
  const devices = h("div", { class: "devices" },
    h("p", { class: "field" }, h("label", { for: "microphone" }, "Microphone"), microphone),
    h("p", { class: "field" }, h("label", { for: "camera" }, "Camera"), camera));
  render("Phone", state, form, settings, devices, h("p", { class: "muted" }, "Call a person by their username or extension, a voicemail code such as *97, or a SIP address."));
  listDevices(microphone, camera);
}

// Remembers the microphone or camera chosen for the next calls.
function choose(kind, id) {
  localStorage.setItem(`sambung.${kind}`, id);
  if (phone) phone[kind] = id;
}

// Fills the device choices (their names show once the browser allowed a call its media).
async function listDevices(microphone, camera) {
  let found = [];
  try {
    found = await navigator.mediaDevices.enumerateDevices();
  } catch {
    found = [];
  }
  for (const [select, kind, key] of [[microphone, "audioinput", "microphone"], [camera, "videoinput", "camera"]]) {
    const chosen = phone ? phone[key] : "";
    const options = found.filter((d) => d.kind === kind && d.deviceId && d.deviceId !== "default");
    select.replaceChildren(h("option", { value: "" }, "The browser's default"),
      ...options.map((d, i) => h("option", { value: d.deviceId, selected: d.deviceId === chosen }, d.label || `${kind === "audioinput" ? "Microphone" : "Camera"} ${i + 1}`)));
  }
}
