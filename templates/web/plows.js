// The resident plow map (/plows). Served from the binary; no inline script (the CSP forbids it).
"use strict";
const COLORS = { lt1h: "#2b8a3e", lt3h: "#74b816", lt6h: "#f59f00", gt6h: "#c92a2a", never: "#adb5bd" };
const map = L.map("map", { preferCanvas: false });
L.tileLayer("https://cyberjapandata.gsi.go.jp/xyz/std/{z}/{x}/{y}.png", {
  maxZoom: 18,
  attribution: '<a href="https://maps.gsi.go.jp/development/ichiran.html" target="_blank" rel="noopener">地理院タイル</a>'
}).addTo(map);
const roadsLayer = L.layerGroup().addTo(map);
const trailsLayer = L.layerGroup().addTo(map);
const vehiclesLayer = L.layerGroup().addTo(map);
let placed = false;

function stateLabel(v) {
  if (v.state === "offline") return "通信途絶";
  if (v.state === "stale") return "更新停止（" + Math.round(v.last_seen_secs / 60) + "分前）";
  return v.blade === "down" ? "作業中" : "移動中";
}

function markerIcon(v) {
  const el = document.createElement("span");
  el.className = "plow-marker " + v.state;
  el.dataset.vehicle = v.vehicle;
  el.textContent = v.vehicle;
  return L.divIcon({ html: el, className: "", iconSize: null });
}

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(url + " " + r.status);
  return r.json();
}

async function refreshVehicles() {
  const data = await getJSON("/api/plows/vehicles");
  vehiclesLayer.clearLayers();
  const list = document.getElementById("vehicle-list");
  list.replaceChildren();
  const pts = [];
  for (const v of data.vehicles) {
    L.marker([v.lat, v.lon], { icon: markerIcon(v), title: v.vehicle, keyboard: false })
      .bindTooltip(v.vehicle + "：" + stateLabel(v))
      .addTo(vehiclesLayer);
    const li = document.createElement("li");
    li.className = "vehicle-row";
    li.dataset.vehicle = v.vehicle;
    li.textContent = v.vehicle + "　" + stateLabel(v) + "　最終受信 " + new Date(v.ts).toLocaleTimeString("ja-JP");
    list.appendChild(li);
    pts.push([v.lat, v.lon]);
  }
  if (!placed) {
    if (pts.length > 0) map.fitBounds(L.latLngBounds(pts).pad(0.5), { maxZoom: 16 });
    else map.fitBounds([[data.area.south, data.area.west], [data.area.north, data.area.east]]);
    placed = true;
  }
  document.getElementById("updated").textContent =
    "最終更新：" + new Date(data.generated_at).toLocaleTimeString("ja-JP") + "（車両 " + data.vehicles.length + " 台）";
}

async function refreshTrails() {
  const since = new Date(Date.now() - 3600 * 1000).toISOString();
  const data = await getJSON("/api/plows/trails?since=" + encodeURIComponent(since));
  trailsLayer.clearLayers();
  for (const t of data.trails) {
    if (t.points.length < 2) continue;
    L.polyline(t.points.map(p => [p[0], p[1]]), { color: "#1971c2", weight: 3, opacity: 0.6, dashArray: "4 4" })
      .addTo(trailsLayer);
  }
}

async function refreshRoads() {
  const b = map.getBounds().pad(0.2);
  const data = await getJSON("/api/plows/roads?bbox=" + [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(x => x.toFixed(5)).join(","));
  roadsLayer.clearLayers();
  L.geoJSON(data, {
    style: f => ({ color: COLORS[f.properties.band] || COLORS.never, weight: f.properties.band === "never" ? 2 : 4, opacity: 0.85 })
  }).addTo(roadsLayer);
}

async function refresh() {
  try {
    await refreshVehicles();
    await Promise.all([refreshTrails(), refreshRoads()]);
  } catch (e) {
    document.getElementById("updated").textContent = "情報を取得できませんでした。しばらくしてから自動で再試行します。";
  }
}
refresh();
setInterval(refresh, 10000);
map.on("moveend", () => { if (placed) refreshRoads().catch(() => {}); });
