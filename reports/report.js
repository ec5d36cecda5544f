// faultline report: a cursor shared by the time charts, with a read-out of
// the values at that moment. No libraries; text is set with textContent.
(function () {
  "use strict";
  var el = document.getElementById("fl-data");
  if (!el) { return; }
  var d = JSON.parse(el.textContent);
  var readout = document.getElementById("readout");
  var charts = Array.prototype.slice.call(document.querySelectorAll("svg.tchart"));
  function us(v) {
    if (!(v > 0)) { return "–"; }
    if (v < 1000) { return v.toFixed(0) + "µs"; }
    if (v < 1e6) { return (v / 1000).toFixed(2) + "ms"; }
    return (v / 1e6).toFixed(2) + "s";
  }
  function rate(v) { return v === undefined ? "–" : (v >= 100 ? v.toFixed(0) : v.toFixed(1)); }
  function spans(list, t) {
    var out = [];
    for (var i = 0; i < list.length; i++) {
      var s = list[i];
      if (t >= s.s && (t <= s.e || s.e === s.s && t - s.s < d.t1 / 200)) { out.push(s.n); }
    }
    return out;
  }
  function show(t, xv) {
    charts.forEach(function (svg) {
      var c = svg.querySelector("line.cursor");
      if (!c) { return; }
      c.setAttribute("x1", xv);
      c.setAttribute("x2", xv);
      c.setAttribute("visibility", "visible");
    });
    var i = Math.floor(t / d.w);
    var parts = ["t = " + t.toFixed(3) + "s"];
    var ph = spans(d.phases, t);
    if (ph.length) { parts.push("phase " + ph[ph.length - 1]); }
    if (d.ok && i >= 0 && i < d.ok.length) {
      parts.push("ok " + rate(d.ok[i]) + "/s, fail " + rate(d.fail[i]) + "/s, info " + rate(d.info[i]) + "/s" +
        (d.mismatch && d.mismatch[i] > 0 ? ", mismatch " + rate(d.mismatch[i]) + "/s" : ""));
      parts.push("p50 " + us(d.p50[i]) + ", p99 " + us(d.p99[i]) + ", max " + us(d.max[i]));
    }
    var fs = spans(d.faults, t);
    parts.push(fs.length ? "faults: " + fs.join("; ") : "no fault in force");
    readout.textContent = parts.join("  ·  ");
  }
  function hide() {
    charts.forEach(function (svg) {
      var c = svg.querySelector("line.cursor");
      if (c) { c.setAttribute("visibility", "hidden"); }
    });
  }
  charts.forEach(function (svg) {
    var px0 = parseFloat(svg.getAttribute("data-px0"));
    var px1 = parseFloat(svg.getAttribute("data-px1"));
    svg.addEventListener("mousemove", function (ev) {
      var r = svg.getBoundingClientRect();
      var vb = svg.viewBox.baseVal;
      var xv = (ev.clientX - r.left) * vb.width / r.width;
      if (xv < px0 || xv > px1) { hide(); return; }
      show((xv - px0) / (px1 - px0) * d.t1, xv);
    });
    svg.addEventListener("mouseleave", hide);
  });
})();
