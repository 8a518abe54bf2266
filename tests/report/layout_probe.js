// Stands in for plotly.js inside kaleido 0.2.1's bundled headless Chromium (see headless.py):
// kaleido passes each request's figure to Plotly.toImage, and this one lays out the HTML page
// in figure.layout.html in an iframe of figure.layout.width CSS pixels, then answers with the
// page's measurements (mode "measure") or a PNG of the page as a data URL (mode "screenshot").
(function () {
  function measure(doc, win) {
    var rect = function (el) {
      var r = el.getBoundingClientRect();
      return {left: r.left, right: r.right, width: r.width};
    };
    return {
      inner_width: win.innerWidth,
      scroll_width: doc.documentElement.scrollWidth,
      body: rect(doc.body),
      tables: Array.prototype.map.call(doc.querySelectorAll("table"), function (table) {
        return {table: rect(table), container: rect(table.parentElement),
                container_scroll_width: table.parentElement.scrollWidth,
                container_client_width: table.parentElement.clientWidth};
      }),
      images: Array.prototype.map.call(doc.querySelectorAll("img"), rect),
      cells: Array.prototype.map.call(doc.querySelectorAll("th,td"), function (cell) {
        return cell.textContent;
      }),
      broken_headers: brokenHeaders(doc),
      user_agent: navigator.userAgent
    };
  }

  // The header cells with a word split across lines: each word (a run of non-space characters
  // in one text node; <wbr> ends a text node, so a break there is between words) is measured
  // with a Range, and a word whose boxes start on different lines was broken inside.
  function brokenHeaders(doc) {
    var broken = [];
    Array.prototype.forEach.call(doc.querySelectorAll("th"), function (cell) {
      var walker = doc.createTreeWalker(cell, NodeFilter.SHOW_TEXT, null, false);
      var node, split = [];
      while ((node = walker.nextNode())) {
        var pattern = /\S+/g, match;
        while ((match = pattern.exec(node.data))) {
          var range = doc.createRange();
          range.setStart(node, match.index);
          range.setEnd(node, match.index + match[0].length);
          var tops = {};
          Array.prototype.forEach.call(range.getClientRects(), function (r) {
            if (r.width > 0) { tops[Math.round(r.top)] = true; }
          });
          if (Object.keys(tops).length > 1) { split.push(match[0]); }
        }
      }
      if (split.length) { broken.push({text: cell.textContent, words: split}); }
    });
    return broken;
  }

  function screenshot(doc, width) {
    var height = doc.documentElement.scrollHeight;
    var page = new XMLSerializer().serializeToString(doc.documentElement);
    var svg = "<svg xmlns='http://www.w3.org/2000/svg' width='" + width + "' height='" + height +
      "'><foreignObject x='0' y='0' width='100%' height='100%'>" + page +
      "</foreignObject></svg>";
    return new Promise(function (resolve, reject) {
      var img = new Image();
      img.onload = function () {
        var canvas = document.createElement("canvas");
        canvas.width = width;
        canvas.height = height;
        var ctx = canvas.getContext("2d");
        ctx.fillStyle = "#fff";
        ctx.fillRect(0, 0, width, height);
        ctx.drawImage(img, 0, 0);
        resolve(canvas.toDataURL("image/png"));
      };
      img.onerror = function () { reject(new Error("the page did not render as an image")); };
      img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg);
    });
  }

  window.Plotly = {
    version: "2.0.0",
    toImage: function (figure) {
      var request = figure.layout;
      return new Promise(function (resolve, reject) {
        var frame = document.createElement("iframe");
        frame.style.cssText = "border:0;width:" + request.width + "px;height:" +
          request.height + "px";
        frame.onload = function () {
          try {
            var doc = frame.contentDocument;
            if (request.mode === "screenshot") {
              screenshot(doc, request.width).then(resolve, reject);
            } else {
              resolve(JSON.stringify(measure(doc, frame.contentWindow)));
            }
          } catch (err) {
            reject(err);
          }
        };
        frame.srcdoc = request.html;
        document.body.appendChild(frame);
      });
    }
  };
})();
