// pipewright console: the little the pages need a browser for. Nothing here is required to
// read a page or post a form; it rewrites times in the browser's time zone and refreshes a page
// that shows something still at work.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const format = new Intl.DateTimeFormat(undefined, {
    dateStyle: "medium",
    timeStyle: "medium",
  });
  for (const time of document.querySelectorAll("time[datetime]")) {
    const when = new Date(time.getAttribute("datetime"));
    if (!Number.isNaN(when.getTime())) {
      time.title = time.getAttribute("datetime");
      time.textContent = format.format(when);
    }
  }

  // A page marked `data-refresh-seconds` shows work in progress: reload it until it is done,
  // unless the person is typing in a form on it.
  const refresh = Number(document.body.querySelector("[data-refresh-seconds]")?.dataset.refreshSeconds);
  if (refresh > 0) {
    setTimeout(() => {
      const typing = document.activeElement && document.activeElement.closest("form");
      if (!typing) window.location.reload();
    }, refresh * 1000);
  }

  // Deleting asks first.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
});
