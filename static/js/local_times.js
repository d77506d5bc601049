// Every <time data-local> on a page, in the reader's time zone. The server renders times in UTC
// (the title keeps that, shown on hover); this puts them in local time when the page loads and
// whenever the page's other scripts put a time in place (a live status block).

const STYLES = {
  date: { dateStyle: "medium" },
  time: { timeStyle: "short" },
  datetime: { dateStyle: "medium", timeStyle: "short" },
};

function localize(time) {
  const style = STYLES[time.dataset.local];
  if (!style || !time.dateTime) return;
  const local = new Date(time.dateTime).toLocaleString([], style);
  // Only when it differs: the observer below sees this change too.
  if (time.textContent !== local) time.textContent = local;
}

function localizeWithin(node) {
  if (node.nodeType !== Node.ELEMENT_NODE) node = node.parentElement;
  if (!node) return;
  if (node.matches("time[data-local]")) localize(node);
  for (const time of node.querySelectorAll("time[data-local]")) localize(time);
}

localizeWithin(document.body);
new MutationObserver((changes) => {
  for (const change of changes) {
    localizeWithin(change.target);
    for (const added of change.addedNodes) localizeWithin(added);
  }
}).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ["datetime"] });
