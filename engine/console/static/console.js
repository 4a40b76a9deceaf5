// Fleetplane console: the project selector, and live list updates over Server-Sent Events.
// Hand-written, no dependencies. A page marks its live region
// `<div id="live" data-live="dev.fleetplane.<kind> ..." data-live-project="<project>">` (and
// `data-live-name="<name>"` on a page about one object); when `/v1/events` (same origin, the
// session cookie authenticates) reports a change of one of those kinds at tenant scope or in that
// project (of that object), the region is re-fetched from the server.
(function () {
  "use strict";
  var root = document.documentElement;
  var select = document.getElementById("project-select");
  if (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  }
  var live = document.getElementById("live");
  if (!live || !window.EventSource || !window.fetch) {
    return;
  }
  var kinds = (live.getAttribute("data-live") || "").split(/\s+/).filter(Boolean);
  var project = live.getAttribute("data-live-project") || "";
  var name = live.getAttribute("data-live-name") || "";
  var running = null;
  var again = false;

  // Re-fetches this page and swaps in its live region; coalesces bursts of events.
  function refresh() {
    if (running) {
      again = true;
      return running;
    }
    running = fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) {
        if (r.status === 404 && name) {
          live.innerHTML = "<section class=\"card\"><p class=\"hint\">This object no longer exists.</p></section>";
          root.setAttribute("data-live-gone", "true");
          return null;
        }
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("live");
        if (fresh) { live.innerHTML = fresh.innerHTML; }
      })
      .catch(function () { /* keep the current view; the next event retries */ })
      .then(function () {
        running = null;
        if (again) {
          again = false;
          return refresh();
        }
      });
    return running;
  }

  function changed(ev) {
    var data = {};
    try { data = JSON.parse(ev.data).data || {}; } catch (e) { data = {}; }
    if (data.project && data.project !== project) { return; }
    if (name && data.name && data.name !== name) { return; }
    refresh();
  }

  var events = new EventSource("/v1/events");
  kinds.forEach(function (kind) {
    ["created", "updated", "deleted"].forEach(function (verb) {
      events.addEventListener(kind + "." + verb, changed);
    });
  });
  // On (re)connection, catch up on what changed while disconnected, then say we are live.
  events.onopen = function () {
    refresh().then(function () { root.setAttribute("data-live-state", "connected"); });
  };
  events.onerror = function () { root.setAttribute("data-live-state", "reconnecting"); };
})();
