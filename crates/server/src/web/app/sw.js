// The app's service worker: it makes the app installable and keeps its shell (never the API)
// for when the network is gone. Every file is fetched from the network first, so an upgraded
// server serves its new app at once.
const CACHE = "sambung-shell-v2";
const SHELL = ["/", "/app/app.js", "/app/api.js", "/app/dom.js", "/app/phone.js", "/app/calls.js", "/app/style.css", "/app/icon.svg", "/manifest.webmanifest"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k)))),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin || !SHELL.includes(url.pathname)) {
    return;
  }
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        const copy = response.clone();
        caches.open(CACHE).then((cache) => cache.put(event.request, copy));
        return response;
      })
      .catch(() => caches.match(event.request)),
  );
});
