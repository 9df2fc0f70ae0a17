/* Plays the site's HLS streams (video[data-stream]): Safari natively, every other browser through
   hls.js, served from this site and fetched only when a video is first played (the campaign page's
   first view never carries it). A video without a stream keeps its plain MP4 source. */
(function () {
  "use strict";
  var script = document.currentScript;
  var HLS_SRC = script && script.getAttribute("data-hls-src");
  var loading = null;

  function loadHls() {
    if (window.Hls) return Promise.resolve(window.Hls);
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        var s = document.createElement("script");
        s.src = HLS_SRC;
        s.onload = function () { resolve(window.Hls); };
        s.onerror = reject;
        document.head.appendChild(s);
      });
    }
    return loading;
  }

  function nativeHls(video) {
    // Safari (macOS, iPhone, iPad) plays HLS itself; Chromium may say "maybe" without meaning it.
    return !!video.canPlayType("application/vnd.apple.mpegurl") && /Apple/.test(navigator.vendor || "");
  }

  function fallback(video) {
    var mp4 = video.getAttribute("data-fallback");
    if (mp4) { video.src = mp4; video.play().catch(function () {}); }
    else { video.setAttribute("data-stream-state", "failed"); }
  }

  function start(video) {
    if (video.getAttribute("data-stream-state")) return;
    video.setAttribute("data-stream-state", "loading");
    var url = video.getAttribute("data-stream");
    if (nativeHls(video)) {
      video.src = url;
      video.setAttribute("data-stream-state", "native");
      video.play().catch(function () {});
      return;
    }
    loadHls().then(function (Hls) {
      if (!Hls || !Hls.isSupported()) return fallback(video);
      // No worker: the site's CSP allows scripts from itself only, not from blob: URLs.
      var hls = new Hls({ enableWorker: false, capLevelToPlayerSize: true, startLevel: 0 });
      hls.on(Hls.Events.MANIFEST_PARSED, function () {
        video.setAttribute("data-stream-state", "hls.js");
        video.play().catch(function () {});
      });
      hls.on(Hls.Events.ERROR, function (_e, data) {
        if (data.fatal) { hls.destroy(); fallback(video); }
      });
      hls.loadSource(url);
      hls.attachMedia(video);
    }, function () { fallback(video); });
  }

  var videos = document.querySelectorAll("video[data-stream]");
  for (var i = 0; i < videos.length; i++) {
    (function (video) {
      // A video without a source may not fire "play" when its button is pressed: a click starts it too.
      video.addEventListener("play", function () { start(video); });
      video.addEventListener("click", function () { start(video); });
      video.addEventListener("keydown", function (e) {
        if (e.key === " " || e.key === "Enter") start(video);
      });
    })(videos[i]);
  }
})();
