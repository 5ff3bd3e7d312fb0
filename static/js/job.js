// Live job progress on ws/jobs/<pk>/ (issue 6): each item's row, the counts and the bar
// change as the Celery task finishes the item (containers_app/consumers/jobs.py).
//
// The block #job-progress (jobs/_progress.html) also carries a 1 s htmx poll: while the
// socket is open this script cancels those requests (htmx:beforeRequest), so the poll is
// only the fallback, and #job-live says which of the two is at work. When the job ends,
// the block is re-read once for its final report.
(function () {
  "use strict";

  const FINAL = ["succeeded", "failed", "cancelled"];
  const ITEM_DONE = ["succeeded", "failed", "skipped", "cancelled"];
  let socket = null;
  let live = false;
  let delay = 1000;

  const block = () => document.getElementById("job-progress");
  const first = block();
  if (!first || FINAL.includes(first.dataset.state)) return;
  const pk = first.dataset.job;

  function say(text) {
    const el = document.getElementById("job-live");
    if (el) el.textContent = text;
  }

  function setState(el, state) {
    el.textContent = state;
    el.className = el.className.replace(/\bstate-\S+/g, "").trim() + ` state-${state}`;
  }

  function recount() {
    const root = block();
    const rows = [...root.querySelectorAll("tr[data-item]")];
    const total = Number(root.dataset.total) || rows.length;
    const done = rows.filter((r) => ITEM_DONE.includes(r.dataset.state)).length;
    const failed = rows.filter((r) => r.dataset.state === "failed").length;
    const summary = root.querySelector("#job-summary");
    summary.textContent = `${done} of ${total} done`;
    if (failed) {
      summary.append(", ");
      summary.appendChild(document.createElement("strong")).textContent = `${failed} failed`;
    }
    root.querySelector("#job-bar").style.width = `${total ? Math.floor((done * 100) / total) : 100}%`;
  }

  function applyItem(item) {
    const row = block().querySelector(`tr[data-item="${item.position}"]`);
    if (!row) return;
    row.dataset.state = item.state;
    setState(row.querySelector(".item-state"), item.state);
    const cell = row.querySelector(".item-result");
    cell.replaceChildren();
    if (item.error) {
      const span = cell.appendChild(document.createElement("span"));
      span.style.color = "var(--bad)";
      span.textContent = item.error;
    } else if (block().dataset.verb === "create" && item.result) {
      const link = cell.appendChild(document.createElement("a"));
      link.className = "mono";
      link.href = `/containers/${encodeURIComponent(item.result)}/`;
      link.textContent = item.result.length > 16 ? item.result.slice(0, 15) + "…" : item.result;
    } else {
      const span = cell.appendChild(document.createElement("span"));
      span.className = "mono";
      span.textContent = item.result.length > 80 ? item.result.slice(0, 79) + "…" : item.result;
    }
  }

  function applyJob(job) {
    const root = block();
    root.dataset.state = job.state;
    setState(root.querySelector("#job-state"), job.state);
    if (FINAL.includes(job.state)) {
      // Once: the report, the final counts (cancelled items) and no cancel button.
      say("Job finished.");
      socket.close(1000);
      if (window.htmx) window.htmx.ajax("GET", root.dataset.progressUrl, { target: "#job-progress", swap: "outerHTML" });
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${location.host}/ws/jobs/${encodeURIComponent(pk)}/`);
    let error = "";
    socket.onopen = () => {
      live = true;
      delay = 1000;
      say("Live: items update as the worker finishes them.");
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.error) error = message.error;
      (message.items || []).forEach(applyItem);
      if (message.item) applyItem(message.item);
      if (message.items || message.item) recount();
      if (message.job) applyJob(message.job);
    };
    socket.onclose = (event) => {
      live = false;
      if (FINAL.includes(block().dataset.state)) return;
      const why = error || "a proxy or the Origin check may be refusing websockets";
      say(`Live updates unavailable (close code ${event.code}: ${why}); refreshing every second instead.`);
      if (event.code === 4403 || event.code === 4404) return;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }

  // The fallback poll stays quiet while the socket brings the news.
  document.addEventListener("htmx:beforeRequest", (event) => {
    const source = event.detail.elt || event.target;
    if (live && source && source.id === "job-progress" && !FINAL.includes(block().dataset.state)) {
      event.preventDefault();
    }
  });
  connect();
})();

// The jobs list (jobs/list.html) on ws/jobs/: a frame arrives whenever a job the user may
// see starts or ends (JobListConsumer); the table is then re-read once (the hx-trigger
// "jobs-changed delay:300ms" of its wrapper #jobs-refresh folds a burst into one
// request). While the socket is open the wrapper's 3 s poll is cancelled; when it cannot
// connect, the poll carries on.
(function () {
  "use strict";

  const table = () => document.getElementById("jobs");
  const refresher = () => document.getElementById("jobs-refresh");
  if (!table() || !table().dataset.liveList) return;
  let live = false;
  let delay = 1000;

  function say(text) {
    const el = document.getElementById("jobs-live");
    if (el) el.textContent = text;
  }

  function refresh() {
    if (window.htmx && refresher()) window.htmx.trigger(refresher(), "jobs-changed");
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/ws/jobs/`);
    let error = "";
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.error) error = message.error;
      if (message.live) {
        live = true;
        delay = 1000;
        say("Live: jobs update as they start and end.");
        refresh(); // whatever changed while the socket was down
      }
      if (message.job) refresh();
    };
    socket.onclose = (event) => {
      live = false;
      const why = error || "a proxy or the Origin check may be refusing websockets";
      say(`Live updates unavailable (close code ${event.code}: ${why}); refreshing every 3 seconds instead.`);
      if (event.code === 4403) return;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }

  document.addEventListener("htmx:beforeRequest", (event) => {
    const source = event.detail.elt || event.target;
    const trigger = (event.detail.requestConfig || {}).triggeringEvent;
    if (live && source && source.id === "jobs-refresh" && !(trigger && trigger.type === "jobs-changed")) {
      event.preventDefault();
    }
  });
  connect();
})();
