// Hover readout of the time under the cursor on every plot, copy buttons
// for replay commands, and the "failed only" toggle. No dependencies.
(function () {
  "use strict";
  var tip = document.getElementById("tip");
  var NS = "http://www.w3.org/2000/svg";
  document.querySelectorAll("svg[data-span]").forEach(function (svg) {
    var x0 = parseFloat(svg.dataset.x0), x1 = parseFloat(svg.dataset.x1), span = parseFloat(svg.dataset.span);
    var h = svg.viewBox.baseVal.height;
    var line = document.createElementNS(NS, "line");
    line.setAttribute("class", "cursor");
    line.setAttribute("y1", "0");
    line.setAttribute("y2", String(h));
    line.style.display = "none";
    svg.appendChild(line);
    svg.addEventListener("mousemove", function (ev) {
      var m = svg.getScreenCTM();
      if (!m) { return; }
      var pt = svg.createSVGPoint();
      pt.x = ev.clientX; pt.y = ev.clientY;
      var p = pt.matrixTransform(m.inverse());
      if (p.x < x0 || p.x > x1) { line.style.display = "none"; tip.hidden = true; return; }
      line.setAttribute("x1", String(p.x));
      line.setAttribute("x2", String(p.x));
      line.style.display = "";
      tip.textContent = "t+" + ((p.x - x0) / (x1 - x0) * span).toFixed(2) + "s";
      tip.style.left = (ev.clientX + 12) + "px";
      tip.style.top = (ev.clientY - 26) + "px";
      tip.hidden = false;
    });
    svg.addEventListener("mouseleave", function () { line.style.display = "none"; tip.hidden = true; });
  });
  document.querySelectorAll("button.copy").forEach(function (b) {
    b.addEventListener("click", function () {
      var code = b.previousElementSibling;
      if (!code) { return; }
      // Select the command too, so it can be copied by hand where the
      // clipboard API is not offered (some browsers on file:// pages).
      var range = document.createRange();
      range.selectNodeContents(code);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      if (!navigator.clipboard) { b.textContent = "selected"; return; }
      navigator.clipboard.writeText(code.textContent).then(function () {
        b.textContent = "copied";
        setTimeout(function () { b.textContent = "copy"; }, 1500);
      }, function () { b.textContent = "selected"; });
    });
  });
  var only = document.getElementById("only-failed");
  if (only) {
    only.addEventListener("change", function () { document.body.classList.toggle("only-failed", only.checked); });
  }
})();
