/* The staff console's only script: it enhances pages that work without it.
   - A Markdown text box with data-preview updates its preview as you type.
   - A form with data-confirm asks before it is sent.
   - A region #framsteg with data-live (a mailing under way) is fetched again every few
     seconds and swapped in, until the server no longer marks it live.
   - The branding page's sample follows the colour field, and a colour picker joins it. */
(function () {
  "use strict";
  function csrf(form) {
    var field = form && form.querySelector('input[name="csrf"]');
    return field ? field.value : "";
  }
  document.querySelectorAll("textarea[data-preview]").forEach(function (box) {
    var target = document.getElementById(box.dataset.preview);
    var timer = null;
    if (!target) { return; }
    box.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var body = new URLSearchParams();
        body.set("body", box.value);
        fetch(box.dataset.previewUrl, {
          method: "POST", credentials: "same-origin", body: body,
          headers: {"X-CSRF-Token": csrf(box.form)}
        }).then(function (response) {
          return response.ok ? response.text() : null;
        }).then(function (html) {
          if (html !== null) { target.innerHTML = html; }  /* sanitised by the server */
        }).catch(function () {});
      }, 400);
    });
  });
  var live = document.getElementById("framsteg");
  function poll() {
    fetch(window.location.href, {credentials: "same-origin"}).then(function (response) {
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (html === null) { return; }
      var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("framsteg");
      if (!fresh) { return; }
      live.innerHTML = fresh.innerHTML;  /* our own page, escaped by the server */
      if (fresh.dataset.live) { setTimeout(poll, 3000); } else { delete live.dataset.live; }
    }).catch(function () {});
  }
  if (live && live.dataset.live) { setTimeout(poll, 3000); }
  (function () {
    var colour = document.getElementById("colour");
    var picker = document.getElementById("colour-picker");
    var sample = document.getElementById("prov");
    var timer = null;
    if (!colour || !sample) { return; }
    function show() {
      var value = colour.value.trim();
      if (!/^#?[0-9a-fA-F]{6}$/.test(value)) { return; }
      value = (value.charAt(0) === "#" ? value : "#" + value).toLowerCase();
      if (picker) { picker.value = value; }
      clearTimeout(timer);
      timer = setTimeout(function () {
        sample.src = sample.dataset.base + "?farg=" + encodeURIComponent(value);
      }, 250);
    }
    colour.addEventListener("input", show);
    if (picker) {
      picker.hidden = false;
      picker.addEventListener("input", function () { colour.value = picker.value; show(); });
    }
  }());
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    });
  });
}());
