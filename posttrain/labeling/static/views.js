// The "My labels" and admin tables. Every value goes in as text.
import { $, el } from "./dom.js";
import { api } from "./api.js";

const percent = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(1)}%`);
const number = (x, digits = 2) => (x === null || x === undefined ? "–" : x.toFixed(digits));
const cells = (...values) => el("tr", {}, ...values.map((v) => el("td", {}, v)));

export async function showMine() {
  const { labels } = await api("/api/labels");
  const rows = labels.map((x) => cells(String(x.id), x.item_id, x.kind,
    x.kind === "ranked" ? x.ranking.map((g) => g.map((i) => i + 1).join(" = ")).join("  >  ") : `skipped: ${x.reason}`,
    number(x.seconds, 0), x.submitted.replace("T", " ").slice(0, 19)));
  $("mine-rows").replaceChildren(...(rows.length ? rows : [cells("", "no labels yet", "", "", "", "")]));
}

export async function showAdmin() {
  const s = await api("/api/admin/stats");
  const p = s.progress;
  const card = (title, value, note) => el("div", { class: "card" }, el("span", { class: "muted" }, title),
    el("strong", {}, value), el("span", { class: "muted" }, note));
  $("admin-summary").replaceChildren(
    card("items done", `${p.items_done} / ${p.items}`, `${p.labelers_per_item} labeler(s) per item`),
    card("labels", String(p.ranked), `${p.skipped} skipped`),
    card("time per item", s.time.median_seconds === null ? "–" : `${number(s.time.median_seconds, 0)} s`,
      "median"),
    card("pairwise agreement", percent(s.agreement.agreement),
      `${s.agreement.strict_pairs} pairs on ${s.agreement.items} items · InstructGPT ${percent(s.agreement.instructgpt)}`),
    card("Kendall τ vs consensus", number(s.agreement.kendall_tau), "mean over rankings"),
    card("gold accuracy", percent(s.gold.agreement), `${s.gold.strict_pairs} pairs, ${p.gold_items} gold items`));
  const rows = s.labelers.map((r) => cells(r.name, String(r.ranked), String(r.skipped), number(r.median_seconds, 0),
    `${percent(r.agreement.agreement)} (${r.agreement.strict_pairs})`, number(r.kendall_tau),
    `${percent(r.gold.agreement)} (${r.gold.strict_pairs})`));
  $("admin-rows").replaceChildren(...(rows.length ? rows : [cells("no labels yet", "", "", "", "", "", "")]));
}
