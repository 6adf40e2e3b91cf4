/* The policy draft editor: a JSONEditor in code mode on top of the form's textarea. The
   textarea stays the form field, so the page works without JavaScript. */
(function () {
  "use strict";

  function init() {
    var textarea = document.querySelector("textarea.sb-document-text");
    var holder = document.getElementById("sb-jsoneditor");
    if (!textarea || !holder || typeof window.JSONEditor !== "function") {
      return;
    }
    var schemaNode = document.getElementById("sb-policy-schema");
    var schema = schemaNode ? JSON.parse(schemaNode.textContent) : undefined;
    var readOnly = holder.getAttribute("data-readonly") === "true";
    var status = document.getElementById("sb-editor-status");

    holder.hidden = false;
    // No Ace syntax worker: it loads from a data: URL, which the Content-Security-Policy refuses
    // for scripts; JSONEditor checks the JSON and the schema itself.
    if (window.ace && window.ace.config) {
      window.ace.config.setDefaultValue("session", "useWorker", false);
    }
    var editor = new window.JSONEditor(holder, {
      mode: "code",
      modes: ["code", "tree"],
      schema: schema,
      allowSchemaSuggestions: true,
      mainMenuBar: true,
      statusBar: true,
      enableSort: false,
      enableTransform: false,
      indentation: 2,
      onEditable: readOnly ? function () { return false; } : undefined,
      onValidationError: function (errors) {
        if (!status) { return; }
        if (!errors.length) {
          status.textContent = "Schema check: no problems";
          status.className = "sb-editor-status sb-editor-status--ok";
        } else {
          status.textContent = "Schema check: " + errors.length + " problem" +
            (errors.length === 1 ? "" : "s") + " (marked in the editor)";
          status.className = "sb-editor-status sb-editor-status--bad";
        }
      }
    });
    editor.setText(textarea.value);
    textarea.hidden = true;
    holder.parentNode.classList.add("sb-editor--on");

    var form = textarea.form;
    if (form) {
      form.addEventListener("submit", function () {
        textarea.value = editor.getText();
      });
    }
    window.sbPolicyEditor = editor;
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
