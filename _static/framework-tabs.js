/*
 * Framework tabs for "Seeing inside CNNs" (Jupyter Book 1 / sphinx-book-theme).
 *
 * Jupyter Book renders every notebook cell as <div class="cell tag_<tag> ...">. Lesson cells
 * tagged "pytorch" or "tensorflow" come in runs: PyTorch cell(s) immediately followed by their
 * TensorFlow twin(s). This script wraps each run in a tab widget "PyTorch | TensorFlow" (code and
 * outputs move together); untagged cells stay where they are.
 *
 * - Choosing a framework switches every tab group on the page, is stored in localStorage and is
 *   applied on the next page (and in other open tabs of the site).
 * - WAI-ARIA tabs pattern: role=tablist/tab/tabpanel, aria-selected, aria-controls, roving
 *   tabindex; Left/Right/Home/End move between tabs.
 * - Before the page is grouped, the other framework's cells are hidden by CSS
 *   (html.fw-tabs-pending), so the page does not flash both frameworks. Without JavaScript, every
 *   cell is shown. When printing, both frameworks are shown (see framework-tabs.css).
 * No dependencies, no network.
 */
(function () {
  "use strict";

  var FRAMEWORKS = [
    { key: "pytorch", label: "PyTorch" },
    { key: "tensorflow", label: "TensorFlow" },
  ];
  var STORAGE_KEY = "cnn-course:framework";
  var DEFAULT = FRAMEWORKS[0].key;
  var root = document.documentElement;

  function isFramework(value) {
    return FRAMEWORKS.some(function (fw) { return fw.key === value; });
  }

  function stored() {
    try {
      var value = window.localStorage.getItem(STORAGE_KEY);
      return isFramework(value) ? value : null;
    } catch (err) {  // storage disabled (privacy mode, file:// in some browsers)
      return null;
    }
  }

  function store(value) {
    try { window.localStorage.setItem(STORAGE_KEY, value); } catch (err) { /* not fatal */ }
  }

  // Runs while <head> is parsed: lets the stylesheet hide the other framework before grouping.
  root.setAttribute("data-framework", stored() || DEFAULT);
  root.classList.add("fw-tabs-pending");

  function frameworkIndex(el) {
    if (!el || !el.classList || !el.classList.contains("cell")) return -1;
    for (var i = 0; i < FRAMEWORKS.length; i++) {
      if (el.classList.contains("tag_" + FRAMEWORKS[i].key)) return i;
    }
    return -1;
  }

  // Consecutive tagged sibling cells, split where the order restarts (PyTorch after TensorFlow).
  function findRuns() {
    var selector = FRAMEWORKS.map(function (fw) { return ".cell.tag_" + fw.key; }).join(", ");
    var grouped = new Set();
    var runs = [];
    document.querySelectorAll(selector).forEach(function (cell) {
      if (grouped.has(cell)) return;
      var run = [];
      var phase = 0;
      for (var el = cell; el; el = el.nextElementSibling) {
        var idx = frameworkIndex(el);
        if (idx < phase) break;  // not a framework cell, or the start of the next pair
        phase = idx;
        run.push(el);
        grouped.add(el);
      }
      runs.push(run);
    });
    return runs;
  }

  var groupCount = 0;

  function buildGroup(run) {
    var n = ++groupCount;
    var group = document.createElement("div");
    group.className = "fw-tabs";
    var list = document.createElement("div");
    list.className = "fw-tabs__list";
    list.setAttribute("role", "tablist");
    list.setAttribute("aria-label", "Framework");
    group.appendChild(list);
    run[0].parentNode.insertBefore(group, run[0]);

    FRAMEWORKS.forEach(function (fw, i) {
      var tabId = "fw-tab-" + n + "-" + fw.key;
      var panelId = "fw-panel-" + n + "-" + fw.key;

      var tab = document.createElement("button");
      tab.type = "button";
      tab.className = "fw-tabs__tab";
      tab.id = tabId;
      tab.setAttribute("role", "tab");
      tab.setAttribute("aria-controls", panelId);
      tab.setAttribute("data-framework", fw.key);
      tab.textContent = fw.label;
      list.appendChild(tab);

      var panel = document.createElement("div");
      panel.className = "fw-tabs__panel";
      panel.id = panelId;
      panel.setAttribute("role", "tabpanel");
      panel.setAttribute("aria-labelledby", tabId);
      panel.setAttribute("data-framework", fw.key);
      panel.setAttribute("data-label", fw.label);
      panel.tabIndex = 0;
      var cells = run.filter(function (cell) { return frameworkIndex(cell) === i; });
      cells.forEach(function (cell) { panel.appendChild(cell); });
      if (!cells.length) {
        var note = document.createElement("p");
        note.className = "fw-tabs__empty";
        note.textContent = "This step has no " + fw.label + " code.";
        panel.appendChild(note);
      }
      group.appendChild(panel);
    });
  }

  function select(framework) {
    root.setAttribute("data-framework", framework);
    document.querySelectorAll(".fw-tabs").forEach(function (group) {
      group.querySelectorAll(".fw-tabs__tab").forEach(function (tab) {
        var on = tab.getAttribute("data-framework") === framework;
        tab.setAttribute("aria-selected", on ? "true" : "false");
        tab.tabIndex = on ? 0 : -1;
      });
      group.querySelectorAll(".fw-tabs__panel").forEach(function (panel) {
        panel.hidden = panel.getAttribute("data-framework") !== framework;
      });
    });
  }

  // Switch, store, and keep the clicked tab where it was on screen (panels differ in height).
  function choose(tab) {
    var before = tab.getBoundingClientRect().top;
    var framework = tab.getAttribute("data-framework");
    select(framework);
    store(framework);
    var shift = tab.getBoundingClientRect().top - before;
    if (shift) window.scrollBy(0, shift);
  }

  function onKeydown(event) {
    var tabs = Array.prototype.slice.call(event.currentTarget.querySelectorAll(".fw-tabs__tab"));
    var i = tabs.indexOf(document.activeElement);
    if (i < 0) return;
    var next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    var tab = tabs[(next + tabs.length) % tabs.length];
    choose(tab);
    tab.focus();
  }

  // A link to an element inside a hidden panel (#some-id) shows that panel.
  function revealHashTarget() {
    var id = decodeURIComponent(window.location.hash.slice(1));
    var target = id && document.getElementById(id);
    var panel = target && target.closest && target.closest(".fw-tabs__panel");
    if (panel && panel.hidden) select(panel.getAttribute("data-framework"));
  }

  function init() {
    try {
      findRuns().forEach(buildGroup);
      select(root.getAttribute("data-framework"));
      document.querySelectorAll(".fw-tabs__list").forEach(function (list) {
        list.addEventListener("click", function (event) {
          var tab = event.target.closest(".fw-tabs__tab");
          if (tab) choose(tab);
        });
        list.addEventListener("keydown", onKeydown);
      });
      revealHashTarget();
      window.addEventListener("hashchange", revealHashTarget);
      window.addEventListener("storage", function (event) {  // another tab of the site
        if (event.key === STORAGE_KEY && isFramework(event.newValue)) select(event.newValue);
      });
    } finally {
      root.classList.remove("fw-tabs-pending");
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
