// The ops page's forms call the ops views with fetch and show the answer below the form.
// Without this script the same forms navigate to the views' JSON answers.
"use strict";

function showAnswer(output, status, text, ok) {
  let shown = text;
  try {
    shown = JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    // Not JSON (the Prometheus text, an HTML error page): shown as it is.
  }
  // textContent: an answer is never read as HTML.
  output.textContent = status + "\n" + shown;
  output.className = ok ? "result ok" : "result error";
  output.hidden = false;
}

async function submitForm(event) {
  const form = event.currentTarget;
  event.preventDefault();
  const output = form.parentElement.querySelector("pre.result");
  const data = new URLSearchParams(new FormData(form, event.submitter));
  const method = (form.getAttribute("method") || "get").toUpperCase();
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  let url = form.action;
  if (method === "GET") {
    const query = data.toString();
    if (query) url += (url.includes("?") ? "&" : "?") + query;
  } else {
    init.body = data;
  }
  output.textContent = "…";
  output.className = "result";
  output.hidden = false;
  try {
    const response = await fetch(url, init);
    showAnswer(output, `${response.status} ${response.statusText}`, await response.text(), response.ok);
  } catch (error) {
    showAnswer(output, "no answer", String(error), false);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-fetch]")) {
    form.addEventListener("submit", submitForm);
  }
  // Says that the forms now answer in the page (tests wait for it).
  document.body.dataset.ready = "true";
});
