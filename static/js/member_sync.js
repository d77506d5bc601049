// Keeps a member-sync status block live: #member-sync-status on the members page, or
// #member-sync-banner on the team page. One EventSource, opened from the event id the page was
// rendered with, so nothing sent between the render and the connect is missed. No polling: the
// browser reconnects by itself and the server replays what was missed (Last-Event-ID).

const LABELS = { pending: "Never synced", queued: "Queued", syncing: "Syncing", complete: "Complete", error: "Error" };
const RECONNECT_MS = 3000;
// A connection that has not opened by then is given up and opened anew. A proxy accepts connections
// while it starts (Pushpin restarted) before it can pass them on, and one it dropped would
// otherwise keep the page waiting, without its live updates, forever.
const OPEN_TIMEOUT_MS = 10000;

function $(root, role) {
  return root.querySelector(`[data-role="${role}"]`);
}

function show(element, visible) {
  if (element) element.hidden = !visible;
}

function setText(element, text) {
  if (element) element.textContent = text;
}

// In UTC, as the server renders times and GitHub's rate-limit messages say them.
function clockTime(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", timeZone: "UTC" }) + " UTC";
}

function progressText(data) {
  return data.total ? `${data.fetched} of ${data.total}` : `${data.fetched} fetched`;
}

function renderProgress(root, data) {
  const syncing = data.status === "syncing";
  show($(root, "progress"), syncing);
  const bar = root.querySelector("progress");
  if (bar && syncing) {
    if (data.total) bar.max = data.total;
    else bar.removeAttribute("value");
    if (data.total) bar.value = data.fetched;
  }
  setText($(root, "progress-text"), progressText(data));
}

function renderWaiting(root, data) {
  show($(root, "waiting"), Boolean(data.waiting));
  if (data.waiting) setText($(root, "waiting"), `${data.waiting.reason} (retrying at ${clockTime(data.waiting.until)})`);
}

// A run's warnings (held deactivations, members that could not be read), and on the members page
// the held deactivations themselves: their count now, the list comes with refreshFromServer.
function renderWarnings(root, data) {
  const result = data.status === "complete" ? data.result : null;
  const held = result && result.held ? result.held : 0;
  const skipped = result && result.skipped ? result.skipped : 0;
  show($(root, "held-warning"), held > 0);
  setText($(root, "held-number"), String(held));
  show($(root, "skipped"), skipped > 0);
  setText($(root, "skipped-count"), String(skipped));
  const section = document.getElementById("held-deactivations");
  if (section && result) {
    section.dataset.count = String(held);
    show(section, held > 0);
    setText($(section, "held-count"), String(held));
  }
}

function renderStatus(root, data) {
  root.dataset.status = data.status;
  const badge = $(root, "badge");
  if (badge) {
    badge.textContent = LABELS[data.status] || data.status;
    badge.className = `badge badge-${data.status}`;
  }
  renderProgress(root, data);
  renderWaiting(root, data);
  renderWarnings(root, data);
  show($(root, "error"), data.status === "error");
  show($(root, "reconnect"), data.status === "error");
  setText($(root, "error"), data.error || "");
  const button = root.querySelector('[data-role="sync-form"] button');
  if (button) button.disabled = data.status === "queued" || data.status === "syncing";
}

function renderBanner(root, data) {
  const org = root.dataset.organization;
  const headline = {
    queued: `Importing members from ${org}…`,
    syncing: `Importing members from ${org}…`,
    complete: `Imported ${data.result ? data.result.total : data.fetched} members from ${org}.`,
    error: `Importing members from ${org} failed.`,
  }[data.status];
  setText($(root, "headline"), headline || "");
  root.classList.remove(...[...root.classList].filter((name) => name.startsWith("banner-")));
  root.classList.add(`banner-${data.status}`);
  show($(root, "done-link"), data.status === "complete");
  show($(root, "retry-link"), data.status === "error");
}

// After a run ends, one request brings the page's server-rendered pieces up to date (the member
// list, the last run's summary, the run history).
async function refreshFromServer() {
  const response = await fetch(window.location.href, { headers: { Accept: "text/html" } });
  if (!response.ok) return;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const id of ["held-deactivations", "github-members-section", "member-sync-runs"]) {
    const current = document.getElementById(id);
    const replacement = fresh.getElementById(id);
    if (current && replacement) current.replaceWith(replacement);
  }
  const summary = fresh.querySelector('#member-sync-status [data-role="summary"]');
  const current = document.querySelector('#member-sync-status [data-role="summary"]');
  if (summary && current) current.replaceWith(summary);
}

function listen(root) {
  const isBanner = root.id === "member-sync-banner";
  const base = root.dataset.eventsUrl.split("?")[0];
  let lastEventId = new URL(root.dataset.eventsUrl, window.location.href).searchParams.get("lastEventId") || "";
  let latest = null; // the newest event shown: {run, at, …}

  function isOlder(data) {
    return latest !== null && (data.run < latest.run || (data.run === latest.run && data.at < latest.at));
  }

  function apply(data) {
    renderStatus(root, data);
    if (isBanner) renderBanner(root, data);
  }

  function onEvent(message) {
    if (message.lastEventId) lastEventId = message.lastEventId;
    const data = JSON.parse(message.data);
    if (isOlder(data)) return; // replayed, or overtaken by a newer one
    latest = data;
    apply(data);
    if (!isBanner && (data.status === "complete" || data.status === "error")) refreshFromServer();
  }

  function open() {
    const url = lastEventId ? `${base}?lastEventId=${encodeURIComponent(lastEventId)}` : base;
    const source = new EventSource(url);
    let opening = null;
    function expectOpen() {
      window.clearTimeout(opening);
      opening = window.setTimeout(() => {
        if (source.readyState === EventSource.OPEN) return;
        source.close();
        open();
      }, OPEN_TIMEOUT_MS);
    }
    expectOpen();
    source.addEventListener("open", () => window.clearTimeout(opening));
    source.addEventListener("member-sync", onEvent);
    source.addEventListener("stream-error", (message) => {
      window.clearTimeout(opening);
      source.close();
      const reason = JSON.parse(message.data || "{}").text;
      if (reason) setText($(root, "live-off"), reason);
      show($(root, "live-off"), true);
    });
    // The browser retries a dropped stream by itself; a stream it gave up on (the server answered
    // with an error while restarting) is opened again from the last event seen.
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        window.clearTimeout(opening);
        window.setTimeout(open, RECONNECT_MS);
      } else {
        expectOpen(); // the browser's own retry, which may meet the same fate
      }
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
        headers: { "HX-Request": "true", "X-CSRFToken": form.elements.csrfmiddlewaretoken.value },
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
