// Footage uploads straight from the browser to S3 (multipart, presigned part URLs), when the
// board says S3 is configured (data-direct-* on the form). Otherwise the form posts normally.
// The bucket needs a CORS rule allowing PUT from this site and exposing the ETag header.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !form.getAttribute("data-direct-start") || !window.fetch) { return; }
  var out = document.getElementById("upload-progress");
  var csrf = form.querySelector('input[name="csrf_token"]').value;

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) { throw new Error((data.error && data.error.message) || r.statusText); }
        return data;
      });
    });
  }

  function uploadOne(file, title) {
    return post(form.getAttribute("data-direct-start"), { filename: file.name, size: file.size }).then(function (up) {
      var etags = [];
      var n = 0;
      function next() {
        n += 1;
        if (n > up.part_count) {
          return post(form.getAttribute("data-direct-complete"), { upload: up.upload, parts: etags, title: title });
        }
        var blob = file.slice((n - 1) * up.part_size, Math.min(file.size, n * up.part_size));
        return post(form.getAttribute("data-direct-parts"), { upload: up.upload, parts: [n] }).then(function (urls) {
          return fetch(urls.urls[String(n)], { method: "PUT", body: blob });
        }).then(function (r) {
          if (!r.ok) { throw new Error("S3 refused part " + n + " (" + r.status + ")"); }
          etags.push({ part: n, etag: r.headers.get("ETag") });
          out.textContent = file.name + ": " + Math.round(100 * n / up.part_count) + "%";
          return next();
        });
      }
      return next();
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var files = Array.prototype.slice.call(form.querySelector('input[type="file"]').files);
    var title = files.length === 1 ? form.querySelector('input[name="title"]').value : "";
    var chain = Promise.resolve();
    files.forEach(function (file) { chain = chain.then(function () { return uploadOne(file, title); }); });
    chain.then(function () { window.location.reload(); })
      .catch(function (err) { out.textContent = "Upload failed: " + err.message; });
  });
}());
