// Loaded before the Jupyter widget manager on pages with widgets (nb_ipywidgets_js in _config.yml).
(function () {
  // The manager's icon fonts sit next to embed-amd.js. Its webpack runtime finds them from the
  // URL require.js gives its AMD module, so map the module's folder to ours (a global `require`
  // object defined before require.js loads is require.js's configuration).
  var manager = document.currentScript.src.replace(/[^/]*$/, "") + "offline/html-manager";
  // The bundled modules (@jupyter-widgets/base, /controls, ...) each derive their assets'
  // folder from their own module URL too, so the whole @jupyter-widgets prefix maps there.
  window.require = {
    paths: { "@jupyter-widgets/html-manager/dist": manager, "@jupyter-widgets": manager },
  };
  window.__jupyter_widgets_assets_path__ = manager + "/";

  // ipywidgets' primary button is white on #2196f3 (contrast 3.1:1); a darker blue reads at
  // 5.7:1 (!important: the widgets' own stylesheet is added after this one).
  var style = document.createElement("style");
  style.textContent = ".jupyter-button.mod-primary { background-color: #1565c0 !important; }";
  document.head.appendChild(style);

  // ipywidgets 8 draws a slider's handle as a div with role="slider" and its description as a
  // separate <label> tied to nothing, so a screen reader finds a slider with no name: give each
  // handle the description as its aria-label once the widgets are on the page. A figure an
  // interact() drew into its Output widget comes without alt text (myst-nb's alt metadata
  // reaches only the cell's own outputs): say what it is; the frame viewer under each widget
  // describes every frame.
  var naming = false;
  var WIDGET_FIGURE_ALT = "The figure the interactive widget drew for its saved slider settings";
  function nameSliders() {
    naming = false;
    document.querySelectorAll(".jupyter-widgets img:not([alt])").forEach(function (img) {
      img.setAttribute("alt", WIDGET_FIGURE_ALT);
    });
    // A box whose content overflows (a progress bar's row in a narrow column) scrolls, and a
    // keyboard user can only scroll what can take the focus.
    document.querySelectorAll(".widget-subarea .lm-Panel:not([tabindex])").forEach(function (box) {
      if (box.scrollWidth > box.clientWidth || box.scrollHeight > box.clientHeight) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "group");
        box.setAttribute("aria-label", "Widget output (scrollable)");
      }
    });
    document.querySelectorAll(".widget-slider").forEach(function (widget) {
      var label = widget.querySelector(".widget-label");
      var text = label ? label.textContent.trim() : "";
      if (!text) return;
      widget.querySelectorAll('[role="slider"]:not([aria-label]), input:not([aria-label])').forEach(
        function (control) { control.setAttribute("aria-label", text); });
    });
  }
  new MutationObserver(function () {
    if (!naming) { naming = true; window.requestAnimationFrame(nameSliders); }
  }).observe(document.documentElement, { childList: true, subtree: true });

  // ipywidgets 8 typesets widget labels with MathJax 2's MathJax.Hub.Queue, but the book loads
  // MathJax 3: give the widgets a Hub whose Queue runs MathJax 3's typesetPromise.
  if (window.MathJax === undefined) return; // no math on this page, so the widgets skip typesetting
  var hub = {
    Queue: function (job) {
      var mj = window.MathJax;
      var element = Array.isArray(job) ? job[2] : undefined;
      if (mj && mj.startup && mj.startup.promise && typeof mj.typesetPromise === "function") {
        mj.startup.promise = mj.startup.promise.then(function () {
          return mj.typesetPromise(element ? [element] : undefined);
        });
      }
    },
  };
  var config = window.MathJax; // the configuration object until MathJax 3 replaces it
  config.Hub = hub;
  config.startup = config.startup || {};
  var ready = config.startup.ready;
  config.startup.ready = function () {
    if (ready) ready();
    else window.MathJax.startup.defaultReady();
    window.MathJax.Hub = hub;
  };
})();
