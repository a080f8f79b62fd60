// The ranking widget: rows of tied answers, best row first. Mouse: drag an answer onto a row (a tie)
// or onto the gap between rows (a row of its own). Keyboard: a focused answer moves with the arrow
// keys one step at a time: up from a shared row makes a row of its own just above it; up from a row
// of its own joins the row above. Every position, ties included, is reachable from the keyboard.
import { el } from "./dom.js";

export class Ranking {
  constructor(root, status, names, snippets, onChange) {
    this.root = root;            // <ol> the rows are drawn into
    this.status = status;        // aria-live element announcing moves
    this.names = names;          // per answer: "Answer 1", ...
    this.snippets = snippets;    // per answer: its first words, shown on its chip
    this.onChange = onChange;
    this.rows = names.map((_, i) => [i]);  // untouched: the order the answers are shown in
    this.touched = false;
    this.render();
  }

  groups() {
    return this.rows.map((row) => [...row]);
  }

  rowOf(answer) {
    return this.rows.findIndex((row) => row.includes(answer));
  }

  focus(answer) {
    const chip = this.root.querySelector(`[data-answer="${answer}"]`);
    if (chip) chip.focus();
  }

  move(answer, direction) {
    const r = this.rowOf(answer);
    const alone = this.rows[r].length === 1;
    if (alone && (direction < 0 ? r === 0 : r === this.rows.length - 1)) return;
    this.take(answer);
    if (alone) {
      const target = direction < 0 ? r - 1 : r;   // rows after r shifted up by one when r emptied
      this.rows[target].push(answer);
      this.rows[target].sort((a, b) => a - b);
    } else {
      this.rows.splice(direction < 0 ? r : r + 1, 0, [answer]);
    }
    this.changed(answer);
  }

  dropOnRow(answer, row) {
    const target = this.rows[row];
    if (target.includes(answer)) return;
    this.take(answer, target);
    target.push(answer);
    target.sort((a, b) => a - b);
    this.changed(answer);
  }

  dropInGap(answer, gap) {
    // gap g lies above row g (gap rows.length lies below the last row)
    const marker = [];
    this.rows.splice(gap, 0, marker);
    this.take(answer, marker);
    marker.push(answer);
    this.changed(answer);
  }

  take(answer, keep) {
    // remove `answer` from its row and drop the row if it empties (unless it is `keep`)
    for (const row of this.rows) {
      const i = row.indexOf(answer);
      if (i >= 0) row.splice(i, 1);
    }
    this.rows = this.rows.filter((row) => row.length || row === keep);
  }

  changed(answer) {
    this.touched = true;
    this.render();
    this.focus(answer);
    const r = this.rowOf(answer);
    const ties = this.rows[r].filter((a) => a !== answer).map((a) => this.names[a]);
    this.status.textContent = `${this.names[answer]} now at rank ${r + 1}` +
      (ties.length ? `, tied with ${ties.join(" and ")}` : "");
    this.onChange();
  }

  render() {
    this.root.replaceChildren();
    this.rows.forEach((row, r) => {
      this.root.append(this.gap(r));
      const chips = row.map((a) => this.chip(a));
      const li = el("li", { class: "row", "data-row": String(r) },
        el("span", { class: "rank" }, String(r + 1)), el("div", { class: "chips" }, ...chips));
      this.dropTarget(li, (a) => this.dropOnRow(a, r));
      this.root.append(li);
    });
    this.root.append(this.gap(this.rows.length));
  }

  gap(g) {
    const li = el("li", { class: "gap", "data-gap": String(g), "aria-hidden": "true" });
    this.dropTarget(li, (a) => this.dropInGap(a, g));
    return li;
  }

  chip(answer) {
    const chip = el("button", { type: "button", class: "chip", draggable: "true", "data-answer": String(answer),
                                "aria-label": `${this.names[answer]}: use the up and down arrows to move it` },
      el("span", { class: "grip", "aria-hidden": "true" }, "⠿"),
      el("span", { class: "chip-name" }, this.names[answer]),
      el("span", { class: "chip-text" }, this.snippets[answer]));
    chip.addEventListener("dragstart", (e) => {
      e.dataTransfer.setData("text/plain", String(answer));
      e.dataTransfer.effectAllowed = "move";
      this.root.classList.add("dragging");
    });
    chip.addEventListener("dragend", () => this.root.classList.remove("dragging"));
    chip.addEventListener("keydown", (e) => {
      if (e.key === "ArrowUp" || e.key === "ArrowDown") {
        e.preventDefault();
        this.move(answer, e.key === "ArrowUp" ? -1 : 1);
      }
    });
    return chip;
  }

  dropTarget(node, onDrop) {
    node.addEventListener("dragover", (e) => {
      e.preventDefault();
      e.dataTransfer.dropEffect = "move";
      node.classList.add("over");
    });
    node.addEventListener("dragleave", () => node.classList.remove("over"));
    node.addEventListener("drop", (e) => {
      e.preventDefault();
      e.stopPropagation();
      node.classList.remove("over");
      this.root.classList.remove("dragging");
      const answer = Number(e.dataTransfer.getData("text/plain"));
      if (Number.isInteger(answer) && answer >= 0 && answer < this.names.length) onDrop(answer);
    });
  }
}
