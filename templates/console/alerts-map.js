// The alert composer's district map: every district of the city as a polygon (Leaflet, same origin); a click
// toggles that district's checkbox in the list below, and checked districts (one by one or a whole ward) are
// drawn filled. The list stays the source of truth: without this script, or without tiles, it works alone.
(function () {
  "use strict";
  var el = document.getElementById("district-map");
  if (!el || !window.L || !window.fetch) { return; }
  var map = L.map(el, { preferCanvas: false });
  L.tileLayer("https://cyberjapandata.gsi.go.jp/xyz/std/{z}/{x}/{y}.png", {
    attribution: "地理院タイル", maxZoom: 18
  }).addTo(map);
  function box(id) { return document.querySelector('input[name="district"][value="' + CSS.escape(id) + '"]'); }
  function wardBox(w) { return document.querySelector('input[name="ward"][value="' + CSS.escape(w || "") + '"]'); }
  function chosen(p) {
    var b = box(p.id), w = wardBox(p.ward);
    return (b && b.checked) || (w && w.checked);
  }
  var layers = [];
  function paint() {
    var n = 0;
    layers.forEach(function (l) {
      var on = chosen(l.feature.properties);
      if (on) { n++; }
      l.setStyle(on ? { color: "#7b1fa2", weight: 1, fillColor: "#ab47bc", fillOpacity: 0.55 }
                    : { color: "#607d8b", weight: 0.5, fillOpacity: 0.05 });
    });
    var c = document.getElementById("map-count");
    if (c) { c.textContent = n + " 地区を選択中"; }
  }
  fetch("/console/alerts/districts.geojson", { credentials: "same-origin" })
    .then(function (r) { if (!r.ok) { throw new Error("status " + r.status); } return r.json(); })
    .then(function (gj) {
      var g = L.geoJSON(gj, {
        style: function (f) { return { className: "d-" + f.properties.id }; },
        onEachFeature: function (f, layer) {
          layers.push(layer);
          layer.bindTooltip((f.properties.ward || "") + f.properties.name);
          layer.on("click", function () {
            var b = box(f.properties.id);
            if (b) { b.checked = !b.checked; paint(); }
          });
        }
      }).addTo(map);
      map.fitBounds(g.getBounds());
      paint();
    })
    .catch(function () { el.textContent = "地図を読み込めませんでした。下の一覧から選んでください。"; });
  document.addEventListener("change", function (e) {
    if (e.target && (e.target.name === "district" || e.target.name === "ward")) { paint(); }
  });
})();
