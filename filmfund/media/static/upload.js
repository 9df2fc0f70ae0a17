// Footage uploads from the board, with a bar per file (bytes sent, percent, time left), resumable
// on a dropped connection:
// - to the app, in chunks (filmfund/media/resumable.py: POST to open, PATCH each chunk with its
//   Upload-Offset, HEAD to ask what the server has after a failure, POST .../complete), for any
//   storage; an upload cut by a closed tab resumes when the same file is chosen again (localStorage);
// - straight to S3 in parts (presigned PUTs) when the board says S3 is configured: a failed part
//   is sent again, the parts already stored are kept.
// Without fetch the form posts the files normally.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.fetch || !window.XMLHttpRequest) { return; }
  var out = document.getElementById("upload-progress");
  var csrf = form.querySelector('input[name="csrf_token"]').value;
  var direct = form.getAttribute("data-direct-start");
  var RETRIES = 8;

  function json(method, url, body) {
    return fetch(url, {
      method: method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) { var e = new Error((data.error && data.error.message) || r.statusText); e.status = r.status; throw e; }
        return data;
      });
    });
  }

  // One request whose upload reports its bytes; resolves with the XHR, rejects on a network error.
  function send(method, url, headers, blob, onBytes) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      Object.keys(headers).forEach(function (k) { xhr.setRequestHeader(k, headers[k]); });
      xhr.upload.onprogress = function (e) { onBytes(e.loaded); };
      xhr.onload = function () { resolve(xhr); };
      xhr.onerror = xhr.onabort = xhr.ontimeout = function () { reject(new Error("connection lost")); };
      xhr.send(blob);
    });
  }

  function wait(ms) { return new Promise(function (r) { window.setTimeout(r, ms); }); }

  function human(n) {
    var units = ["B", "KB", "MB", "GB", "TB"], i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
    return (i === 0 ? String(n) : n.toFixed(1)) + " " + units[i];
  }
  function duration(s) {
    if (s < 60) { return Math.max(1, Math.round(s)) + " s"; }
    if (s < 3600) { return Math.round(s / 60) + " min"; }
    return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
  }

  // The bar of one file: bytes the storage has, plus those of the request in flight.
  function Bar(file) {
    var li = document.createElement("li");
    li.className = "upload";
    li.innerHTML = '<span class="name"></span> <progress max="1" value="0"></progress> ' +
      '<span class="upload-status" aria-live="polite"></span>';
    li.querySelector(".name").textContent = file.name;
    out.appendChild(li);
    this.li = li;
    this.bar = li.querySelector("progress");
    this.status = li.querySelector(".upload-status");
    this.size = file.size;
    this.started = Date.now();
    this.base = null;  // bytes already there when this page began sending (not counted in the rate)
    this.sent = 0;
    this.note = "";
  }
  Bar.prototype.show = function (sent) {
    if (this.base === null) { this.base = sent; this.started = Date.now(); }
    this.sent = Math.max(0, Math.min(this.size, sent));
    var pct = this.size ? this.sent / this.size : 1;
    this.bar.value = pct;
    this.bar.setAttribute("data-sent", String(this.sent));
    this.bar.textContent = Math.floor(pct * 100) + "%";
    var text = human(this.sent) + " of " + human(this.size) + " · " + Math.floor(pct * 100) + "%";
    var secs = (Date.now() - this.started) / 1000, rate = (this.sent - this.base) / secs;
    if (this.sent < this.size && secs > 0.5 && rate > 0) {
      text += " · about " + duration((this.size - this.sent) / rate) + " left";
    }
    this.status.textContent = text + (this.note ? " · " + this.note : "");
  };
  Bar.prototype.say = function (note) { this.note = note; this.show(this.sent); };
  Bar.prototype.done = function (data) {
    this.bar.value = 1;
    this.bar.textContent = "100%";
    this.li.setAttribute("data-done", "1");
    this.status.textContent = human(this.size) + " · " + (data.created ? "uploaded, queued for verification" : "already here (same bytes)") + " · ";
    var a = document.createElement("a");
    a.href = data.url || "#";
    a.textContent = "open";
    this.status.appendChild(a);
  };

  // --- to the app, in chunks --------------------------------------------------------------------
  function resumeKey(file) { return "filmfund-upload:" + file.name + ":" + file.size + ":" + file.lastModified; }

  function serverOffset(url) {
    return fetch(url, { method: "GET", credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (r.status === 404) { return null; }
        if (!r.ok) { throw new Error("the server answered " + r.status); }
        return r.json().then(function (d) { return d.offset; });
      });
  }

  function openUpload(file, title) {
    var key = resumeKey(file), kept = null;
    try { kept = JSON.parse(window.localStorage.getItem(key) || "null"); } catch (e) { kept = null; }
    var resume = kept ? serverOffset(kept.url).catch(function () { return null; }) : Promise.resolve(null);
    return resume.then(function (offset) {
      if (offset !== null && kept) { return { url: kept.url, chunk_size: kept.chunk_size, offset: offset, resumed: true }; }
      return json("POST", form.getAttribute("data-resumable-start"), { filename: file.name, size: file.size, title: title })
        .then(function (up) {
          try { window.localStorage.setItem(key, JSON.stringify({ url: up.url, chunk_size: up.chunk_size })); } catch (e) { /* private mode */ }
          return up;
        });
    });
  }

  function uploadResumable(file, title, bar) {
    return openUpload(file, title).then(function (up) {
      var offset = up.offset, failures = 0;
      if (up.resumed) { bar.say("resumed at " + human(offset)); }
      bar.show(offset);
      function next() {
        if (offset >= file.size) {
          return json("POST", up.url + "/complete", { title: title }).then(function (data) {
            try { window.localStorage.removeItem(resumeKey(file)); } catch (e) { /* private mode */ }
            return data;
          });
        }
        var end = Math.min(file.size, offset + up.chunk_size);
        return send("PATCH", up.url, { "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream",
                                       "X-CSRFToken": csrf, "Tus-Resumable": "1.0.0" },
                    file.slice(offset, end), function (n) { bar.show(offset + n); })
          .then(function (xhr) {
            if (xhr.status === 204) {
              offset = parseInt(xhr.getResponseHeader("Upload-Offset"), 10);
              failures = 0;
              if (bar.note) { bar.say(""); }
              bar.show(offset);
              return next();
            }
            if (xhr.status === 409 && xhr.getResponseHeader("Upload-Offset")) {
              offset = parseInt(xhr.getResponseHeader("Upload-Offset"), 10);
              return next();
            }
            var msg = xhr.statusText;
            try { msg = JSON.parse(xhr.responseText).error.message; } catch (e) { /* not JSON */ }
            throw new Error(msg);
          }, function () { return recover(); });
      }
      function recover() {  // the connection dropped: ask what the server has, go on from there
        failures += 1;
        if (failures > RETRIES) { throw new Error("the connection keeps dropping; choose the file again to resume"); }
        bar.say("connection lost, resuming…");
        return wait(Math.min(30000, 500 * Math.pow(2, failures - 1))).then(function () {
          return serverOffset(up.url);
        }).then(function (have) {
          if (have === null) { throw new Error("the server no longer has this upload; start it again"); }
          offset = have;
          bar.say("resumed at " + human(offset));
          return next();
        }, function () { return recover(); });
      }
      return next();
    });
  }

  // --- straight to S3, in parts -------------------------------------------------------------------
  function uploadDirect(file, title, bar) {
    return json("POST", direct, { filename: file.name, size: file.size }).then(function (up) {
      var etags = [], n = 0, stored = 0;
      bar.show(0);
      function part(number, tries) {
        var from = (number - 1) * up.part_size, blob = file.slice(from, Math.min(file.size, number * up.part_size));
        return json("POST", form.getAttribute("data-direct-parts"), { upload: up.upload, parts: [number] }).then(function (urls) {
          return send("PUT", urls.urls[String(number)], {}, blob, function (b) { bar.show(stored + b); });
        }).then(function (xhr) {
          if (xhr.status < 200 || xhr.status >= 300) { throw new Error("S3 refused part " + number + " (" + xhr.status + ")"); }
          return { part: number, etag: xhr.getResponseHeader("ETag"), size: blob.size };
        }, function () {
          if (tries >= RETRIES) { throw new Error("the connection keeps dropping"); }
          bar.say("connection lost, resuming…");
          return wait(Math.min(30000, 500 * Math.pow(2, tries))).then(function () { return part(number, tries + 1); });
        });
      }
      function next() {
        n += 1;
        if (n > up.part_count) {
          return json("POST", form.getAttribute("data-direct-complete"), { upload: up.upload, parts: etags, title: title });
        }
        return part(n, 0).then(function (p) {
          etags.push({ part: p.part, etag: p.etag });
          stored += p.size;
          if (bar.note) { bar.say(""); }
          bar.show(stored);
          return next();
        });
      }
      return next();
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var button = form.querySelector('button[type="submit"]');
    var files = Array.prototype.slice.call(form.querySelector('input[type="file"]').files);
    var title = files.length === 1 ? form.querySelector('input[name="title"]').value : "";
    button.disabled = true;
    out.textContent = "";
    var chain = Promise.resolve();
    files.forEach(function (file) {
      var bar = new Bar(file);
      chain = chain.then(function () {
        return (direct ? uploadDirect(file, title, bar) : uploadResumable(file, title, bar)).then(function (data) {
          bar.done(data);
        }, function (err) {
          bar.li.setAttribute("data-failed", "1");
          bar.status.textContent = "Upload failed: " + err.message;
        });
      });
    });
    chain.then(function () { button.disabled = false; form.reset(); });
  });
}());
