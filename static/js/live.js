// Live container states on ws/events/ (issue 6): the list, dashboard and detail pages
// update their state cells when a container changes, whatever changed it (a job, the
// CLI, a crash). Server side: containers_app/consumers/events.py, fed by the mirror sync.
//
// Every element with data-live-state="<engine id>" gets the new state as its text and
// its .state-<state> class; data-live-exit shows " (code)" after "exited". A container
// that is gone reads "removed". The socket reconnects with a growing delay.
//
// Parts computed server-side (the dashboard's counts and recent events, the list's rows
// when one appears or leaves the filter) carry data-live-refresh and an htmx trigger
// "live-refresh": they are re-read once per burst of changes (at most every REFRESH_MS),
// and once on every (re)connect for what was missed; with data-live-refresh="<engine
// id>" only when that container changed (the detail page). While the socket is down,
// <html data-live="off"> lets their timed fallback polls run.
(function () {
  "use strict";

  const REFRESH_MS = 400;
  let delay = 1000;
  let refreshTimer = null;
  let changed = new Set(); // ids changed since the last re-read; "*" = anything may have

  function refreshSoon(id) {
    changed.add(id);
    if (refreshTimer) return; // one re-read covers the whole burst
    refreshTimer = setTimeout(() => {
      const ids = changed;
      refreshTimer = null;
      changed = new Set();
      if (!window.htmx) return;
      document.querySelectorAll("[data-live-refresh]").forEach((el) => {
        const only = el.dataset.liveRefresh;
        if (!only || ids.has("*") || ids.has(only)) window.htmx.trigger(el, "live-refresh");
      });
    }, REFRESH_MS);
  }

  function apply(change) {
    document.querySelectorAll(`[data-live-state="${change.id}"]`).forEach((el) => {
      const exit = change.state === "exited" && change.exit_code !== null ? ` (${change.exit_code})` : "";
      el.textContent = change.state + (el.dataset.liveExit !== undefined ? exit : "");
      el.className = el.className.replace(/\bstate-\S+/g, "").trim() + ` state-${change.state}`;
      el.dataset.state = change.state;
    });
    document.dispatchEvent(new CustomEvent("moorage:container", { detail: change }));
    refreshSoon(change.id);
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/ws/events/`);
    socket.onopen = () => {
      const again = document.documentElement.dataset.live === "off";
      delay = 1000;
      document.documentElement.dataset.live = "on";
      if (again) refreshSoon("*"); // changes made while the socket was down
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.container) apply(message.container);
    };
    socket.onclose = (event) => {
      document.documentElement.dataset.live = "off";
      if (event.code === 4401) return; // signed out: retrying would not help
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }

  if (!window.moorageLive) {
    window.moorageLive = true;
    connect();
  }
})();
