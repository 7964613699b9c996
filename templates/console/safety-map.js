// The 安否 page's map: districts shaded by the answers to the chosen alert — green where everyone who answered
// is evacuated or safe, red where someone needs help (darker: more requests). Refreshed with the page's counts.
(function () {
  "use strict";
  var el = document.getElementById("safety-map");
  if (!el || !window.L || !window.fetch) { return; }
  var ref = el.getAttribute("data-ref") || "";
  var map = L.map(el);
  L.tileLayer("https://cyberjapandata.gsi.go.jp/xyz/std/{z}/{x}/{y}.png", { attribution: "地理院タイル", maxZoom: 18 }).addTo(map);
  var layer = null;
  function style(c) {
    if (!c) { return { color: "#90a4ae", weight: 0.3, fillOpacity: 0.03 }; }
    if (c.help > 0) {
      var a = Math.min(0.9, 0.35 + 0.15 * c.help);
      return { color: "#b71c1c", weight: 1, fillColor: "#d32f2f", fillOpacity: a };
    }
    return { color: "#2e7d32", weight: 0.8, fillColor: "#43a047", fillOpacity: 0.45 };
  }
  function load(fit) {
    fetch("/console/safety/counts.json?ref=" + encodeURIComponent(ref), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (counts) {
        layer.eachLayer(function (l) {
          var c = counts[l.feature.properties.id];
          l.setStyle(style(c));
          l.setTooltipContent((l.feature.properties.ward || "") + l.feature.properties.name +
            (c ? "：避難 " + c.evacuated + "・安全 " + c.safe + "・助けが必要 " + c.help : "：報告なし"));
        });
        if (fit) {
          var b = null;
          layer.eachLayer(function (l) { if (counts[l.feature.properties.id]) { b = b ? b.extend(l.getBounds()) : l.getBounds(); } });
          map.fitBounds(b || layer.getBounds());
        }
      });
  }
  fetch("/console/alerts/districts.geojson", { credentials: "same-origin" })
    .then(function (r) { if (!r.ok) { throw new Error("status " + r.status); } return r.json(); })
    .then(function (gj) {
      layer = L.geoJSON(gj, {
        style: function (f) { return Object.assign({ className: "d-" + f.properties.id }, style(null)); },
        onEachFeature: function (f, l) { l.bindTooltip(f.properties.name); }
      }).addTo(map);
      map.fitBounds(layer.getBounds());
      load(true);
      window.setInterval(function () { if (!document.hidden) { load(false); } }, 10000);
    })
    .catch(function () { el.textContent = "地図を読み込めませんでした。下の表をご覧ください。"; });
})();
