// The one script of the portal. No inline scripts: the Content-Security-Policy forbids them.
(function () {
  "use strict";
  // htmx would inject an inline <style> for its indicators, which the CSP blocks.
  htmx.config.includeIndicatorStyles = false;
  // Nor does it allow style attributes, which htmx would copy from an element it swaps to its
  // new self while settling (a style="" left by a tool on an input is enough to be refused).
  htmx.config.attributesToSettle = ["class", "width", "height"];
  // Swap form re-renders with their messages (422) and the throttling message (429).
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "422", swap: true, error: false },
    { code: "429", swap: true, error: false },
    { code: "[23]..", swap: true },
    { code: "[45]..", swap: false, error: true },
    { code: "...", swap: false },
  ];

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["x-csrftoken"] = csrfToken();
  });

  // The top-up form's packs and its box for another number of hours share the name "hours":
  // the last one touched wins, and the other is cleared, so the form shows what is bought.
  // (Without JavaScript the server keeps the last non-empty one: the box, which comes last.)
  document.addEventListener("input", function (event) {
    var field = event.target;
    if (!(field instanceof HTMLInputElement) || field.name !== "hours" || !field.form) {
      return;
    }
    if (field.type === "number" && field.value !== "") {
      field.form.querySelectorAll('input[name="hours"][type="radio"]').forEach(function (radio) {
        radio.checked = false;
      });
    } else if (field.type === "radio" && field.checked) {
      field.form.querySelectorAll('input[name="hours"][type="number"]').forEach(function (box) {
        box.value = "";
      });
    }
  });

  // A message's files are checked here before they are sent (the server checks them again):
  // too large a selection is refused on the spot, with the limits and messages the field
  // carries (_attachments.html), and the form, text and all, stays as it is.
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (!(field instanceof HTMLInputElement) || !field.hasAttribute("data-max-file-bytes")) {
      return;
    }
    var files = Array.prototype.slice.call(field.files || []);
    var total = files.reduce(function (sum, file) { return sum + file.size; }, 0);
    var message = "";
    if (files.length > Number(field.dataset.maxFiles)) {
      message = field.dataset.tooManyFiles;
    } else if (files.some(function (file) { return file.size > Number(field.dataset.maxFileBytes); })) {
      message = field.dataset.fileTooLarge;
    } else if (total > Number(field.dataset.maxMessageBytes)) {
      message = field.dataset.messageTooLarge;
    }
    field.setCustomValidity(message);
    if (message) {
      field.reportValidity();
    }
  });

  // The registration form's lookup in Enhetsregisteret only ever helps: an answer other than
  // its own (429 from the rate limit) leaves the form as it is, and a field the user has
  // written in while the register was asked keeps what they wrote (_register_lookup.html).
  document.addEventListener("htmx:beforeSwap", function (event) {
    var asking = event.detail.elt;
    if (asking && asking.hasAttribute("data-swap-only-ok") && event.detail.xhr.status !== 200) {
      event.detail.shouldSwap = false;
    }
  });
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var incoming = event.detail.fragment && event.detail.fragment.firstElementChild;
    if (!incoming || !incoming.hasAttribute("data-fill-if-empty")) {
      return;
    }
    var written = event.detail.target.querySelector("input");
    if (written && written.value.trim() !== "") {
      event.detail.shouldSwap = false;
    }
  });

  // Shown again (back from paying in another tab): the dashboard's regions refresh themselves
  // on this event (backend/web/events.py, PAGE_SHOWN).
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      htmx.trigger(document.body, "page-shown");
    }
  });

  // What changed in one tab is told to the portal's other tabs (the events on <body>'s
  // data-shared-events, backend/web/events.py): a dashboard left open there refreshes its
  // regions when an order is confirmed paid or charges are paid here.
  if ("BroadcastChannel" in window) {
    var tabs = new BroadcastChannel("portal-events");
    var fromOtherTab = false;
    var shared = (document.body.dataset.sharedEvents || "").split(" ").filter(Boolean);
    shared.forEach(function (name) {
      document.body.addEventListener(name, function () {
        if (!fromOtherTab) {
          tabs.postMessage(name);
        }
      });
    });
    tabs.addEventListener("message", function (message) {
      if (shared.indexOf(message.data) < 0) {
        return;
      }
      fromOtherTab = true;
      try {
        htmx.trigger(document.body, message.data);
      } finally {
        fromOtherTab = false;
      }
    });
  }

  // "Skriv ut" on the receipt (the print stylesheet leaves only the receipt on paper).
  document.addEventListener("click", function (event) {
    if (event.target instanceof Element && event.target.closest("[data-print]")) {
      window.print();
    }
  });

  // After boosted navigation (a link or form that led to another page), the narrow screen's
  // menu (layout.html, a <details>) folds again, and focus moves to the new content so
  // keyboard and screen-reader users start reading where the page changed. Any other swap (a
  // region refreshing itself, an order's status poll) leaves both where they are.
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.target && event.detail.target.id === "main" && event.detail.boosted) {
      document.querySelectorAll("details.nav-menu[open]").forEach(function (menu) {
        menu.open = false;
      });
      event.detail.target.focus({ preventScroll: true });
    }
  });
})();
