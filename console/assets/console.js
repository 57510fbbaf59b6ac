// The shop console's only script: while a checkout runs, swap in each new rendering of
// its timeline that the server pushes (server-sent events from WatchCheckout). Without
// it the page still works: it reloads itself every two seconds instead (<noscript>).
"use strict";

(function () {
  const region = document.getElementById("live");
  if (!region || region.dataset.live !== "true" || !("EventSource" in window)) {
    return;
  }
  const announce = document.getElementById("announce");
  const source = new EventSource(region.dataset.events);
  let updates = 0;
  source.addEventListener("timeline", (event) => {
    region.innerHTML = event.data;
    updates += 1;
    region.dataset.updates = String(updates);
    const status = region.querySelector("[data-status]");
    if (status) {
      document.title = document.title.replace(/\(([a-z]+)\)/, "(" + status.dataset.status + ")");
    }
    const summary = region.querySelector(".summary");
    if (announce && summary) {
      announce.textContent = summary.textContent;
    }
  });
  // The checkout ended: close, or the browser would reconnect and replay it.
  source.addEventListener("end", () => {
    source.close();
    region.dataset.live = "ended";
  });
  source.addEventListener("failed", (event) => {
    source.close();
    region.dataset.live = "failed";
    const note = document.createElement("p");
    note.setAttribute("role", "alert");
    note.className = "error";
    note.textContent = "Live updates stopped: " + event.data + ". Reload the page to try again.";
    region.prepend(note);
  });
})();
