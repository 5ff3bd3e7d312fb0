// Live container states on ws/events/ (issue 6): the list, dashboard and detail pages
// update their state cells when a container changes, whatever changed it (a job, the
// CLI, a crash). Server side: containers_app/consumers/events.py, fed by the mirror sync.
//
// Every element with data-live-state="<engine id>" gets the new state as its text and
// its .state-<state> class; data-live-exit shows " (code)" after "exited". A container
// that is gone reads "removed". The socket reconnects with a growing delay.
(function () {
  "use strict";

  let delay = 1000;

  function apply(change) {
    document.querySelectorAll(`[data-live-state="${change.id}"]`).forEach((el) => {
      const exit = change.state === "exited" && change.exit_code !== null ? ` (${change.exit_code})` : "";
      el.textContent = change.state + (el.dataset.liveExit !== undefined ? exit : "");
      el.className = el.className.replace(/\bstate-\S+/g, "").trim() + ` state-${change.state}`;
      el.dataset.state = change.state;
    });
    document.dispatchEvent(new CustomEvent("moorage:container", { detail: change }));
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/ws/events/`);
    socket.onopen = () => {
      delay = 1000;
      document.documentElement.dataset.live = "on";
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
