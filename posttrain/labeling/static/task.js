// One item on screen: the conversation, each answer with its Likert rating and flags, the ranking.
import { $, el } from "./dom.js";
import { freshId } from "./api.js";
import { Ranking } from "./ranking.js";

const FLAGS = [["fails_task", "fails the task"], ["hallucination", "hallucination"], ["harmful", "harmful"],
               ["inappropriate", "inappropriate"], ["over_refusal", "over-refusal"]];
const SNIPPET = 48;

export class Task {
  constructor(item, onChange) {
    this.item = item;
    this.submissionId = freshId();   // kept across retries: the server stores a submission once
    const k = item.completions.length;
    this.likert = new Array(k).fill(null);
    this.flags = item.completions.map(() => new Set());
    $("item-id").textContent = item.id;
    $("conversation").replaceChildren(...item.prompt.map(messageNode));
    $("answers").replaceChildren(...item.completions.map((c, i) => this.answerNode(c.text, i)));
    const names = item.completions.map((_, i) => `Answer ${i + 1}`);
    const snippets = item.completions.map((c) => snippet(c.text));
    this.ranking = new Ranking($("ranking"), $("ranking-status"), names, snippets, onChange);
    for (const id of ["notes", "better-answer", "skip-detail"]) $(id).value = "";
    $("none-acceptable").checked = false;
    $("better").open = false;
    $("skip-reason").value = "";
  }

  answerNode(text, i) {
    const radios = [1, 2, 3, 4, 5, 6, 7].map((n) => {
      const input = el("input", { type: "radio", name: `likert-${i}`, value: String(n),
                                  "aria-label": `${n} of 7` });
      input.addEventListener("change", () => this.setLikert(i, n));
      return el("label", { class: "likert-option" }, input, el("span", {}, String(n)));
    });
    const flags = FLAGS.map(([flag, label]) => {
      const box = el("input", { type: "checkbox", "data-flag": flag });
      box.addEventListener("change", () => (box.checked ? this.flags[i].add(flag) : this.flags[i].delete(flag)));
      return el("label", { class: "check" }, box, label);
    });
    return el("article", { class: "answer", id: `answer-${i}`, "data-answer": String(i) },
      el("h3", {}, `Answer ${i + 1}`),
      el("div", { class: "text" }, text),
      el("div", { class: "likert", role: "radiogroup", "data-answer": String(i),
                  "aria-label": `Answer ${i + 1}: overall quality from 1 (bad) to 7 (great); press a number key` },
        el("span", { class: "scale" }, "quality"), el("span", { class: "end" }, "bad"), ...radios,
        el("span", { class: "end" }, "great")),
      el("div", { class: "flags" }, ...flags));
  }

  rate(i, n) {
    const input = document.querySelector(`input[name="likert-${i}"][value="${n}"]`);
    input.checked = true;
    input.focus();
    this.setLikert(i, n);
  }

  setLikert(i, n) {
    this.likert[i] = n;
    document.querySelector(`#answer-${i} .likert`).classList.remove("missing");
  }

  // The submission body, or a message saying what is missing.
  collect() {
    const unrated = this.likert.map((x, i) => (x === null ? i + 1 : null)).filter((x) => x !== null);
    for (const i of unrated) document.querySelector(`#answer-${i - 1} .likert`).classList.add("missing");
    if (unrated.length) {
      return { problem: `Rate every answer from 1 to 7 first (missing: answer ${unrated.join(", ")}).` };
    }
    return { body: {
      submission_id: this.submissionId, item_id: this.item.id, ranking: this.ranking.groups(),
      likert: this.likert, flags: this.flags.map((s) => [...s]), none_acceptable: $("none-acceptable").checked,
      notes: $("notes").value, better_answer: $("better-answer").value, order_touched: this.ranking.touched } };
  }
}

function messageNode(m) {
  return el("li", { class: `message ${m.role}` }, el("span", { class: "role" }, m.role), el("div", { class: "text" }, m.content));
}

function snippet(text) {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > SNIPPET ? flat.slice(0, SNIPPET - 1) + "…" : flat;
}
