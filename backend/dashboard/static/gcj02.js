/* WGS-84 <-> GCJ-02, the same formula and iteration as backend/core/geo.py. */
(function (global) {
  "use strict";
  var A = 6378245.0;
  var EE = 0.00669342162296594323;

  function outsideChina(lon, lat) {
    return !(lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271);
  }
  function transformLat(x, y) {
    var ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    ret += (20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0 / 3.0;
    ret += (20.0 * Math.sin(y * Math.PI) + 40.0 * Math.sin(y / 3.0 * Math.PI)) * 2.0 / 3.0;
    ret += (160.0 * Math.sin(y / 12.0 * Math.PI) + 320 * Math.sin(y * Math.PI / 30.0)) * 2.0 / 3.0;
    return ret;
  }
  function transformLon(x, y) {
    var ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    ret += (20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0 / 3.0;
    ret += (20.0 * Math.sin(x * Math.PI) + 40.0 * Math.sin(x / 3.0 * Math.PI)) * 2.0 / 3.0;
    ret += (150.0 * Math.sin(x / 12.0 * Math.PI) + 300.0 * Math.sin(x / 30.0 * Math.PI)) * 2.0 / 3.0;
    return ret;
  }
  function wgs84ToGcj02(lon, lat) {
    if (outsideChina(lon, lat)) return [lon, lat];
    var dlat = transformLat(lon - 105.0, lat - 35.0);
    var dlon = transformLon(lon - 105.0, lat - 35.0);
    var radlat = lat / 180.0 * Math.PI;
    var magic = 1 - EE * Math.pow(Math.sin(radlat), 2);
    var sqrtmagic = Math.sqrt(magic);
    dlat = (dlat * 180.0) / ((A * (1 - EE)) / (magic * sqrtmagic) * Math.PI);
    dlon = (dlon * 180.0) / (A / sqrtmagic * Math.cos(radlat) * Math.PI);
    return [lon + dlon, lat + dlat];
  }
  function gcj02ToWgs84(lon, lat) {
    if (outsideChina(lon, lat)) return [lon, lat];
    var wlon = lon, wlat = lat;
    for (var i = 0; i < 30; i++) {
      var g = wgs84ToGcj02(wlon, wlat);
      var dlon = g[0] - lon, dlat = g[1] - lat;
      if (Math.abs(dlon) < 1e-10 && Math.abs(dlat) < 1e-10) break;
      wlon -= dlon;
      wlat -= dlat;
    }
    return [wlon, wlat];
  }
  /* Shift every coordinate of a GeoJSON object (returns a copy). */
  function shiftGeoJSON(obj, fn) {
    function coords(c) {
      if (typeof c[0] === "number") { var s = fn(c[0], c[1]); return [s[0], s[1]]; }
      return c.map(coords);
    }
    function geom(g) {
      if (!g) return g;
      if (g.type === "GeometryCollection") return { type: g.type, geometries: g.geometries.map(geom) };
      return { type: g.type, coordinates: coords(g.coordinates) };
    }
    if (obj.type === "FeatureCollection") {
      return Object.assign({}, obj, { features: obj.features.map(function (f) {
        return Object.assign({}, f, { geometry: geom(f.geometry) });
      }) });
    }
    if (obj.type === "Feature") return Object.assign({}, obj, { geometry: geom(obj.geometry) });
    return geom(obj);
  }
  global.HuleiGeo = { wgs84ToGcj02: wgs84ToGcj02, gcj02ToWgs84: gcj02ToWgs84, shiftGeoJSON: shiftGeoJSON,
                      outsideChina: outsideChina };
})(window);
