// The containers list's live column on ws/stats/ (issue 6): CPU % and memory of the
// running containers on the page shown, pushed once a second by one sampler for the
// whole page (containers_app/consumers/stats_column.py), never polled.
//
// The page tells the server which ids to watch ({"watch": [...]}, again whenever its rows
// are re-read or a state changes) and acks each frame once drawn ({"ack": seq}); while
// the tab is hidden it withholds the ack, which stops the sampling server-side until it
// is visible again. Cells: [data-stats-cell="<id>"]; the running state comes from the
// row's [data-live-state] (kept current by live.js). Status: #stats-column-status.
// Needs stats.js (its byte formatter) loaded before it.
(function () {
  "use strict";

  const MAX_WATCH = 100;
  const last = {}; // id -> last figures, to redraw rows htmx has just replaced
  let socket = null;
  let watching = "";
  let pendingAck = null;
  let delay = 1000;
  let opened = false;
  const bytes = window.LiveStats.bytes; // stats.js, loaded first

  function status(text) {
    const el = document.getElementById("stats-column-status");
    if (el) el.textContent = text;
  }

  function runningIds() {
    const ids = [];
    document.querySelectorAll("[data-stats-cell]").forEach((cell) => {
      const id = cell.dataset.statsCell;
      const state = document.querySelector(`[data-live-state="${id}"]`);
      if (state && state.dataset.state === "running") ids.push(id);
    });
    return ids.slice(0, MAX_WATCH);
  }

  function draw(id) {
    const figures = last[id];
    const state = document.querySelector(`[data-live-state="${id}"]`);
    const running = state && state.dataset.state === "running";
    document.querySelectorAll(`[data-stats-cell="${id}"]`).forEach((cell) => {
      if (!figures || !running) {
        cell.textContent = "";
        cell.removeAttribute("title");
        return;
      }
      const cpu = figures.cpu_percent === null ? "…" : `${figures.cpu_percent.toFixed(1)}%`;
      cell.textContent = `${cpu} · ${bytes(figures.memory)}`;
      cell.title = `memory ${bytes(figures.memory)} of ${bytes(figures.memory_limit)}`;
    });
  }

  function watch() {
    const ids = runningIds();
    Object.keys(last).forEach(draw);
    const key = ids.join(",");
    if (key === watching || !socket || socket.readyState !== WebSocket.OPEN) return;
    watching = key;
    socket.send(JSON.stringify({ watch: ids }));
  }

  function ack() {
    if (pendingAck === null || document.hidden || !socket || socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify({ ack: pendingAck }));
    pendingAck = null;
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${location.host}/ws/stats/`);
    let error = "";
    watching = "";
    pendingAck = null;
    socket.onopen = () => {
      opened = true;
      delay = 1000;
      status("");
      watch();
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.error) {
        error = message.error;
        return;
      }
      for (const [id, figures] of Object.entries(message.stats || {})) {
        if (figures) last[id] = figures;
        else delete last[id];
        draw(id);
      }
      pendingAck = message.seq;
      ack();
    };
    socket.onclose = (event) => {
      Object.keys(last).forEach((id) => delete last[id]);
      document.querySelectorAll("[data-stats-cell]").forEach((cell) => (cell.textContent = ""));
      const why = error || (opened ? "connection lost" : "a proxy or the Origin check may be refusing websockets");
      status(`(live stats unavailable, close code ${event.code}: ${why})`);
      if (event.code === 4401 || event.code === 4403) return; // retrying would not help
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }

  document.addEventListener("visibilitychange", ack);
  document.addEventListener("moorage:container", () => setTimeout(watch, 0)); // after live.js
  document.addEventListener("htmx:afterSettle", watch); // the rows were re-read
  if (document.querySelector("[data-stats-cell]") !== null || document.getElementById("container-rows")) {
    connect();
  }
})();
