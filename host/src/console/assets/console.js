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

  // The launch page: the launch is posted in the background while the page, its clock running,
  // says the server is starting; then the tab goes to the service, or shows the refusal (and
  // the button, to try again).
  const launch = document.querySelector("form[data-launch]");
  if (launch) {
    const status = launch.closest("section").querySelector("[role=status]");
    const elapsed = document.querySelector("[data-elapsed]");
    const started = Date.now();
    const clock = setInterval(() => {
      if (elapsed) elapsed.textContent = String(Math.floor((Date.now() - started) / 1000));
    }, 1000);
    const fail = (message) => {
      clearInterval(clock);
      const error = document.createElement("p");
      error.className = "error";
      error.id = "launch-error";
      error.setAttribute("role", "alert");
      error.textContent = message;
      status.replaceWith(error);
      launch.hidden = false;
    };
    launch.hidden = true;
    const body = new URLSearchParams(new FormData(launch));
    body.set("answer", "location");
    fetch(launch.action, { method: "POST", body, credentials: "same-origin" })
      .then(async (response) => {
        const text = await response.text();
        if (response.ok) {
          window.location.assign(text);
          return;
        }
        const page = new DOMParser().parseFromString(text, "text/html");
        const alert = page.querySelector("main [role=alert]");
        fail(alert ? alert.textContent : `The launch failed (${response.status}).`);
      })
      .catch((error) => fail(`The launch could not be sent: ${error}`));
  }

  // Deleting asks first.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
});
