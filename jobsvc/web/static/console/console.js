// The jobsvc console: submit a document, watch its job live, browse recent jobs.
// Plain browser JavaScript, no dependencies. It speaks the public JSON API only.
"use strict";

(() => {
  const KEY_STORAGE = "jobsvc.apiKey"; // sessionStorage: this tab only, gone when it closes
  const PAGE_SIZE = 10;
  // A pending job is asked about every PENDING_WAIT seconds so that "running" shows up;
  // a running one is long-polled: the server answers the moment it ends.
  const PENDING_WAIT = 2;
  const RUNNING_WAIT = 25;
  const REFRESH_MS = 10000;
  const TERMINAL = new Set(["succeeded", "failed", "canceled"]);

  const $ = (id) => document.getElementById(id);
  const needsKey = document.body.dataset.needsKey === "true";
  const state = { jobId: null, job: null, watch: 0, page: 1, checklistText: null };

  class Unauthorized extends Error {}

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function say(element, text, isError = false) {
    element.textContent = text || "";
    element.classList.toggle("error", Boolean(isError));
  }

  // --- API key -------------------------------------------------------------------------

  function apiKey() {
    return sessionStorage.getItem(KEY_STORAGE);
  }

  function askForKey(message) {
    sessionStorage.removeItem(KEY_STORAGE);
    $("key-panel").hidden = false;
    const note = $("key-message");
    note.hidden = !message;
    note.textContent = message || "";
    $("api-key").value = "";
    $("api-key").focus();
  }

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("api-key").value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY_STORAGE, key);
    $("api-key").value = "";
    $("key-message").hidden = true;
    $("key-panel").hidden = true;
    loadRecent();
    const id = state.jobId || jobInAddress();
    if (id) watch(id);
  });

  $("key-change").hidden = !needsKey;
  $("key-change").addEventListener("click", () => askForKey(null));

  // The open job is in the address (#job=<id>), so a reload or a shared link reopens it.
  function jobInAddress() {
    const match = /^#job=([0-9a-fA-F-]{36})$/.exec(location.hash);
    return match ? match[1] : null;
  }

  // --- HTTP ----------------------------------------------------------------------------

  async function api(path, options = {}) {
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    const key = apiKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    const response = await fetch(path, { cache: "no-store", ...options, headers });
    if (response.status === 401) {
      askForKey(
        key
          ? "That API key was not accepted (401 Unauthorized). Check it and enter it again."
          : "This server needs an API key: enter it to continue."
      );
      throw new Unauthorized();
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (!response.ok) {
      throw new Error((body && body.message) || `The server answered ${response.status}.`);
    }
    return { body, response };
  }

  function post(path, payload) {
    return api(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: payload === undefined ? undefined : JSON.stringify(payload),
    });
  }

  // --- Submitting ----------------------------------------------------------------------

  async function loadFile(file) {
    const message = $("submit-message");
    if (!/\.(txt|md|markdown)$/i.test(file.name) && !file.type.startsWith("text/")) {
      say(message, `${file.name} is not a .txt or .md file.`, true);
      return;
    }
    const text = await file.text();
    $("input-text").value = text;
    say(message, `Loaded ${file.name} (${text.length.toLocaleString()} characters). Submit when ready.`);
  }

  $("input-file").addEventListener("change", (event) => {
    const [file] = event.target.files;
    if (file) loadFile(file);
  });

  const textBox = $("input-text");
  textBox.addEventListener("dragover", (event) => {
    event.preventDefault();
    textBox.classList.add("dropping");
  });
  textBox.addEventListener("dragleave", () => textBox.classList.remove("dropping"));
  textBox.addEventListener("drop", (event) => {
    textBox.classList.remove("dropping");
    const [file] = event.dataTransfer.files;
    if (!file) return;
    event.preventDefault();
    loadFile(file);
  });

  $("submit-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = $("submit-message");
    const text = textBox.value;
    if (!text.trim()) {
      say(message, "Paste some text or choose a file first.", true);
      textBox.focus();
      return;
    }
    const button = $("submit-button");
    button.disabled = true;
    say(message, "Submitting…");
    try {
      const { body } = await post("/jobs/", { input_text: text });
      say(message, `Submitted as job ${body.event_id}.`);
      watch(body.event_id, true);
      loadRecent();
    } catch (error) {
      if (!(error instanceof Unauthorized)) say(message, error.message, true);
      else say(message, "");
    } finally {
      button.disabled = false;
    }
  });

  // --- One job -------------------------------------------------------------------------

  function checklistItems(job) {
    if (Array.isArray(job.checklist_items) && job.checklist_items.length) return job.checklist_items;
    return (job.checklist || "")
      .split("\n")
      .map((line) => line.replace(/^\s*(?:[-*+]|\d+[.)])\s+(?:\[[ xX]\]\s+)?/, "").trim())
      .filter(Boolean);
  }

  function renderChecklist(job) {
    const block = $("job-checklist-block");
    const items = checklistItems(job);
    block.hidden = items.length === 0;
    const text = items.join("\n");
    if (text === state.checklistText) return; // keep the boxes a person ticked
    state.checklistText = text;
    const list = $("job-checklist");
    list.replaceChildren();
    items.forEach((item, index) => {
      const li = document.createElement("li");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.id = `check-${index}`;
      const label = document.createElement("label");
      label.htmlFor = box.id;
      label.textContent = item;
      li.append(box, label);
      list.append(li);
    });
    say($("copy-message"), "");
  }

  function renderJob(job) {
    state.job = job;
    $("job").hidden = false;
    const status = $("job-status");
    status.textContent = job.status;
    status.className = `status status-${job.status}`;
    $("job-id").textContent = job.id;
    $("job-cancel").hidden = !["pending", "running"].includes(job.status);
    $("job-retry").hidden = !["failed", "canceled"].includes(job.status);
    const error = $("job-error");
    error.hidden = !job.error;
    error.textContent = job.error || "";
    $("job-summary-block").hidden = !job.summary;
    $("job-summary").textContent = job.summary || "";
    renderChecklist(job);
  }

  async function watch(id, focus = false) {
    const token = ++state.watch;
    if (state.jobId !== id) state.checklistText = null;
    state.jobId = id;
    history.replaceState(null, "", `#job=${encodeURIComponent(id)}`);
    let job;
    try {
      job = (await api(`/jobs/${encodeURIComponent(id)}/`)).body;
    } catch (error) {
      if (!(error instanceof Unauthorized)) say($("submit-message"), error.message, true);
      return;
    }
    if (token !== state.watch) return;
    renderJob(job);
    if (focus) $("job-heading").focus();
    while (token === state.watch && !TERMINAL.has(job.status)) {
      const wait = job.status === "pending" ? PENDING_WAIT : RUNNING_WAIT;
      try {
        const fresh = (await api(`/jobs/${encodeURIComponent(id)}/?wait=${wait}`)).body;
        if (token !== state.watch) return;
        const changed = fresh.status !== job.status;
        job = fresh;
        renderJob(job);
        if (changed) loadRecent();
      } catch (error) {
        if (error instanceof Unauthorized) return;
        say($("job-error"), `Lost touch with the server (${error.message}); trying again.`, true);
        $("job-error").hidden = false;
        await sleep(2000);
      }
    }
  }

  async function act(id, action) {
    try {
      const { body } = await post(`/jobs/${encodeURIComponent(id)}/${action}`);
      if (state.jobId === id) renderJob(body);
      if (action === "retry" || state.jobId === id) watch(id);
      loadRecent();
    } catch (error) {
      if (!(error instanceof Unauthorized)) say($("recent-message"), error.message, true);
    }
  }

  $("job-cancel").addEventListener("click", () => act(state.jobId, "cancel"));
  $("job-retry").addEventListener("click", () => act(state.jobId, "retry"));

  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return;
    }
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    if (!ok) throw new Error("the browser refused");
  }

  $("copy-markdown").addEventListener("click", async () => {
    const lines = [...$("job-checklist").querySelectorAll("li")].map((li) => {
      const mark = li.querySelector("input").checked ? "x" : " ";
      return `- [${mark}] ${li.querySelector("label").textContent}`;
    });
    try {
      await copyText(`${lines.join("\n")}\n`);
      say($("copy-message"), "Copied the checklist as markdown.");
    } catch (error) {
      say($("copy-message"), `Could not copy: ${error.message}.`, true);
    }
  });

  // --- Recent jobs ---------------------------------------------------------------------

  function button(text, label, onClick, className = "secondary small") {
    const element = document.createElement("button");
    element.type = "button";
    element.textContent = text;
    element.setAttribute("aria-label", label);
    element.className = className;
    element.addEventListener("click", onClick);
    return element;
  }

  function recentItem(job) {
    const li = document.createElement("li");
    li.className = "recent-item";
    li.dataset.id = job.id;
    li.dataset.status = job.status;
    const head = document.createElement("div");
    head.className = "row";
    const status = document.createElement("span");
    status.className = `status status-${job.status}`;
    status.textContent = job.status;
    const when = document.createElement("time");
    when.dateTime = job.created_at;
    when.textContent = new Date(job.created_at).toLocaleString();
    const id = document.createElement("code");
    id.textContent = job.id.slice(0, 8);
    head.append(status, when, id);
    const excerpt = document.createElement("p");
    excerpt.className = "excerpt";
    excerpt.textContent = job.input_excerpt || "";
    li.append(head, excerpt);
    if (job.error) {
      const error = document.createElement("p");
      // A failed job's error says what to change; a canceled one's is only a note.
      error.className = job.status === "failed" ? "message error" : "message note";
      error.textContent = job.error;
      li.append(error);
    }
    const actions = document.createElement("div");
    actions.className = "row";
    const short = job.id.slice(0, 8);
    actions.append(button("Open", `Open job ${short}`, () => watch(job.id, true), "small"));
    if (["pending", "running"].includes(job.status)) {
      actions.append(button("Cancel", `Cancel job ${short}`, () => act(job.id, "cancel")));
    }
    if (["failed", "canceled"].includes(job.status)) {
      actions.append(button("Retry", `Retry job ${short}`, () => act(job.id, "retry")));
    }
    li.append(actions);
    return li;
  }

  // Each load supersedes the ones before it: a late answer to an old filter is dropped.
  let generation = 0;

  async function loadRecent() {
    const mine = ++generation;
    const list = $("recent");
    list.setAttribute("aria-busy", "true");
    const params = new URLSearchParams({ page: state.page, page_size: PAGE_SIZE });
    const status = $("status-filter").value;
    if (status) params.set("status", status);
    try {
      const { body, response } = await api(`/jobs/?${params}`);
      if (mine !== generation) return;
      const pages = JSON.parse(response.headers.get("X-Pagination") || "{}");
      const total = pages.total || 0;
      const last = pages.last_page || 1;
      if (state.page > last && total) {
        state.page = last;
        loadRecent();
        return;
      }
      list.replaceChildren(...body.map(recentItem));
      say($("recent-message"), total ? "" : "No jobs yet" + (status ? ` with status ${status}.` : "."));
      $("page-info").textContent = total ? `Page ${state.page} of ${last} (${total} jobs)` : "";
      $("page-previous").disabled = state.page <= 1;
      $("page-next").disabled = state.page >= last;
    } catch (error) {
      if (mine !== generation) return;
      if (!(error instanceof Unauthorized)) say($("recent-message"), error.message, true);
    }
    list.setAttribute("aria-busy", "false");
  }

  $("status-filter").addEventListener("change", () => {
    state.page = 1;
    loadRecent();
  });
  $("recent-refresh").addEventListener("click", () => loadRecent());
  $("page-previous").addEventListener("click", () => {
    state.page = Math.max(1, state.page - 1);
    loadRecent();
  });
  $("page-next").addEventListener("click", () => {
    state.page += 1;
    loadRecent();
  });
  setInterval(() => {
    if (document.visibilityState === "visible" && (!needsKey || apiKey())) loadRecent();
  }, REFRESH_MS);

  // --- Start ---------------------------------------------------------------------------

  if (needsKey && !apiKey()) {
    askForKey(null);
  } else {
    loadRecent();
    const id = jobInAddress();
    if (id) watch(id);
  }
})();
