/* The what-if panel on the policy page: posts the editor's current document and a period to the
   what-if endpoint (session auth + CSRF token) and draws the comparison per task type. Every value
   reaches the page through textContent, never as HTML. */
(function () {
  "use strict";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") { node.textContent = attrs[name]; } else { node.setAttribute(name, attrs[name]); }
    });
    (children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }

  function money(value) {
    if (value === null || value === undefined) { return "—"; }
    var digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 1 ? 2 : 4;
    return (value < 0 ? "−$" : "$") + Math.abs(value).toLocaleString("en-US", {
      minimumFractionDigits: digits, maximumFractionDigits: digits });
  }

  function signedMoney(value) {
    if (value === null || value === undefined) { return "—"; }
    if (Math.abs(value) < 1e-9) { return "no change"; }
    return (value > 0 ? "+" : "") + money(value);
  }

  function pct(value) {
    return value === null || value === undefined ? "—" : (value * 100).toFixed(1) + "%";
  }

  function signedPct(value) {
    if (value === null || value === undefined) { return "—"; }
    return (value > 0 ? "+" : value < 0 ? "−" : "") + (Math.abs(value) * 100).toFixed(1) + "%";
  }

  function ms(value) {
    return value === null || value === undefined ? "—" : Math.round(value).toLocaleString("en-US") + " ms";
  }

  function isoDay(date) {
    return date.toISOString().slice(0, 10);
  }

  function currentDocument() {
    var editor = window.sbPolicyEditor;
    var textarea = document.querySelector("textarea.sb-document-text");
    var text = editor ? editor.getText() : (textarea ? textarea.value : "");
    return JSON.parse(text);
  }

  function csrfToken(form) {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function cell(text, cls) {
    return el("td", cls ? { "class": cls, text: text } : { text: text });
  }

  function deltaClass(value) {
    if (value === null || value === undefined || Math.abs(value) < 1e-12) { return "sb-whatif__num"; }
    return "sb-whatif__num " + (value < 0 ? "sb-whatif__better" : "sb-whatif__worse");
  }

  function row(label, share, c, isTotal) {
    var tr = el("tr", isTotal ? { "class": "sb-whatif__total" } : {});
    tr.appendChild(el("th", { scope: "row", text: label }));
    tr.appendChild(cell(share, "sb-whatif__num"));
    tr.appendChild(cell(money(c.actual.cost_usd) + (c.actual.complete ? "" : " *"), "sb-whatif__num"));
    tr.appendChild(cell(money(c.draft.cost_usd) + (c.draft.complete ? "" : " *"), "sb-whatif__num"));
    tr.appendChild(cell(signedMoney(c.delta_cost_usd) +
      (c.savings_pct !== null && c.savings_pct !== undefined && Math.abs(c.delta_cost_usd) >= 1e-9 ?
        " (" + signedPct(-c.savings_pct) + ")" : ""),
      deltaClass(c.delta_cost_usd)));
    tr.appendChild(cell(pct(c.actual.escalation_rate) + " → " + pct(c.draft.escalation_rate),
      deltaClass(c.delta_escalation_rate)));
    tr.appendChild(cell(ms(c.actual.p50_ms) + " → " + ms(c.draft.p50_ms), deltaClass(c.delta_p50_ms)));
    tr.appendChild(cell(ms(c.actual.p95_ms) + " → " + ms(c.draft.p95_ms), deltaClass(c.delta_p95_ms)));
    return tr;
  }

  function render(target, data) {
    target.textContent = "";
    if (data.empty) {
      target.appendChild(el("p", { "class": "sb-whatif__empty", text: data.message }));
      return;
    }
    var head = el("tr", {}, ["Task type", "Share", "Actual cost", "Draft cost", "Δ cost", "Escalation",
      "p50 per attempt", "p95 per attempt"].map(function (name) { return el("th", { scope: "col", text: name }); }));
    var body = el("tbody", {});
    data.task_types.forEach(function (t) {
      var tr = row(t.task_type, pct(t.share), t, false);
      tr.setAttribute("data-task-type", t.task_type);
      var routes = t.paths.map(function (p) {
        return p.route + (p.arm ? " [" + p.arm + " " + pct(p.probability) + "]" : "") + ": " +
          p.steps.map(function (s) { return "t" + s.tier + " " + s.model; }).join(" → ");
      }).join("; ");
      tr.firstChild.appendChild(el("div", { "class": "sb-whatif__route", text: routes }));
      body.appendChild(tr);
    });
    body.appendChild(row("Total", data.requests.toLocaleString("en-US") + " req", data.total, true));
    target.appendChild(el("table", { "class": "sb-table sb-table--compact sb-whatif__table", id: "whatif-table" },
      [el("thead", {}, [head]), body]));

    var lines = [];
    var total = data.total;
    lines.push("Period " + data.period.start + " to " + data.period.end + " (" + data.period.days +
      " days), prices in force at " + data.priced_at.slice(0, 16).replace("T", " ") + " UTC. Negative Δ is cheaper or faster.");
    if (total.live_modelled_cost_usd !== null && total.live_modelled_cost_usd !== undefined) {
      lines.push("Model check: the same estimate for the live version gives " + money(total.live_modelled_cost_usd) +
        " against " + money(total.actual.cost_usd) + " actually spent; read the draft's Δ with that gap in mind.");
    }
    if (data.unpriced_models.length) {
      lines.push("* Unpriced models (not counted as free): " + data.unpriced_models.join(", ") + ".");
    }
    lines.forEach(function (text) { target.appendChild(el("p", { "class": "sb-muted", text: text })); });
    if (data.assumptions.length) {
      var details = el("details", { "class": "sb-details sb-whatif__assumptions", open: "" },
        [el("summary", { text: "Assumptions (" + data.assumptions.length + ")" }),
         el("ul", {}, data.assumptions.map(function (a) { return el("li", { text: a }); }))]);
      target.appendChild(details);
    }
  }

  function renderError(target, status, body) {
    target.textContent = "";
    var box = el("div", { "class": "sb-errors", role: "alert" },
      [el("p", { text: (body && body.message) || ("The estimate failed (HTTP " + status + ").") })]);
    var errors = (body && body.errors) || {};
    var items = Object.keys(errors).map(function (path) {
      return el("li", { text: path + ": " + errors[path].join("; ") });
    });
    if (items.length) { box.appendChild(el("ul", {}, items)); }
    target.appendChild(box);
  }

  function init() {
    var panel = document.getElementById("whatif");
    var form = document.getElementById("whatif-form");
    if (!panel || !form) { return; }
    var status = document.getElementById("whatif-status");
    var target = document.getElementById("whatif-result");
    var button = document.getElementById("whatif-run");

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var doc;
      try {
        doc = currentDocument();
      } catch (exc) {
        renderError(target, 400, { message: "The editor's text is not valid JSON: " + exc.message });
        return;
      }
      var days = parseInt(document.getElementById("whatif-days").value, 10) || 30;
      var end = new Date();
      var start = new Date(end.getTime() - (days - 1) * 86400000);
      button.disabled = true;
      status.textContent = "Replaying the last " + days + " days…";
      fetch(panel.getAttribute("data-url"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json",
                   "X-CSRFToken": csrfToken(form) },
        body: JSON.stringify({ policy: panel.getAttribute("data-policy"), document: doc,
                               start: isoDay(start), end: isoDay(end) })
      }).then(function (response) {
        return response.json().catch(function () { return null; }).then(function (body) {
          if (response.ok && body) {
            render(target, body);
            status.textContent = "Estimated " + new Date().toLocaleTimeString() + ".";
          } else {
            renderError(target, response.status, body);
            status.textContent = "";
          }
        });
      }).catch(function (exc) {
        renderError(target, 0, { message: "The estimate could not be fetched: " + exc.message });
        status.textContent = "";
      }).then(function () {
        button.disabled = false;
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
