// The labeling page: sign in, label items one by one, and (admins) watch quality.
import { $, show } from "./dom.js";
import { api, ApiError, setToken, takeTokenFromLink, token } from "./api.js";
import { Task } from "./task.js";
import { showAdmin, showMine } from "./views.js";

let task = null;
let warned = false;  // the "order never touched" warning was shown for this item

async function start() {
  takeTokenFromLink();
  if (!token()) return showLogin("");
  let me;
  try {
    me = await api("/api/me");
  } catch (e) {
    setToken("");
    return showLogin(e instanceof ApiError && e.status === 401 ? "That token is not valid." : e.message);
  }
  $("who").textContent = `${me.name}${me.admin ? " (admin)" : ""}`;
  show("sign-out", true);
  show("tabs", true);
  document.querySelector('[data-tab="admin"]').hidden = !me.admin;
  await openTab(me.admin ? "admin" : "label");
}

function showLogin(message) {
  for (const id of ["label-view", "mine-view", "admin-view", "tabs", "progress", "sign-out"]) show(id, false);
  $("who").textContent = "";
  $("login-error").textContent = message;
  show("login", true);
  $("token-input").focus();
}

async function openTab(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.tab === name);
  for (const view of ["label", "mine", "admin"]) show(`${view}-view`, view === name);
  if (name === "label") await loadNext();
  if (name === "mine") await showMine();
  if (name === "admin") await showAdmin();
}

async function loadNext() {
  const { item, progress } = await api("/api/next");
  showProgress(progress);
  warned = false;
  showMessage("warning", "");
  showMessage("error", "");
  show("skip-panel", false);
  show("done", !item);
  show("task", !!item);
  task = item ? new Task(item, () => showMessage("warning", "")) : null;
  window.scrollTo(0, 0);
}

function showProgress(p) {
  const done = p.ranked + p.skipped;
  $("progress-text").textContent = `${p.ranked} ranked · ${p.skipped} skipped · ${p.remaining} to go`;
  $("progress-bar").max = Math.max(done + p.remaining, 1);
  $("progress-bar").value = done;
  show("progress", true);
}

function showMessage(id, text) {
  $(id).textContent = text;
  $(id).hidden = !text;
}

async function submit() {
  if (!task) return;
  const { body, problem } = task.collect();
  if (problem) return showMessage("error", problem);
  if (!body.order_touched && !warned) {
    warned = true;
    return showMessage("warning", "You never changed the ranking: it is still the order the answers are shown in. " +
      "If that is really your ranking, press Submit again.");
  }
  await send("/api/labels", body);
}

async function skip() {
  const reason = [$("skip-reason").value, $("skip-detail").value.trim()].filter(Boolean).join(": ");
  if (!reason) return showMessage("error", "Choose or write a reason to skip.");
  await send("/api/skips", { submission_id: task.submissionId, item_id: task.item.id, reason });
}

async function send(path, body) {
  showMessage("error", "");
  for (const id of ["submit", "skip-confirm"]) $(id).disabled = true;
  try {
    await api(path, body);
    await loadNext();
  } catch (e) {
    showMessage("error", `Not saved: ${e.message}`);
  } finally {
    for (const id of ["submit", "skip-confirm"]) $(id).disabled = false;
  }
}

function onKey(e) {
  if (!task || $("label-view").hidden) return;
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    return submit();
  }
  const typing = e.target.closest("textarea, input[type=text], input[type=password], select");
  if (typing || e.ctrlKey || e.metaKey || e.altKey || !/^[1-9]$/.test(e.key)) return;
  const n = Number(e.key);
  const likert = e.target.closest(".likert");
  e.preventDefault();
  if (likert && n <= 7) return task.rate(Number(likert.dataset.answer), n);
  if (n <= task.item.completions.length) task.ranking.focus(n - 1);
}

$("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  setToken($("token-input").value.trim());
  show("login", false);
  start();
});
$("sign-out").addEventListener("click", () => { setToken(""); showLogin(""); });
for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => openTab(tab.dataset.tab));
$("submit").addEventListener("click", submit);
$("skip-open").addEventListener("click", () => { show("skip-panel", true); $("skip-reason").focus(); });
$("skip-confirm").addEventListener("click", skip);
document.addEventListener("keydown", onKey);
start().catch((e) => showMessage("error", e.message));
