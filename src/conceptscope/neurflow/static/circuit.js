
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;"}[c]));
  let C, V, nodes, maxW, selected = "";

  const fmtW = (w) => (w > 0 ? "+" : "") + (+w).toFixed(4);
  const sign = (w) => (w < 0 ? "neg" : "pos");
  const patchInfo = (p) => C.patches[String(p)] || {};
  const nodeHash = (id) => "#node=" + encodeURIComponent(id);
  const cardOf = (id) => Array.from(document.querySelectorAll(".group")).find((el) => el.dataset.node === id);

  function img(p, size, cls) {
    const info = patchInfo(p);
    const tip = "patch " + p + " · image " + info.image + (info.sample_id !== undefined ? " · sample id "
      + info.sample_id : "") + " · scale " + info.scale + " · box " + (info.box || []).join(",");
    return '<img class="' + cls + '" data-patch="' + p + '"' + (size ? ' width="' + size + '" height="' + size + '"'
      : "") + ' alt="' + esc(tip) + '" title="' + esc(tip) + '" src="' + V.images[String(p)] + '">';
  }

  function build() {
    const rows = C.layers.map((layer, li) => {
      const ids = C.nodes.filter((n) => String(n.layer) === String(layer))
        .sort((a, b) => a.group - b.group || String(a.id).localeCompare(String(b.id)));
      const cards = ids.map((n) => {
        const shown = n.top_patches.slice(0, Math.min(V.perGroup, V.cardThumbs));
        const neu = n.neurons.slice(0, 6).join(", ") + (n.neurons.length > 6 ? ", …" : "");
        return '<div class="group" data-node="' + esc(n.id) + '" title="' + esc(n.id) + '">'
          + '<div class="t">g' + n.group + " · " + n.neurons.length + " neuron" + (n.neurons.length === 1 ? "" : "s")
          + '</div><div class="s">' + esc(neu) + '</div><div class="s">' + esc(n.n_patches ?? "?") + " patches</div>"
          + '<div class="previews">' + shown.map((p) => img(p, 0, "preview")).join("") + "</div></div>";
      });
      return '<div class="layer" data-layer="' + esc(layer) + '"><div class="lname">' + esc(layer)
        + "<small>" + (li === 0 ? "logit · " : "") + ids.length + " group" + (ids.length === 1 ? "" : "s")
        + '</small></div><div class="groups">' + cards.join("") + "</div></div>";
    });
    $("circuit").insertAdjacentHTML("beforeend", rows.join(""));
    $("circuit").addEventListener("click", (e) => {
      const el = e.target.closest(".group");
      if (el) location.hash = nodeHash(el.dataset.node);
    });
  }

  function drawEdges() {
    const box = $("circuit"), svg = $("edges");
    const o = box.getBoundingClientRect();
    svg.setAttribute("width", box.scrollWidth);
    svg.setAttribute("height", box.scrollHeight);
    svg.replaceChildren();
    const cards = new Map(Array.from(document.querySelectorAll(".group")).map((el) => [el.dataset.node, el]));
    const order = C.edges.map((e, i) => i).sort((a, b) => Math.abs(C.edges[a].weight) - Math.abs(C.edges[b].weight));
    for (const i of order) {
      const e = C.edges[i];
      const a = cards.get(String(e.source)).getBoundingClientRect(), b = cards.get(String(e.target))
        .getBoundingClientRect();
      const x1 = a.left + a.width / 2 - o.left, y1 = a.bottom - o.top;
      const x2 = b.left + b.width / 2 - o.left, y2 = b.top - o.top;
      const my = (y1 + y2) / 2;
      const m = maxW.get(nodes.get(String(e.source)).layer) || 0;
      const r = m > 0 ? Math.abs(e.weight) / m : 0;
      const p = document.createElementNS(svg.namespaceURI, "path");
      p.setAttribute("class", "edge");
      p.setAttribute("d", "M" + x1 + "," + y1 + " C" + x1 + "," + my + " " + x2 + "," + my + " " + x2 + "," + y2);
      p.setAttribute("stroke", e.weight < 0 ? "#d62728" : "#1f77b4");
      p.setAttribute("stroke-width", (0.5 + 5.5 * r).toFixed(2));
      p.setAttribute("stroke-opacity", (0.2 + 0.7 * r).toFixed(3));
      p.dataset.source = e.source;
      p.dataset.target = e.target;
      p.dataset.weight = e.weight;
      const t = document.createElementNS(svg.namespaceURI, "title");
      t.textContent = e.source + " → " + e.target + ": " + fmtW(e.weight);
      p.appendChild(t);
      svg.appendChild(p);
    }
    highlight();
  }

  function highlight() {
    const linked = new Set();
    for (const p of document.querySelectorAll("#edges path.edge")) {
      const on = selected !== "" && (p.dataset.source === selected || p.dataset.target === selected);
      p.classList.toggle("active", on);
      p.classList.toggle("dim", selected !== "" && !on);
      if (on) linked.add(p.dataset.source === selected ? p.dataset.target : p.dataset.source);
    }
    for (const el of document.querySelectorAll(".group")) {
      el.classList.toggle("selected", el.dataset.node === selected);
      el.classList.toggle("linked", linked.has(el.dataset.node));
      el.classList.toggle("faded", selected !== "" && el.dataset.node !== selected && !linked.has(el.dataset.node));
    }
  }

  function edgeList(list, otherKey) {
    if (!list.length) return '<p class="muted">none</p>';
    return '<ul class="edges">' + list.map((e) => {
      const other = String(e[otherKey]);
      return '<li class="edge-item" data-other="' + esc(other) + '"><a href="' + esc(nodeHash(other)) + '">'
        + esc(other) + '</a> <span class="w ' + sign(e.weight) + '">' + fmtW(e.weight) + "</span></li>";
    }).join("") + "</ul>";
  }

  function renderDetail() {
    const n = nodes.get(selected);
    if (!n) {
      $("detail").innerHTML = "<h2>details</h2>" + '<p class="muted">' + (selected ? "no node " + esc(selected)
        + " in this circuit" : "click a group to see its neurons, patches and edges") + "</p>";
      return;
    }
    const byW = (a, b) => Math.abs(b.weight) - Math.abs(a.weight);
    const incoming = C.edges.filter((e) => String(e.target) === n.id).sort(byW);
    const outgoing = C.edges.filter((e) => String(e.source) === n.id).sort(byW);
    const carried = n.top_patches.slice(0, V.perGroup);
    const patches = carried.map((p) => {
      const info = patchInfo(p);
      return '<figure class="patch" style="width:' + (V.thumbPx + 4) + 'px">' + img(p, V.thumbPx, "detail-patch")
        + "<figcaption>#" + p + " · img " + esc(info.image) + "<br>scale " + esc(info.scale) + "<br>box "
        + esc((info.box || []).join(",")) + "</figcaption></figure>";
    });
    $("detail").innerHTML = "<h2>" + esc(n.id) + "</h2>"
      + '<div class="muted">layer <b>' + esc(n.layer) + "</b> · group " + n.group + " · " + esc(n.n_patches ?? "?")
      + " patches in its concept</div>"
      + "<h3>neurons (" + n.neurons.length + ')</h3><div class="neurons">' + esc(n.neurons.join(", ")) + "</div>"
      + "<h3>incoming edges (from the layer above, " + incoming.length + ")</h3>" + edgeList(incoming, "source")
      + "<h3>outgoing edges (to the layer below, " + outgoing.length + ")</h3>" + edgeList(outgoing, "target")
      + "<h3>top patches (" + (carried.length < n.top_patches.length ? "the first " + carried.length + " of "
        + n.top_patches.length : carried.length) + ")</h3>"
      + '<div class="muted">patch id · source image · crop scale · box top,left,height,width</div>'
      + '<div class="patches">' + patches.join("") + "</div>";
  }

  function fromHash() {
    selected = new URLSearchParams(location.hash.replace(/^#/, "")).get("node") || "";
    renderDetail();
    highlight();
    const el = cardOf(selected);
    if (el && el.scrollIntoView) el.scrollIntoView({block: "nearest", inline: "nearest"});
  }

  try {
    C = JSON.parse($("circuit-data").textContent);
    V = JSON.parse($("view-data").textContent);
    nodes = new Map(C.nodes.map((n) => [String(n.id), n]));
    maxW = new Map();  // per source layer: each level of edges has its own scale
    for (const e of C.edges) {
      const layer = nodes.get(String(e.source)).layer;
      maxW.set(layer, Math.max(maxW.get(layer) || 0, Math.abs(e.weight)));
    }
    document.title = V.title;
    $("summary").textContent = C.layers.length + " layers · " + C.nodes.length + " groups · " + C.edges.length
      + " edges";
    build();
    fromHash();
    drawEdges();
    window.addEventListener("hashchange", fromHash);
    window.addEventListener("resize", drawEdges);
    markReady(drawEdges);
  } catch (err) {
    markFailed(err, "detail", "the page");
  }
})();
