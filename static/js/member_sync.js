// Keeps a member-sync status block live: #member-sync-status on the members page, or
// #member-sync-banner on the team page. One EventSource, opened from the event id the page was
// rendered with, so nothing sent between the render and the connect is missed. No polling: the page
// reconnects (below) from the last event id it saw and the server replays what was missed; once
// reconnected, the page reads the run's state once, for what no replay holds.

// The page, not the browser, reconnects a stream, after a random delay within a window that doubles
// with each attempt that failed to open (1 s, 2 s, then 4 s at most). After a proxy restart every open
// page reconnects at once: the browser's own retry (one fixed delay for all) brought thousands back at
// the same instant, again and again, and the server, answering none of them in time, took the rest of
// the site down with it. At most 4 s on a small site: a page shows the run as it is within 5 s of the
// proxy's return. On a site with many pages open the stream says, as it opens, how long a window to
// spread over at least (`stream-reopen`: the time the site needs to open them all again).
// bench/stream_clients.py mirrors this policy.
const RECONNECT_FIRST_MS = 1000;
const RECONNECT_MAX_MS = 4000;
// A connection that has not opened by then is given up and opened anew. A proxy accepts connections
// while it starts (Pushpin restarted) before it can pass them on, and one it dropped would
// otherwise keep the page waiting, without its live updates, forever.
const OPEN_TIMEOUT_MS = 10000;
// The run's state is read once a stream reopens (catchUp); spread over this much, so that thousands
// of pages reopening together do not all ask at the same instant.
const CATCH_UP_SPREAD_MS = 1000;

function $(root, role) {
  return root.querySelector(`[data-role="${role}"]`);
}

function show(element, visible) {
  if (element) element.hidden = !visible;
}

function setText(element, text) {
  if (element) element.textContent = text;
}

function setTime(element, moment) {
  if (!element || !moment) return;
  element.dateTime = moment.at;
  element.title = moment.utc;
  element.textContent = moment.utc;
}

// The event's `shown`: what the server's rendering of the same run shows (integrations/member_sync/run_events.py).
function render(root, shown) {
  root.dataset.status = shown.status;
  const badge = $(root, "badge");
  if (badge) {
    badge.textContent = shown.label;
    badge.className = `badge badge-${shown.status}`;
  }
  setText($(root, "headline"), shown.headline);

  show($(root, "progress"), Boolean(shown.progress));
  const bar = root.querySelector("progress");
  if (bar && shown.progress) {
    if (shown.progress.total) {
      bar.max = shown.progress.total;
      bar.value = shown.progress.fetched;
    } else bar.removeAttribute("value");
    setText($(root, "progress-text"), shown.progress.text);
  }

  show($(root, "waiting"), Boolean(shown.waiting));
  if (shown.waiting) {
    setText($(root, "waiting-reason"), shown.waiting.reason);
    setTime($(root, "waiting-until"), shown.waiting);
  }
  show($(root, "error"), Boolean(shown.error));
  setText($(root, "error"), shown.error);
  for (const hint of root.querySelectorAll("[data-hint]")) show(hint, hint.dataset.hint === shown.hint);
  for (const element of root.querySelectorAll("[data-when]")) {
    show(element, element.dataset.when.split(" ").includes(shown.status));
  }

  show($(root, "held-warning"), shown.held > 0);
  setText($(root, "held-number"), String(shown.held));
  show($(root, "skipped"), shown.skipped > 0);
  setText($(root, "skipped-count"), String(shown.skipped));
  // On the members page, the held deactivations themselves: their count now, the list comes with refreshFromServer.
  const section = document.getElementById("held-deactivations");
  if (section && shown.status === "complete") {
    section.dataset.count = String(shown.held);
    show(section, shown.held > 0);
    setText($(section, "held-count"), String(shown.held));
  }

  show($(root, "summary"), Boolean(shown.finished));
  if (shown.finished) {
    setTime($(root, "finished-at"), shown.finished);
    setText($(root, "finished-counts"), shown.finished.counts);
    show($(root, "finished-changes"), Boolean(shown.finished.changes));
    setText($(root, "finished-changes-text"), shown.finished.changes);
  }
  if (root.classList.contains("banner")) {
    root.classList.remove(...[...root.classList].filter((name) => name.startsWith("banner-")));
    root.classList.add(`banner-${shown.status}`);
  }
  const button = root.querySelector('[data-role="sync-form"] button');
  if (button) button.disabled = shown.status === "queued" || shown.status === "syncing";
}

// After a run ends, one request brings the page's server-rendered pieces up to date (the member
// list, the run history).
async function refreshFromServer() {
  const response = await fetch(window.location.href, { headers: { Accept: "text/html" } });
  if (!response.ok) return;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const id of ["held-deactivations", "github-members-section", "member-sync-runs"]) {
    const current = document.getElementById(id);
    const replacement = fresh.getElementById(id);
    if (current && replacement) current.replaceWith(replacement);
  }
}

function listen(root) {
  const isBanner = root.id === "member-sync-banner";
  const base = root.dataset.eventsUrl.split("?")[0];
  let lastEventId = new URL(root.dataset.eventsUrl, window.location.href).searchParams.get("lastEventId") || "";
  let latest = null; // the newest event shown: {run, at, …}
  const stateUrl = root.dataset.stateUrl;
  let interrupted = false; // the stream dropped since it last opened

  function isOlder(data) {
    return latest !== null && (data.run < latest.run || (data.run === latest.run && data.at < latest.at));
  }

  function apply(data) {
    render(root, data.shown);
  }

  function onEvent(message) {
    if (message.lastEventId) lastEventId = message.lastEventId;
    const data = JSON.parse(message.data);
    if (isOlder(data)) return; // replayed, or overtaken by a newer one
    // A worker older than the page (a deploy under way) sends no `shown`: a reload, or the events
    // of a newer worker, bring the page up to date.
    if (!data.shown) return;
    latest = data;
    apply(data);
    if (!isBanner && (data.status === "complete" || data.status === "error")) refreshFromServer();
  }

  // Once, when a stream reopens after it was interrupted: the run as it is now, from the status
  // partial. What was published while the stream was down may never come: an event that failed to
  // publish (the events Redis down) or one no longer in the store the stream replays from (Redis
  // restarted empty). One request per reconnection, never a poll.
  async function catchUp() {
    let fresh = null;
    try {
      const response = await fetch(stateUrl, { headers: { Accept: "text/html" } });
      if (!response.ok) return;
      const body = new DOMParser().parseFromString(await response.text(), "text/html");
      fresh = body.querySelector("#member-sync-status[data-shown]");
    } catch {
      return; // the next reconnection tries again
    }
    if (!fresh) return;
    const shown = JSON.parse(fresh.dataset.shown);
    // Dated when the server read it: an event published after that is newer, and is kept.
    const data = { run: Number(fresh.dataset.run || 0), at: fresh.dataset.at, status: shown.status, shown };
    if (isOlder(data)) return;
    const before = { run: latest ? latest.run : Number(root.dataset.run || 0), status: root.dataset.status };
    latest = data;
    apply(data);
    const ended = data.status === "complete" || data.status === "error";
    if (!isBanner && ended && (before.run !== data.run || before.status !== data.status)) refreshFromServer();
  }

  let failures = 0; // attempts in a row that did not open
  let spreadMs = RECONNECT_FIRST_MS; // what the last stream to open said
  function reopenLater() {
    const window_ = Math.max(spreadMs, Math.min(RECONNECT_MAX_MS, RECONNECT_FIRST_MS * 2 ** failures));
    failures += 1;
    window.setTimeout(open, Math.random() * window_);
  }

  function open() {
    const url = lastEventId ? `${base}?lastEventId=${encodeURIComponent(lastEventId)}` : base;
    const source = new EventSource(url);
    const opening = window.setTimeout(() => {
      source.close();
      reopenLater();
    }, OPEN_TIMEOUT_MS);
    source.addEventListener("open", () => {
      window.clearTimeout(opening);
      failures = 0;
      if (interrupted && stateUrl) window.setTimeout(catchUp, Math.random() * CATCH_UP_SPREAD_MS);
      interrupted = false;
    });
    source.addEventListener("member-sync", onEvent);
    source.addEventListener("stream-reopen", (message) => {
      spreadMs = Number(JSON.parse(message.data).spread) || RECONNECT_FIRST_MS;
    });
    // The server, busy, says when to come back (ops/shedding.py): it spreads the pages it turned away
    // over the time it needs to take them.
    source.addEventListener("stream-busy", (message) => {
      window.clearTimeout(opening);
      source.close();
      interrupted = true;
      window.setTimeout(open, JSON.parse(message.data).retry);
    });
    source.addEventListener("stream-error", (message) => {
      window.clearTimeout(opening);
      source.close();
      const reason = JSON.parse(message.data || "{}").text;
      if (reason) setText($(root, "live-off"), reason);
      show($(root, "live-off"), true);
    });
    // A dropped stream, an answer that was no stream (the server shedding load, a proxy's 502), or
    // the end of a stream's life: opened again from the last event seen, by the page's own clock.
    source.addEventListener("error", () => {
      window.clearTimeout(opening);
      source.close();
      interrupted = true;
      reopenLater();
    });
  }

  open();
  return {
    // After the server's rendering of `run` replaced the block: events already seen for that run
    // are newer than the rendering, so they are shown again on top of it.
    rendered(run) {
      if (latest !== null && latest.run === run) apply(latest);
      else if (latest === null || run > latest.run) latest = { run, at: "" };
    },
  };
}

// Sync Now without a page load: POST the form, show the status partial it answers with.
function enhanceSyncForm(root, listener) {
  root.addEventListener("submit", async (event) => {
    const form = event.target.closest('[data-role="sync-form"]');
    if (!form) return;
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    let fresh = null;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { "X-Member-Sync-Partial": "status", "X-CSRFToken": form.elements.csrfmiddlewaretoken.value },
        redirect: "manual", // an expired session answers with the login page: not a status block
      });
      const body = new DOMParser().parseFromString(await response.text(), "text/html");
      fresh = body.querySelector("#member-sync-status");
    } catch {
      fresh = null; // the network failed: fall through to the plain form below
    }
    if (!fresh) {
      // Without a status block to show, let the browser post the form itself: it then shows
      // whatever the server answers (the page, the login page, an error page).
      form.submit();
      return;
    }
    // Keep this element (it holds the listener); take the server's rendering of its content.
    root.dataset.status = fresh.dataset.status || root.dataset.status;
    root.replaceChildren(...fresh.childNodes);
    if (fresh.dataset.run) listener.rendered(Number(fresh.dataset.run));
  });
}

const root = document.querySelector("#member-sync-status[data-events-url], #member-sync-banner[data-events-url]");
if (root) {
  const listener = listen(root);
  enhanceSyncForm(root, listener);
}
