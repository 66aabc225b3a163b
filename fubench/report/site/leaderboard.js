// The leaderboard site's tables (written by `fubench leaderboard --html`): click a
// column header to sort the rows by it (again: the other way); type in a filter box or
// pick a method to show only the rows that match. No network, no library: the pages
// work from file:// as they are.
(function () {
  "use strict";

  // the value a row sorts by in column `col`: the cell's data-sort number, or its text;
  // null (a cell without a value: "—", "n/a", "ref") sorts last either way
  function key(row, col, numeric) {
    const cell = row.cells[col];
    if (!cell) return null;
    if (!numeric) return cell.textContent.trim().toLowerCase();
    const value = cell.getAttribute("data-sort");
    return value === null || value === "" ? null : Number(value);
  }

  function sortBy(table, th) {
    const col = th.cellIndex;
    const numeric = th.getAttribute("data-type") === "number";
    const ascending = th.getAttribute("aria-sort") !== "ascending";
    for (const other of table.tHead.rows[0].cells) other.removeAttribute("aria-sort");
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const body = table.tBodies[0];
    const rows = Array.from(body.rows, (row, i) => ({ row, i, key: key(row, col, numeric) }));
    rows.sort((a, b) => {
      if (a.key === null || b.key === null) {
        return (a.key === null) - (b.key === null) || a.i - b.i;
      }
      const order = numeric ? a.key - b.key : a.key.localeCompare(b.key);
      return (ascending ? order : -order) || a.i - b.i;
    });
    for (const r of rows) body.appendChild(r.row);
  }

  function applyFilter(bar) {
    const table = document.getElementById(bar.getAttribute("data-table"));
    if (!table) return;
    const text = bar.querySelector("input").value.trim().toLowerCase();
    const select = bar.querySelector("select");
    const wanted = select ? select.value : "";
    const rows = table.tBodies[0].rows;
    let shown = 0;
    for (const row of rows) {
      const match =
        (!wanted || row.getAttribute("data-key") === wanted) &&
        (!text || row.textContent.toLowerCase().includes(text));
      row.hidden = !match;
      if (match) shown += 1;
    }
    const count = bar.querySelector("output");
    if (count) count.textContent = shown + " of " + rows.length + " rows";
  }

  function start() {
    for (const th of document.querySelectorAll("table.sortable thead th")) {
      const button = th.querySelector("button");
      if (button) button.addEventListener("click", () => sortBy(th.closest("table"), th));
    }
    for (const bar of document.querySelectorAll(".filters")) {
      bar.addEventListener("input", () => applyFilter(bar));
      bar.addEventListener("change", () => applyFilter(bar));
      applyFilter(bar); // a value the browser restored on going back
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
