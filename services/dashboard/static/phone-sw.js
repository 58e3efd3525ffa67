// Service worker of the phone page (scope /phone/): the page opens from the home screen even on a flaky
// network. Network first for the page and its files, the cached copy when offline; never the API.
"use strict";

const CACHE = "maskwatch-phone-v1";
const SHELL = ["/phone/", "/static/app.css", "/static/phone.css", "/static/phone.js", "/phone/manifest.webmanifest",
               "/static/phone-icon-192.png", "/static/phone-icon-512.png"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin || !SHELL.includes(url.pathname)) return;
  event.respondWith(fetch(event.request)
    .then((response) => {
      const copy = response.clone();
      if (response.ok) caches.open(CACHE).then((cache) => cache.put(url.pathname, copy));
      return response;
    })
    .catch(() => caches.match(url.pathname)));
});
