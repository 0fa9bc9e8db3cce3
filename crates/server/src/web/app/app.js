// The Sambung web app: plain JS modules, no build step. Views are chosen by the URL's
// fragment (#/signin, #/signup, #/, #/people, #/admin); the page is built with DOM calls only
// (never innerHTML), so nothing a user typed can become markup.
import * as api from "./api.js";
import { h } from "./dom.js";
import { call, startPhone, stopPhone, viewPhone } from "./calls.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const statusLine = document.getElementById("status");
let me = null;
// Live presence by account id, from the live connection.
const presence = new Map();
let live = null;

// --- small DOM helpers ---------------------------------------------------------------------

function field(label, attrs) {
  const id = `f-${attrs.name}-${Math.random().toString(36).slice(2, 8)}`;
  return h("p", { class: "field" }, h("label", { for: id }, label), h("input", { id, ...attrs }));
}

function errorBox() {
  return h("p", { class: "error", role: "alert", hidden: true });
}

function showError(box, error) {
  box.textContent = error instanceof api.ApiError ? error.message : `Something went wrong: ${error.message}`;
  box.hidden = false;
}

// A status line belongs to the view it was said for: another view clears it.
function say(text) {
  statusLine.textContent = text;
  statusLine.hidden = !text;
  statusLine.dataset.view = location.hash;
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "never";
}

// A form whose submit runs `action(values)`; errors show in the form.
function form(title, fields, submitLabel, action, extra = []) {
  const box = errorBox();
  const button = h("button", { type: "submit" }, submitLabel);
  const el = h("form", { "aria-label": title }, ...fields, box, button, ...extra);
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    box.hidden = true;
    say("");
    button.disabled = true;
    const values = Object.fromEntries(new FormData(el).entries());
    try {
      await action(values, el);
    } catch (error) {
      if (me && error instanceof api.ApiError && error.status === 401) sessionEnded();
      else showError(box, error);
    } finally {
      button.disabled = false;
    }
  });
  return el;
}

function render(title, ...content) {
  if (statusLine.dataset.view !== location.hash) say("");
  document.title = `${title} · Sambung`;
  main.replaceChildren(h("h1", {}, title), ...content);
  main.focus();
}

// --- session -------------------------------------------------------------------------------

function signedIn(session) {
  me = session.account;
  api.setCsrfToken(session.csrf_token);
  nav.hidden = false;
  document.getElementById("nav-admin").hidden = !me.admin;
  connectLive();
  startPhone(me);
}

function signedOut() {
  me = null;
  api.setCsrfToken(null);
  nav.hidden = true;
  stopPhone();
  if (live) {
    const old = live;
    live = null;
    old.close();
  }
  presence.clear();
}

// --- the live connection: presence and other changes while the page is open ---------------

function connectLive() {
  if (live) return;
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1/events`);
  live = socket;
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "presence") {
      presence.set(message.id, message.presence);
      for (const el of document.querySelectorAll(`[data-presence-of="${message.id}"]`)) showPresence(el, message.presence);
    } else if (message.type === "contacts_changed" || message.type === "resync") {
      if (["#/", "#/chat"].includes((location.hash || "#/").split("?")[0])) route();
    } else if (message.type === "message") {
      chatMessageArrived(message.message);
    } else if (message.type === "delivered") {
      for (const el of document.querySelectorAll(`[data-message-id="${message.id}"] .state`)) {
        if (el.textContent === "sent") el.textContent = "delivered";
      }
    } else if (message.type === "read") {
      chatRead(message);
    }
  });
  socket.addEventListener("close", (event) => {
    if (live !== socket) return;
    live = null;
    if (event.code === 4001) {
      sessionEnded();
    } else if (me) {
      // The server restarted or the network dropped: try again shortly.
      setTimeout(() => me && connectLive(), 3000);
    }
  });
}

const presenceWords = {
  offline: "Offline",
  available: "Available",
  ringing: "Ringing",
  in_call: "On the phone",
  dnd: "Do not disturb",
};

function showPresence(el, p) {
  el.dataset.status = p.status;
  const devices = p.devices > 1 && p.status !== "offline" ? ` · ${p.devices} devices` : "";
  el.textContent = `${presenceWords[p.status] || p.status}${devices}`;
}

function presenceBadge(id, initial) {
  const el = h("span", { class: "presence", "data-presence-of": id });
  showPresence(el, presence.get(id) || initial);
  return el;
}

function sessionEnded() {
  signedOut();
  const there = location.hash === "#/signin";
  if (!there) location.hash = "#/signin";
  say("Your session has ended. Sign in again.");
  if (there) route();
}

async function restoreSession() {
  try {
    signedIn(await api.get("/session"));
  } catch (error) {
    if (!(error instanceof api.ApiError && error.status === 401)) throw error;
    signedOut();
  }
}

function fragmentParams() {
  const query = location.hash.split("?")[1] || "";
  return new URLSearchParams(query);
}

function viewSignIn() {
  render(
    "Sign in",
    form(
      "Sign in",
      [
        field("Username", { name: "username", autocomplete: "username", required: true, autocapitalize: "none" }),
        field("Password", { name: "password", type: "password", autocomplete: "current-password", required: true }),
      ],
      "Sign in",
      async (values) => {
        signedIn(await api.post("/session", values));
        location.hash = "#/";
      },
      [h("p", {}, "No account yet? ", h("a", { href: "#/signup" }, "Sign up"), " · ",
        h("a", { href: "#/forgot" }, "Forgot your password?"))],
    ),
  );
}

function viewForgot() {
  render(
    "Forgot your password?",
    form("Password reset", [
      field("Username or email", { name: "who", required: true, autocomplete: "username", autocapitalize: "none" }),
    ], "Mail me a link", async (values, el) => {
      await api.post("/password-reset", values);
      el.reset();
      say("If that account has an email address, a link to choose a new password is on its way. It works for an hour.");
    }, [h("p", {}, h("a", { href: "#/signin" }, "Back to sign in"))]),
  );
}

function viewReset() {
  // The code came in the fragment of the mailed link; take it out of the address bar.
  const code = fragmentParams().get("code") || "";
  if (code) history.replaceState(null, "", "#/reset");
  render(
    "Choose a new password",
    form("New password", [
      field("New password", { name: "new_password", type: "password", autocomplete: "new-password", required: true, minlength: 8 }),
    ], "Set password", async (values) => {
      await api.post("/password-reset/complete", { code, new_password: values.new_password });
      location.hash = "#/signin";
      say("Your password is changed. Sign in with it (your phones need it too).");
    }),
  );
}

async function viewSignUp() {
  const policy = await api.get("/signup");
  if (policy.mode === "closed") {
    render(
      "Sign up",
      h("p", { class: "notice" }, "Sign-up is closed on this server. Ask its administrator for an account."),
      h("p", {}, h("a", { href: "#/signin" }, "Sign in")),
    );
    return;
  }
  // An invitation link carries its code in the fragment; take it out of the address bar.
  const invitation = fragmentParams().get("invitation") || "";
  if (invitation) history.replaceState(null, "", "#/signup");
  const fields = [
    field("Username", { name: "username", autocomplete: "username", required: true, autocapitalize: "none",
      pattern: "[a-z0-9._\\-]{1,64}", title: "1 to 64 characters: a-z, 0-9, dot, underscore, hyphen" }),
    field("Password", { name: "password", type: "password", autocomplete: "new-password", required: true, minlength: 8 }),
    field("Email (optional, for voicemail and password reset)", { name: "email", type: "email", autocomplete: "email" }),
    field("Display name (optional)", { name: "display_name", autocomplete: "name" }),
  ];
  if (policy.mode === "invite") {
    fields.push(field("Invitation code", { name: "invitation", required: true, value: invitation }));
  }
  render(
    "Sign up",
    form("Sign up", fields, "Create account", async (values) => {
      for (const key of ["email", "display_name", "invitation"]) if (!values[key]) delete values[key];
      signedIn(await api.post("/signup", values));
      location.hash = "#/account";
      say(`Welcome, ${me.display_name}. Your account works on SIP phones too.`);
    }, [h("p", {}, "Have an account? ", h("a", { href: "#/signin" }, "Sign in"))]),
  );
}

// --- chat ----------------------------------------------------------------------------------

// The conversation on screen: its peer's username, and the newest message id read.
let openChat = null;

function messageState(m) {
  if (m.from !== me.username) return "";
  return m.read ? "read" : m.delivered ? "delivered" : "sent";
}

function messageItem(m) {
  const mine = m.from === me.username;
  const text = m.text || `(${m.content_type})`;
  const body = m.clip_id
    ? h("span", { class: "text voice" }, "Voice message ",
      h("audio", { controls: true, preload: "metadata", src: `/api/v1/clips/${m.clip_id}`, "aria-label": `Voice message from ${m.from}` }))
    : h("span", { class: "text" }, text);
  return h("li", { class: mine ? "message mine" : "message", "data-message-id": m.id },
    h("span", { class: "who" }, mine ? "You" : m.from), " ",
    body, " ",
    h("time", { datetime: new Date(m.created_at * 1000).toISOString() }, new Date(m.created_at * 1000).toLocaleTimeString()),
    mine ? h("span", { class: "state" }, messageState(m)) : "");
}

async function viewChats() {
  const peer = fragmentParams().get("with");
  if (peer) return viewConversation(peer);
  openChat = null;
  const list = h("ul", { class: "conversations", id: "conversations" });
  render("Chat", list);
  const pageOf = await api.get("/me/conversations?limit=100");
  if (!pageOf.items.length) {
    list.replaceWith(h("p", { id: "conversations" }, "No conversations yet. Start one from your contacts."));
    return;
  }
  list.replaceChildren(...pageOf.items.map((c) =>
    h("li", { "data-peer": c.peer },
      h("a", { href: `#/chat?with=${encodeURIComponent(c.peer)}` }, c.peer_display_name),
      c.unread ? h("span", { class: "unread", "aria-label": `${c.unread} unread` }, String(c.unread)) : "",
      h("br"), h("span", { class: "snippet" }, `${c.last.from === me.username ? "You: " : ""}${c.last.text}`))));
}

async function viewConversation(peer) {
  openChat = { peer, newest: 0 };
  const list = h("ol", { class: "messages", id: "messages", "aria-live": "polite" });
  const older = h("button", { type: "button", hidden: true }, "Older messages");
  let cursor = null;
  const loadOlder = async () => {
    const pageOf = await api.page(`/me/conversations/${encodeURIComponent(peer)}/messages?limit=50`, cursor);
    cursor = pageOf.next_cursor;
    older.hidden = !cursor;
    list.prepend(...pageOf.items.slice().reverse().map(messageItem));
    return pageOf.items;
  };
  older.addEventListener("click", loadOlder);
  const composer = form("Write a message", [
    field("Message", { name: "text", required: true, maxlength: 1300, autocomplete: "off" }),
  ], "Send", async (values, el) => {
    const sent = await api.post(`/me/conversations/${encodeURIComponent(peer)}/messages`, values);
    el.reset();
    if (!list.querySelector(`[data-message-id="${sent.id}"]`)) list.append(messageItem(sent));
  });
  const recorder = voiceRecorder(peer, (sent) => {
    if (!list.querySelector(`[data-message-id="${sent.id}"]`)) list.append(messageItem(sent));
  });
  render(`Chat with ${peer}`, h("p", {}, h("a", { href: "#/chat" }, "All conversations")), older, list, composer, recorder);
  const items = await loadOlder();
  const fromPeer = items.filter((m) => m.from === peer);
  if (fromPeer.length) await markRead(peer, fromPeer[0].id);
}

// A button that records a voice message from the microphone (MediaRecorder) and sends it.
function voiceRecorder(peer, sent) {
  const box = errorBox();
  const button = h("button", { type: "button", class: "record" }, "Record a voice message");
  let recording = null;
  button.addEventListener("click", async () => {
    box.hidden = true;
    if (recording) {
      recording.recorder.stop();
      return;
    }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const recorder = new MediaRecorder(stream);
      const chunks = [];
      const started = performance.now();
      recording = { recorder };
      recorder.addEventListener("dataavailable", (e) => e.data.size && chunks.push(e.data));
      recorder.addEventListener("stop", async () => {
        stream.getTracks().forEach((t) => t.stop());
        recording = null;
        button.textContent = "Record a voice message";
        const duration = Math.max(1, Math.round(performance.now() - started));
        const blob = new Blob(chunks, { type: recorder.mimeType.split(";")[0] || "audio/webm" });
        try {
          sent(await api.upload(`/me/conversations/${encodeURIComponent(peer)}/voice?duration_ms=${duration}`, blob));
          say("Voice message sent.");
        } catch (error) {
          showError(box, error);
        }
      });
      recorder.start();
      button.textContent = "Stop and send";
    } catch (error) {
      recording = null;
      showError(box, error);
    }
  });
  return h("div", { class: "recorder" }, button, box);
}

// A voice message opened from a link (a phone got the link by SIP MESSAGE).
async function viewClip() {
  const id = Number(fragmentParams().get("id"));
  render("Voice message",
    h("audio", { controls: true, preload: "metadata", src: `/api/v1/clips/${id}`, "aria-label": "Voice message" }),
    h("p", {}, h("a", { href: "#/chat" }, "Your conversations")));
}

async function markRead(peer, id) {
  if (!openChat || openChat.peer !== peer || id <= openChat.newest) return;
  openChat.newest = id;
  await api.post(`/me/conversations/${encodeURIComponent(peer)}/read`, { up_to: id });
}

function chatMessageArrived(m) {
  const path = (location.hash || "#/").split("?")[0];
  const peer = m.from === me.username ? m.to : m.from;
  if (path === "#/chat" && openChat && openChat.peer === peer) {
    const list = document.getElementById("messages");
    if (list && !list.querySelector(`[data-message-id="${m.id}"]`)) list.append(messageItem(m));
    if (m.from === peer) markRead(peer, m.id).catch(() => {});
  } else if (path === "#/chat" && !openChat) {
    viewChats();
  } else if (m.from !== me.username) {
    say(`New message from ${m.from}: ${m.text}`);
  }
}

function chatRead(read) {
  if (read.reader === me.id) return;
  for (const el of document.querySelectorAll(".message.mine")) {
    if (Number(el.dataset.messageId) <= read.up_to) el.querySelector(".state").textContent = "read";
  }
}

// --- account -------------------------------------------------------------------------------

function definitionList(rows) {
  return h("dl", { class: "facts" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}

// --- contacts ------------------------------------------------------------------------------

async function viewContacts() {
  const list = h("ul", { class: "contacts", id: "contacts" });
  render(
    "Contacts",
    h("p", {}, "People you added, and whether they are online. Find more in ", h("a", { href: "#/people" }, "People"), "."),
    list,
  );
  let cursor = null;
  const items = [];
  do {
    const pageOf = await api.page("/me/contacts?limit=100", cursor);
    items.push(...pageOf.items);
    cursor = pageOf.next_cursor;
  } while (cursor);
  if (!items.length) {
    list.replaceWith(h("p", { id: "contacts" }, "No contacts yet."));
    return;
  }
  list.replaceChildren(...items.map((c) => {
    const nickname = form(`Nickname for ${c.username}`, [
      field("Nickname", { name: "nickname", value: c.nickname ?? "", maxlength: 64 }),
    ], "Save", async (values) => {
      await api.put(`/me/contacts/${encodeURIComponent(c.username)}`, values);
      say(`Saved the nickname of ${c.username}.`);
      await viewContacts();
    });
    nickname.classList.add("inline");
    return h("li", { class: "contact", "data-username": c.username },
      presenceBadge(c.id, c.presence),
      h("strong", { class: "name" }, c.nickname || c.display_name),
      ` ${c.username}`, c.extension ? ` · extension ${c.extension}` : "",
      h("br"), h("code", {}, c.sip_uri), " ",
      h("a", { href: `#/chat?with=${encodeURIComponent(c.username)}` }, `Message ${c.username}`), " ",
      h("button", { type: "button", class: "small", onclick: () => call(c.username) }, `Call ${c.username}`), " ",
      h("button", { type: "button", class: "small", onclick: () => call(c.username, { video: true }) }, `Video call ${c.username}`),
      h("details", {}, h("summary", {}, "Edit"), nickname,
        h("button", { type: "button", class: "danger", onclick: async () => {
          await api.del(`/me/contacts/${encodeURIComponent(c.username)}`);
          say(`${c.username} removed from your contacts.`);
          await viewContacts();
        } }, `Remove ${c.username}`)));
  }));
}

// --- account -------------------------------------------------------------------------------

async function viewAccount() {
  const tokens = h("div", { id: "tokens" });
  const queueLogin = h("section", { "aria-labelledby": "h-queues", id: "queues-login", hidden: true });
  const recordings = h("div", { id: "recordings" });
  const devices = h("div", { id: "devices" });
  const calls = h("div", { id: "calls" });
  const settings = await api.get("/me/settings");
  const target = (label, name) => field(label, { name, value: settings[name] ?? "", placeholder: "username, extension or sip: address" });
  const check = (label, name) => h("p", { class: "field check" },
    h("label", {}, h("input", { type: "checkbox", name, value: "true", checked: settings[name] }), ` ${label}`));
  const settingsForm = form("Call settings", [
    target("Forward every call to", "forward_always"),
    target("When busy, forward to", "forward_busy"),
    target("When not answered, forward to", "forward_no_answer"),
    target("When offline, forward to", "forward_offline"),
    field("Ring for (seconds)", { name: "no_answer_secs", type: "number", min: 5, max: 300, value: settings.no_answer_secs, required: true }),
    check("Do not disturb", "dnd"),
    check("Voicemail", "voicemail"),
    field("Send voicemail to (email; empty: your account's)", { name: "voicemail_email", type: "email", value: settings.voicemail_email ?? "" }),
    check("Attach the recording to the email", "voicemail_attach"),
    check("Email me voice messages too, with the recording", "voice_messages_email"),
  ], "Save call settings", async (values) => {
    const body = {
      forward_always: values.forward_always || null,
      forward_busy: values.forward_busy || null,
      forward_no_answer: values.forward_no_answer || null,
      forward_offline: values.forward_offline || null,
      no_answer_secs: Number(values.no_answer_secs),
      dnd: values.dnd === "true",
      voicemail: values.voicemail === "true",
      voicemail_email: values.voicemail_email || null,
      voicemail_attach: values.voicemail_attach === "true",
      voice_messages_email: values.voice_messages_email === "true",
    };
    await api.put("/me/settings", body);
    say("Call settings saved. The next call follows them.");
  });
  render(
    me.display_name,
    h("section", { "aria-labelledby": "h-profile" },
      h("h2", { id: "h-profile" }, "Your account"),
      definitionList([
        ["Username", me.username],
        ["Display name", me.display_name],
        ["Email", me.email],
        ["Extension", me.extension],
        ["Role", me.admin ? "administrator" : "user"],
      ])),
    h("section", { "aria-labelledby": "h-phone" },
      h("h2", { id: "h-phone" }, "Use a SIP phone"),
      h("p", {}, "Any SIP phone or softphone (Linphone, baresip, Zoiper, desk phones) signs in with:"),
      definitionList([
        ["SIP address", me.sip_uri],
        ["User name", me.username],
        ["Password", "your password"],
        ["Domain / realm", me.realm],
      ])),
    h("section", { "aria-labelledby": "h-settings" },
      h("h2", { id: "h-settings" }, "Calls"),
      settingsForm),
    h("section", { "aria-labelledby": "h-pin" },
      h("h2", { id: "h-pin" }, "Voicemail PIN"),
      h("p", {}, "For your mailbox from another phone. From your own phones, dial *97."),
      form("Voicemail PIN", [
        field("New PIN (4 to 12 digits)", { name: "pin", type: "password", inputmode: "numeric", required: true, pattern: "[0-9]{4,12}", autocomplete: "off" }),
      ], "Set PIN", async (values, el) => {
        await api.put("/me/pin", values);
        el.reset();
        say("Voicemail PIN set.");
      })),
    h("section", { "aria-labelledby": "h-devices" }, h("h2", { id: "h-devices" }, "Devices online"), devices),
    h("section", { "aria-labelledby": "h-calls" }, h("h2", { id: "h-calls" }, "Recent calls"), calls),
    queueLogin,
    h("section", { "aria-labelledby": "h-recordings" }, h("h2", { id: "h-recordings" }, "Recorded calls"), recordings),
    h("section", { "aria-labelledby": "h-password" },
      h("h2", { id: "h-password" }, "Change password"),
      form("Change password", [
        field("Current password", { name: "current_password", type: "password", autocomplete: "current-password", required: true }),
        field("New password", { name: "new_password", type: "password", autocomplete: "new-password", required: true, minlength: 8 }),
      ], "Change password", async (values, el) => {
        await api.put("/me/password", values);
        el.reset();
        say("Password changed. Phones need the new password too; other browsers were signed out.");
      })),
    h("section", { "aria-labelledby": "h-tokens" },
      h("h2", { id: "h-tokens" }, "API tokens"),
      h("p", {}, "For scripts and other software: send ", h("code", {}, "Authorization: Bearer <token>"), "."),
      form("New API token", [
        field("Token name", { name: "name", required: true, maxlength: 64 }),
      ], "Create token", async (values, el) => {
        const created = await api.post("/me/tokens", values);
        el.reset();
        tokens.before(h("p", { class: "secret", role: "alert" },
          "Copy this token now, it is not shown again: ", h("code", { class: "token-secret" }, created.secret)));
        await loadTokens(tokens);
      }),
      tokens),
  );
  await Promise.all([loadTokens(tokens), loadDevices(devices), loadCalls(calls), loadQueueLogin(queueLogin), loadRecordings(recordings)]);
}

// --- call queues and recordings --------------------------------------------------------------

/// The signed-in agent's login to its queues, with a button to change it; hidden for anyone
/// who is no queue's agent.
async function loadQueueLogin(section) {
  let login;
  try {
    login = await api.get("/me/queue-login");
  } catch (error) {
    if (error.status === 404) return;
    throw error;
  }
  const toggle = h("button", { type: "button", id: "queue-login-toggle", onclick: async () => {
    await api.put("/me/queue-login", { logged_in: !login.logged_in });
    say(login.logged_in ? "Logged out of your queues." : "Logged in to your queues.");
    section.replaceChildren();
    await loadQueueLogin(section);
  } }, login.logged_in ? "Log out of the queues" : "Log in to the queues");
  section.replaceChildren(
    h("h2", { id: "h-queues" }, "Call queues"),
    h("p", { id: "queue-login" }, `You are ${login.logged_in ? "logged in to" : "logged out of"} ${login.queues.join(", ")}. From a phone: *45 logs in, *46 logs out.`),
    toggle);
  section.hidden = false;
}

/// Recorded calls: the caller's own, or every one on the administration page.
async function loadRecordings(container) {
  const pageOf = await api.get("/recordings?limit=100");
  if (!pageOf.items.length) {
    container.replaceChildren(h("p", { id: "recordings-list" }, "None."));
    return;
  }
  container.replaceChildren(h("ul", { id: "recordings-list" }, pageOf.items.map((r) => h("li", { "data-recording": r.id },
    h("strong", {}, `${r.caller} → ${r.callee}`), ` · ${when(r.started_at)} · ${Math.round(r.duration_secs)} s · `,
    h("a", { href: r.audio_url, download: `call-${r.call}.wav` }, "Download"),
    h("br"),
    h("audio", { controls: true, preload: "none", src: r.audio_url, "aria-label": `Recording of ${r.caller} and ${r.callee}` }),
    " ",
    h("button", { type: "button", class: "danger", onclick: async () => {
      await api.del(`/recordings/${r.id}`);
      say("Recording deleted.");
      await loadRecordings(container);
    } }, "Delete")))));
}

/// Each queue's callers, figures and agents, for administrators.
function queuesSection(queues) {
  if (!queues.length) return "";
  const agent = (a) => `${a.username}: ${a.state}${a.state === "idle" ? ` ${a.idle_secs} s` : ""}, ${a.calls} calls`;
  return h("section", { "aria-labelledby": "h-queues-admin" },
    h("h2", { id: "h-queues-admin" }, "Call queues"),
    h("table", { id: "queues" },
      h("thead", {}, h("tr", {}, ["Queue", "Waiting", "Oldest wait", "Answered", "Abandoned", "Average wait", "Agents"]
        .map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, queues.map((q) => h("tr", { "data-queue": q.name },
        h("td", {}, `${q.name} (${q.strategy})`), h("td", {}, String(q.waiting)), h("td", {}, `${q.oldest_wait_secs} s`),
        h("td", {}, String(q.stats.answered)), h("td", {}, String(q.stats.abandoned)),
        h("td", {}, `${q.average_wait_secs} s`), h("td", {}, q.agents.map(agent).join("; ")))))));
}

async function loadDevices(container) {
  const pageOf = await api.get("/me/devices?limit=100");
  container.replaceChildren(pageOf.items.length
    ? h("ul", {}, pageOf.items.map((d) => {
      const name = d.user_agent || "SIP device";
      const item = h("li", {}, h("strong", {}, name), ` from ${d.source}`,
        h("br"), h("code", {}, d.contact), ` · registered until ${when(d.expires_at)} `,
        h("button", { type: "button", class: "danger", "aria-label": `Sign out the device ${name} at ${d.contact}`, onclick: async () => {
          await api.del(`/me/devices/${encodeURIComponent(d.device)}`);
          item.remove();
          say(`${name} is signed out. A phone that keeps your password registers again at its next refresh: change the password to keep it out.`);
        } }, "Sign out"));
      return item;
    }))
    : h("p", {}, "No device is registered."));
}

async function loadCalls(container) {
  const pageOf = await api.get("/me/calls?limit=20");
  container.replaceChildren(pageOf.items.length
    ? h("table", {},
      h("thead", {}, h("tr", {}, ["When", "", "With", "Result", "Quality"].map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, pageOf.items.map((c) => h("tr", {},
        h("td", {}, when(c.started_at)), h("td", {}, c.direction === "outgoing" ? "to" : "from"), h("td", {}, c.other),
        h("td", {}, c.answered_at ? `${c.duration_secs} s` : `${c.status} ${c.reason}`),
        h("td", { title: "Estimated MOS, 1 to 4.5" }, c.mos == null ? "" : `MOS ${c.mos.toFixed(1)}`)))))
    : h("p", {}, "No calls yet."));
}

// --- voicemail -----------------------------------------------------------------------------

// A recording (any format the browser plays) as a 16-bit mono WAV file at 48 kHz (a rate the
// server plays without a fractional resampler), for the greeting.
async function toWav(blob) {
  const context = new AudioContext({ sampleRate: 48000 });
  const audio = await context.decodeAudioData(await blob.arrayBuffer());
  context.close();
  const samples = audio.getChannelData(0);
  const out = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const text = (at, s) => [...s].forEach((c, i) => out.setUint8(at + i, c.charCodeAt(0)));
  text(0, "RIFF"); out.setUint32(4, 36 + samples.length * 2, true); text(8, "WAVEfmt ");
  out.setUint32(16, 16, true); out.setUint16(20, 1, true); out.setUint16(22, 1, true);
  out.setUint32(24, audio.sampleRate, true); out.setUint32(28, audio.sampleRate * 2, true);
  out.setUint16(32, 2, true); out.setUint16(34, 16, true); text(36, "data"); out.setUint32(40, samples.length * 2, true);
  samples.forEach((v, i) => out.setInt16(44 + i * 2, Math.max(-1, Math.min(1, v)) * 0x7fff, true));
  return new Blob([out], { type: "audio/wav" });
}

async function putGreeting(wav) {
  const response = await fetch("/api/v1/me/greeting", {
    method: "PUT",
    headers: { "Content-Type": "audio/wav", "X-CSRF-Token": api.csrf() },
    body: wav,
    credentials: "same-origin",
  });
  if (!response.ok) throw new api.ApiError(response.status, await response.json().catch(() => ({})));
}

function greetingSection() {
  const box = errorBox();
  const player = h("div", { id: "greeting" });
  const show = async () => {
    const has = (await fetch("/api/v1/me/greeting", { method: "HEAD", credentials: "same-origin" })).ok;
    player.replaceChildren(has
      ? h("p", {}, "Your greeting: ", h("audio", { controls: true, preload: "metadata", src: `/api/v1/me/greeting?${Date.now()}`, "aria-label": "Your greeting" }),
        " ", h("button", { type: "button", class: "danger", onclick: async () => {
          await api.del("/me/greeting");
          say("Greeting removed: callers hear the default one.");
          await show();
        } }, "Remove greeting"))
      : h("p", {}, "Callers hear the default greeting."));
  };
  const record = h("button", { type: "button", class: "record" }, "Record a greeting");
  let recording = null;
  record.addEventListener("click", async () => {
    box.hidden = true;
    if (recording) return recording.stop();
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const recorder = new MediaRecorder(stream);
      const chunks = [];
      recorder.addEventListener("dataavailable", (e) => e.data.size && chunks.push(e.data));
      recorder.addEventListener("stop", async () => {
        stream.getTracks().forEach((t) => t.stop());
        recording = null;
        record.textContent = "Record a greeting";
        try {
          await putGreeting(await toWav(new Blob(chunks, { type: recorder.mimeType })));
          say("Greeting saved: callers hear it from the next call.");
          await show();
        } catch (error) {
          showError(box, error);
        }
      });
      recorder.start();
      recording = recorder;
      record.textContent = "Stop and save the greeting";
    } catch (error) {
      showError(box, error);
    }
  });
  const upload = form("Upload a greeting", [field("Greeting (an audio file)", { name: "file", type: "file", accept: "audio/*", required: true })],
    "Upload", async (values, el) => {
      await putGreeting(await toWav(values.file));
      el.reset();
      say("Greeting saved: callers hear it from the next call.");
      await show();
    });
  show();
  return h("section", { "aria-labelledby": "h-greeting" }, h("h2", { id: "h-greeting" }, "Greeting"), player, record, box, upload);
}

async function viewVoicemail() {
  const list = h("ul", { class: "voicemail", id: "voicemail" });
  render("Voicemail", list, greetingSection());
  const pageOf = await api.get("/me/voicemail?limit=100");
  if (!pageOf.items.length) {
    list.replaceWith(h("p", { id: "voicemail" }, "No messages."));
    return;
  }
  list.replaceChildren(...pageOf.items.map((v) => {
    const from = v.caller_name ? `${v.caller_name} (${v.caller_number ?? v.caller_uri})` : v.caller_number ?? v.caller_uri;
    return h("li", { class: `message-${v.state}`, "data-voicemail": v.id },
      h("strong", {}, from), ` · ${when(v.created_at)} · ${Math.round(v.duration_ms / 1000)} s · ${v.state}`,
      h("br"),
      h("audio", { controls: true, preload: "none", src: `/api/v1/me/voicemail/${v.id}/audio`, "aria-label": `Message from ${from}` }),
      h("br"),
      v.state === "new" ? h("button", { type: "button", onclick: async () => {
        await api.call("PATCH", `/me/voicemail/${v.id}`, { state: "saved" });
        await viewVoicemail();
      } }, "Save") : "",
      " ",
      (() => {
        const forward = form(`Forward the message from ${from}`, [
          field("Forward as a voice message to (username)", { name: "to", required: true, autocapitalize: "none" }),
        ], "Forward", async (values, el) => {
          await api.post(`/me/voicemail/${v.id}/forward`, values);
          el.reset();
          say(`Forwarded to ${values.to} as a voice message.`);
        });
        forward.classList.add("inline");
        return h("details", {}, h("summary", {}, "Forward"), forward);
      })(),
      h("button", { type: "button", class: "danger", onclick: async () => {
        await api.del(`/me/voicemail/${v.id}`);
        say("Message deleted.");
        await viewVoicemail();
      } }, "Delete"));
  }));
}

async function loadTokens(container, cursor) {
  const pageOf = await api.page("/me/tokens", cursor);
  const rows = pageOf.items.map((t) =>
    h("tr", {},
      h("td", {}, t.name), h("td", {}, h("code", {}, `${t.prefix}…`)), h("td", {}, when(t.created_at)),
      h("td", {}, when(t.last_used_at)),
      h("td", {}, h("button", { type: "button", class: "danger", "aria-label": `Revoke ${t.name}`, onclick: async () => {
        await api.del(`/me/tokens/${t.id}`);
        say(`Token ${t.name} revoked.`);
        await loadTokens(container);
      } }, "Revoke"))));
  const table = rows.length
    ? h("table", {}, h("thead", {}, h("tr", {}, ["Name", "Token", "Made", "Last used", ""].map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows))
    : h("p", {}, "No tokens.");
  if (cursor) container.append(table);
  else container.replaceChildren(table);
  if (pageOf.next_cursor) {
    container.append(h("button", { type: "button", onclick: (e) => { e.target.remove(); loadTokens(container, pageOf.next_cursor); } }, "More"));
  }
}

// --- people --------------------------------------------------------------------------------

function viewPeople() {
  const results = h("div", { id: "people-results", "aria-live": "polite" });
  render(
    "People",
    form("Find people", [
      field("Name, username or extension", { name: "q", type: "search", required: true, maxlength: 64 }),
    ], "Search", async (values) => {
      const found = await api.get(`/directory?q=${encodeURIComponent(values.q)}`);
      results.replaceChildren(found.items.length
        ? h("ul", { class: "people" }, found.items.map((p) =>
          h("li", {}, h("strong", {}, p.display_name), ` (${p.username})`,
            p.extension ? ` · extension ${p.extension}` : "", h("br"), h("code", {}, p.sip_uri), " ",
            p.username === me.username ? "" : h("button", { type: "button", onclick: async (event) => {
              await api.put(`/me/contacts/${encodeURIComponent(p.username)}`, {});
              event.target.replaceWith(h("span", {}, "Added to your contacts."));
            } }, `Add ${p.username}`))))
        : h("p", {}, "Nobody found."));
    }),
    results,
  );
}

// --- administration ------------------------------------------------------------------------

async function viewAdmin() {
  if (!me.admin) {
    render("Administration", h("p", {}, "Only administrators see this page."));
    return;
  }
  const users = h("div", { id: "users" });
  const invitations = h("div", { id: "invitations" });
  const [status, registrations, calls, queues] = await Promise.all([
    api.get("/status"), api.get("/registrations?limit=100"), api.get("/calls/live?limit=100"), api.get("/queues"),
  ]);
  const recordings = h("div", { id: "all-recordings" });
  const hours = (s) => `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  render(
    "Administration",
    h("section", { "aria-labelledby": "h-status" },
      h("h2", { id: "h-status" }, "Server"),
      definitionList([
        ["Version", status.version],
        ["Up for", hours(status.uptime_secs)],
        ["Database", status.database],
        ["Accounts", `${status.accounts} (${status.accounts_online} online)`],
        ["Registered devices", String(status.registrations)],
        ["Calls in progress", String(status.calls_in_progress)],
      ]),
      h("h3", {}, "Calls in progress"),
      calls.items.length
        ? h("ul", { id: "live-calls" }, calls.items.map((c) => h("li", {},
          c.parties.map((p) => `${p.username} (${p.role}${p.answered ? "" : ", ringing"})`).join(" → "))))
        : h("p", { id: "live-calls" }, "None."),
      h("h3", {}, "Registered devices"),
      registrations.items.length
        ? h("table", { id: "registrations" },
          h("thead", {}, h("tr", {}, ["User", "Device", "From", "Until"].map((x) => h("th", { scope: "col" }, x)))),
          h("tbody", {}, registrations.items.map((r) => h("tr", {},
            h("td", {}, r.username), h("td", {}, r.user_agent || r.contact), h("td", {}, r.source), h("td", {}, when(r.expires_at))))))
        : h("p", { id: "registrations" }, "None.")),
    queuesSection(queues),
    h("section", { "aria-labelledby": "h-all-recordings" }, h("h2", { id: "h-all-recordings" }, "Recorded calls"), recordings),
    h("section", { "aria-labelledby": "h-new-user" },
      h("h2", { id: "h-new-user" }, "New account"),
      form("New account", [
        field("Username", { name: "username", required: true, autocapitalize: "none" }),
        field("Password", { name: "password", type: "password", autocomplete: "new-password", required: true }),
        field("Display name", { name: "display_name" }),
        field("Email", { name: "email", type: "email" }),
        field("Extension", { name: "extension", inputmode: "numeric", pattern: "[0-9]{2,10}" }),
        h("p", { class: "field check" }, h("label", {}, h("input", { type: "checkbox", name: "admin", value: "true" }), " Administrator")),
      ], "Create account", async (values, el) => {
        values.admin = values.admin === "true";
        for (const key of ["email", "display_name", "extension"]) if (!values[key]) delete values[key];
        const made = await api.post("/users", values);
        el.reset();
        say(`Account ${made.username} made.`);
        await loadUsers(users);
      })),
    h("section", { "aria-labelledby": "h-invite" },
      h("h2", { id: "h-invite" }, "Invitations"),
      form("New invitation", [field("For (email, optional)", { name: "email", type: "email" })], "Invite", async (values, el) => {
        if (!values.email) delete values.email;
        const made = await api.post("/invitations", values);
        el.reset();
        const link = new URL(made.link, location.origin).href;
        invitations.before(h("p", { class: "secret", role: "alert" }, "Send this link (shown only now): ", h("code", { class: "invitation-link" }, link)));
        await loadInvitations(invitations);
      }),
      invitations),
    h("section", { "aria-labelledby": "h-import" },
      h("h2", { id: "h-import" }, "Import accounts"),
      h("p", {}, "A CSV file: a header line (username, password; optional display_name, email, extension, admin), then one account per line. If any line is refused, none is imported."),
      form("Import accounts", [field("CSV file", { name: "file", type: "file", accept: ".csv,text/csv", required: true })],
        "Import", async (values, el) => {
          const csv = new Blob([await values.file.text()], { type: "text/csv" });
          const data = await api.upload("/users/import", csv);
          el.reset();
          say(`Imported ${data.imported} accounts.`);
          await loadUsers(users);
        })),
    h("section", { "aria-labelledby": "h-users" }, h("h2", { id: "h-users" }, "Accounts"), users),
  );
  await Promise.all([loadUsers(users), loadInvitations(invitations), loadRecordings(recordings)]);
}

async function loadUsers(container, cursor) {
  const pageOf = await api.page("/users?limit=50", cursor);
  const table = h("table", {},
    h("thead", {}, h("tr", {}, ["Username", "Name", "Extension", "Email", "Role", "State", ""].map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, pageOf.items.map((u) => h("tr", { "data-user": u.username },
      h("td", {}, u.username), h("td", {}, u.display_name), h("td", {}, u.extension ?? "—"), h("td", {}, u.email ?? "—"),
      h("td", {}, u.admin ? "admin" : "user"), h("td", {}, u.disabled ? "disabled" : "active"),
      h("td", {},
        u.username === me.username ? "" : h("button", { type: "button", class: "small", "aria-label": `${u.disabled ? "Enable" : "Disable"} ${u.username}`, onclick: async () => {
          await api.call("PATCH", `/users/${encodeURIComponent(u.username)}`, { disabled: !u.disabled });
          say(`${u.username} ${u.disabled ? "enabled" : "disabled"}.`);
          await loadUsers(container);
        } }, u.disabled ? "Enable" : "Disable"), " ",
        h("button", { type: "button", class: "small", "aria-label": `Reset password of ${u.username}`, onclick: async () => {
          const password = prompt(`New password for ${u.username}`);
          if (!password) return;
          try {
            await api.call("PATCH", `/users/${encodeURIComponent(u.username)}`, { password });
            say(`The password of ${u.username} was reset; their browsers are signed out.`);
          } catch (error) {
            say(error.message);
          }
        } }, "Reset password"))))));
  if (cursor) container.append(table);
  else container.replaceChildren(table);
  if (pageOf.next_cursor) {
    container.append(h("button", { type: "button", onclick: (e) => { e.target.remove(); loadUsers(container, pageOf.next_cursor); } }, "More"));
  }
}

async function loadInvitations(container) {
  const pageOf = await api.page("/invitations?limit=20");
  container.replaceChildren(pageOf.items.length
    ? h("ul", {}, pageOf.items.map((i) => h("li", {},
      `${i.email ?? "(no email)"} · made ${when(i.created_at)} · `,
      i.used_at ? `used ${when(i.used_at)}` : `valid until ${when(i.expires_at)}`)))
    : h("p", {}, "No invitations."));
}

// --- routing -------------------------------------------------------------------------------

const publicViews = { "#/signin": viewSignIn, "#/signup": viewSignUp, "#/forgot": viewForgot, "#/reset": viewReset };
const privateViews = {
  "#/": viewContacts,
  "#/chat": viewChats,
  "#/phone": () => viewPhone(render, field),
  "#/account": viewAccount,
  "#/voicemail": viewVoicemail,
  "#/clip": viewClip,
  "#/people": viewPeople,
  "#/admin": viewAdmin,
};

async function route() {
  const path = (location.hash || "#/").split("?")[0];
  try {
    if (publicViews[path]) {
      if (me && path === "#/signin") {
        location.hash = "#/";
        return;
      }
      await publicViews[path]();
      return;
    }
    if (!me) {
      location.hash = "#/signin";
      return;
    }
    await (privateViews[path] || viewContacts)();
  } catch (error) {
    if (error instanceof api.ApiError && error.status === 401) {
      sessionEnded();
      return;
    }
    const box = errorBox();
    showError(box, error);
    main.replaceChildren(box);
  }
}

document.getElementById("sign-out").addEventListener("click", async () => {
  try {
    await api.del("/session");
  } finally {
    signedOut();
    location.hash = "#/signin";
    say("Signed out.");
  }
});

window.addEventListener("hashchange", route);

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").catch(() => {});
}

await restoreSession();
await route();
