// The resident shelter map (/shelters). Served from the binary; no inline script (the CSP forbids it).
(function () {
  "use strict";
  var q = new URLSearchParams(location.search);
  var msg = document.getElementById("message");
  var api = "/api/shelters?district=" + encodeURIComponent(q.get("district") || "") +
            "&hazard=" + encodeURIComponent(q.get("hazard") || "");
  // Opened from the menu (no district): near where the resident is, if the browser may tell; else the city.
  function located() {
    if (q.get("district") || !navigator.geolocation) { return Promise.resolve(api); }
    return new Promise(function (done) {
      navigator.geolocation.getCurrentPosition(function (p) {
        done(api + "&lat=" + p.coords.latitude + "&lon=" + p.coords.longitude);
      }, function () { done(api); }, { timeout: 5000, maximumAge: 600000 });
    });
  }
  located().then(fetch).then(function (r) {
    return r.json().then(function (body) { return { ok: r.ok, body: body }; });
  }).then(function (res) {
    if (!res.ok) { msg.textContent = res.body.error || "避難場所を読み込めませんでした。"; return; }
    var d = res.body;
    document.getElementById("title").textContent = d.district.name + (d.district.id ? " 付近" : "から近い") + "の避難場所";
    document.getElementById("subtitle").textContent = d.hazard_label + "に対応した避難場所（開設中を先に、近い順）";
    var map = L.map("map").setView([d.origin.lat, d.origin.lon], 14);
    // 地理院タイル when online; the markers below are drawn whether or not the tiles load.
    L.tileLayer("https://cyberjapandata.gsi.go.jp/xyz/std/{z}/{x}/{y}.png", {
      attribution: '<a href="https://maps.gsi.go.jp/development/ichiran.html">地理院タイル</a>', maxZoom: 18
    }).addTo(map);
    L.circleMarker([d.origin.lat, d.origin.lon], { radius: 6, color: "#e63946" })
      .addTo(map).bindPopup(d.district.name);
    var list = document.getElementById("list");
    var bounds = [[d.origin.lat, d.origin.lon]];
    if (d.shelters.length === 0) {
      msg.textContent = "近くに該当する避難場所が見つかりません。市の案内をご確認ください。";
    } else if (d.shelters.some(function (s) { return !s.opened; })) {
      // Only shelters the city opened are called open; the others are designated, status not announced.
      msg.textContent = "「開設中」の表示がない避難場所は、開設状況を市の発表でご確認ください。";
    }
    d.shelters.forEach(function (s) {
      var km = (s.distance_m / 1000).toFixed(1);
      L.marker([s.lat, s.lon]).addTo(map).bindPopup(s.name + (s.opened ? "（開設中）" : "") + "（約" + km + "km）");
      bounds.push([s.lat, s.lon]);
      var li = document.createElement("li");
      li.className = "shelter";
      li.dataset.id = s.id;
      var name = document.createElement("div"); name.className = "name"; name.textContent = s.name;
      if (s.opened) {
        var tag = document.createElement("span"); tag.className = "opened"; tag.textContent = "開設中";
        name.appendChild(tag);
      }
      var meta = document.createElement("div"); meta.className = "meta";
      meta.textContent = s.address + "　約" + km + "km　";
      var a = document.createElement("a");
      a.href = "https://www.google.com/maps/dir/?api=1&destination=" + s.lat + "," + s.lon;
      a.textContent = "道順を見る"; a.rel = "noopener";
      meta.appendChild(a);
      li.appendChild(name); li.appendChild(meta); list.appendChild(li);
    });
    if (bounds.length > 1) { map.fitBounds(bounds, { padding: [24, 24] }); }
  }).catch(function () { msg.textContent = "避難場所を読み込めませんでした。通信状況をご確認ください。"; });
})();
