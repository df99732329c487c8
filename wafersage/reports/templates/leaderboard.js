// The leaderboard page: sortable table, heatmap picker and sample browser.
// Model output is data: every string from the JSON block is inserted with textContent, never as HTML.
(function () {
  "use strict";

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  // ---- sortable table: click (or Enter on) a header; numbers numerically, empty cells always last ----
  function sortKey(cell, numeric) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null || raw === "") { return null; }
    if (numeric) { var n = Number(raw); return isNaN(n) ? null : n; }
    return raw.toLowerCase();
  }

  function sortTable(table, index, header) {
    var numeric = header.getAttribute("data-type") === "number";
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(header.parentNode.cells, function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = sortKey(a.cells[index], numeric), y = sortKey(b.cells[index], numeric);
      if (x === null || y === null) { return (x === null) - (y === null); }
      var order = x < y ? -1 : (x > y ? 1 : 0);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, index) {
      header.tabIndex = 0;
      header.addEventListener("click", function () { sortTable(table, index, header); });
      header.addEventListener("keydown", function (event) {
        if (event.key === "Enter") { sortTable(table, index, header); }
      });
    });
  });

  // ---- heatmap picker ----
  var picker = document.getElementById("heatmap-model");
  if (picker) {
    picker.addEventListener("change", function () {
      Array.prototype.forEach.call(document.querySelectorAll(".heatmap"), function (div) {
        div.hidden = div.getAttribute("data-index") !== picker.value;
      });
    });
  }

  // ---- sample browser ----
  var dataNode = document.getElementById("wafersage-samples");
  if (!dataNode) { return; }
  var data = JSON.parse(dataNode.textContent);
  var list = document.getElementById("sample-list");
  var detail = document.getElementById("sample-detail");
  var filter = document.getElementById("sample-filter");
  var PNG = "data:image/png;base64,";

  // The answer with must-hit terms (green) and must-avoid terms (red) marked where they occur literally.
  function highlighted(text, hits, avoids) {
    var lower = text.toLowerCase(), spans = [];
    [[hits, "hit"], [avoids, "avoid"]].forEach(function (pair) {
      pair[0].forEach(function (term) {
        var words = String(term).toLowerCase().split(/\s+/).filter(Boolean), found;
        if (!words.length) { return; }
        var pattern = new RegExp(words.map(function (w) { return w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"); })
          .join("[^a-z0-9]+"), "g");  // the scorer reads words: "edge ring" marks "Edge-Ring"
        while ((found = pattern.exec(lower)) !== null) {
          spans.push([found.index, found.index + found[0].length, pair[1]]);
        }
      });
    });
    spans.sort(function (a, b) { return a[0] - b[0] || b[1] - a[1]; });
    var node = el("p", "text"), pos = 0;
    spans.forEach(function (span) {
      if (span[0] < pos) { return; }  // overlaps an earlier mark
      node.appendChild(document.createTextNode(text.slice(pos, span[0])));
      node.appendChild(el("mark", span[2], text.slice(span[0], span[1])));
      pos = span[1];
    });
    node.appendChild(document.createTextNode(text.slice(pos)));
    return node;
  }

  function terms(label, values, className) {
    var line = el("div", "terms");
    if (!values.length) { return line; }
    line.appendChild(el("span", "meta", label + ": "));
    values.forEach(function (value) { line.appendChild(el("span", "term " + className, value)); });
    return line;
  }

  function answerCard(answer) {
    var card = el("div", "answer");
    var title = answer.model + " — rule " + answer.rule_score.toFixed(1) + "/10";
    if (answer.judge_score !== null) { title += ", judge " + Number(answer.judge_score).toFixed(1) + "/10"; }
    else if (answer.judge_status === "unscored") { title += ", judge: unscored"; }
    card.appendChild(el("h4", null, title));
    if (answer.status === "failed") {
      card.appendChild(el("p", "failed", "call failed: " + (answer.error || "unknown error")));
      return card;
    }
    card.appendChild(highlighted(answer.answer, answer.phrases_hit, answer.phrases_contradicted));
    card.appendChild(terms("facts matched", answer.facts_matched, "hit"));
    card.appendChild(terms("partly", answer.facts_partial, "missed"));
    card.appendChild(terms("missed", answer.facts_missed, "missed"));
    card.appendChild(terms("contradicted", answer.facts_contradicted, "avoid"));
    if (answer.types_mentioned.length) { card.appendChild(terms("types named", answer.types_mentioned, "")); }
    if (answer.flags.length) { card.appendChild(terms("flags", answer.flags, "avoid")); }
    if (answer.rationale) { card.appendChild(el("p", "rationale", "Judge: " + answer.rationale)); }
    return card;
  }

  function show(index, button) {
    var item = data.items[index];
    Array.prototype.forEach.call(list.querySelectorAll("button"), function (b) { b.removeAttribute("aria-current"); });
    if (button) { button.setAttribute("aria-current", "true"); }
    while (detail.firstChild) { detail.removeChild(detail.firstChild); }
    var head = el("div", "item-head");
    var image = data.images[item.wafer];
    if (typeof image === "string" && image.indexOf(PNG) === 0) {
      var img = el("img");
      img.src = image;
      img.alt = "wafer map " + item.wafer;
      head.appendChild(img);
    }
    var facts = el("div");
    facts.appendChild(el("h3", null, item.id));
    facts.appendChild(el("p", "meta", "wafer " + item.wafer + " · " + item.category + " · " + item.difficulty +
      " · labels: " + (item.labels.length ? item.labels.join(", ") : "none")));
    if (item.question !== null) {
      facts.appendChild(el("p", null, "Question: " + item.question));
      facts.appendChild(el("p", null, "Reference: " + item.reference));
    }
    head.appendChild(facts);
    detail.appendChild(head);
    item.answers.forEach(function (answer) { detail.appendChild(answerCard(answer)); });
  }

  data.items.forEach(function (item, index) {
    var li = el("li");
    var button = el("button");
    button.type = "button";
    button.setAttribute("data-item", item.id);
    button.appendChild(el("span", null, item.id + " · " + item.category));
    button.appendChild(el("span", "sub", item.question || ("wafer " + item.wafer)));
    button.addEventListener("click", function () { show(index, button); });
    li.setAttribute("data-search", [item.id, item.wafer, item.category, item.labels.join(" ")].join(" ").toLowerCase());
    li.appendChild(button);
    list.appendChild(li);
  });

  filter.addEventListener("input", function () {
    var needle = filter.value.trim().toLowerCase();
    Array.prototype.forEach.call(list.children, function (li) {
      li.hidden = needle !== "" && li.getAttribute("data-search").indexOf(needle) === -1;
    });
  });
})();
