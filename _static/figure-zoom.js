/*
 * Click (or Enter/Space) on a figure that the page shows smaller than its pixels, e.g. a grid of
 * 32 feature maps, or any figure on a phone: it opens at full size in an overlay that scrolls.
 * Click, Escape or the close button closes it and returns focus to the figure.
 * Plain DOM, no dependencies; figures are the images in notebook outputs.
 */
(function () {
  "use strict";
  var overlay = null;
  var opener = null;

  function close() {
    if (!overlay) return;
    overlay.remove();
    overlay = null;
    document.documentElement.classList.remove("fig-zoom-open");
    if (opener) opener.focus();
  }

  function open(img) {
    close();
    opener = img;
    overlay = document.createElement("div");
    overlay.className = "fig-zoom";
    overlay.setAttribute("role", "dialog");
    overlay.setAttribute("aria-modal", "true");
    overlay.setAttribute("aria-label", "Figure at full size");
    var button = document.createElement("button");
    button.type = "button";
    button.className = "fig-zoom__close";
    button.setAttribute("aria-label", "Close the full-size figure");
    button.textContent = "\u00d7";
    var big = document.createElement("img");
    big.src = img.currentSrc || img.src;
    big.alt = img.alt;
    big.className = "fig-zoom__img";
    overlay.appendChild(button);
    overlay.appendChild(big);
    overlay.addEventListener("click", close);
    document.body.appendChild(overlay);
    document.documentElement.classList.add("fig-zoom-open");
    button.focus();
  }

  function scaled(img) {
    return img.naturalWidth > 0 && img.naturalWidth > img.getBoundingClientRect().width + 1;
  }

  function mark(img) {
    var update = function () {
      var zoomable = scaled(img);
      img.classList.toggle("fig-zoomable", zoomable);
      if (zoomable) {
        img.tabIndex = 0;
        img.setAttribute("role", "button");
        img.title = "Click to enlarge";
      } else {
        img.removeAttribute("tabindex");
        img.removeAttribute("role");
        img.removeAttribute("title");
      }
    };
    if (img.complete) update(); else img.addEventListener("load", update);
    return update;
  }

  function init() {
    var updates = [];
    document.querySelectorAll(".cell_output img").forEach(function (img) {
      updates.push(mark(img));
      img.addEventListener("click", function () { if (scaled(img)) open(img); });
      img.addEventListener("keydown", function (event) {
        if ((event.key === "Enter" || event.key === " ") && scaled(img)) {
          event.preventDefault();
          open(img);
        }
      });
    });
    // A figure in a hidden framework tab has no size until its tab is shown; a resize changes it.
    var refresh = function () { updates.forEach(function (update) { update(); }); };
    window.addEventListener("resize", refresh);
    document.addEventListener("click", function () { window.setTimeout(refresh, 0); });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape") close();
      else window.setTimeout(refresh, 0);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
