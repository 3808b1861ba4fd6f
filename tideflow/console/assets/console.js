// Tideflow console: live parts of server-rendered pages. Every page works without this file.
// A running instance's page refreshes its live part; a bus page prepends its newest events.
// The HTML swapped in is rendered (and escaped) by the server.
"use strict";
(function () {
  var PERIOD_MS = 1000;

  function get(url) {
    return fetch(url, { credentials: "same-origin", headers: { accept: "text/html" } })
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.text(); });
  }

  function liveInstance(box) {
    var url = box.getAttribute("data-live");
    function tick() {
      if (box.getAttribute("data-final") === "true") { return; }
      get(url).then(function (html) {
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var part = holder.firstElementChild;
        if (part) {
          box.replaceChildren(part);
          box.setAttribute("data-final", part.getAttribute("data-final") || "false");
        }
      }).catch(function () { /* try again next tick */ }).finally(function () {
        if (box.getAttribute("data-final") !== "true") { setTimeout(tick, PERIOD_MS); }
      });
    }
    setTimeout(tick, PERIOD_MS);
  }

  function liveBus(body) {
    var url = body.getAttribute("data-tail");
    function newest() {
      var marker = body.querySelector("tr[data-newest]");
      return marker ? marker.getAttribute("data-newest") : "0";
    }
    function tick() {
      get(url + "?after=" + encodeURIComponent(newest())).then(function (html) {
        var holder = document.createElement("tbody");
        holder.innerHTML = html;
        if (holder.querySelectorAll("tr[data-offset]").length === 0) { return; }
        var old = body.querySelector("tr[data-newest]");
        if (old) { old.remove(); }
        body.prepend.apply(body, Array.prototype.slice.call(holder.children));
      }).catch(function () { /* try again next tick */ }).finally(function () {
        setTimeout(tick, PERIOD_MS);
      });
    }
    setTimeout(tick, PERIOD_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("live");
    if (box) { liveInstance(box); }
    var tail = document.querySelector("tbody[data-tail]");
    if (tail) { liveBus(tail); }
  });
})();
