
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("nap-data").textContent);
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;"}[c]));
  const cname = (c) => (c >= 0 && c < D.classNames.length ? D.classNames[c] : String(c));
  const idxOf = new Map(D.positions.map((p, i) => [p, i]));
  const byKey = new Map(D.results.map((r) => [r.layer + "\u0000" + r.method, r]));
  const T = D.thumbPx;
  const defaults = {layer: D.layers[0] || "", method: D.methods[0] || "", nap: "", image: "", label: "", pred: "",
    wrong: ""};
  let state = Object.assign({}, defaults);

  function parseHash() {
    const q = new URLSearchParams(location.hash.replace(/^#/, ""));
    const s = Object.assign({}, defaults);
    for (const k of Object.keys(defaults)) if (q.has(k)) s[k] = q.get(k);
    return s;
  }
  function hashOf(s) {
    const q = new URLSearchParams();
    for (const k of Object.keys(defaults)) if (s[k] !== "" && s[k] !== null && s[k] !== undefined) q.set(k, s[k]);
    return "#" + q.toString();
  }
  function go(patch) {
    const h = hashOf(Object.assign({}, state, patch));
    if (h === location.hash) render(); else location.hash = h;
  }
  const predOf = (r, i) => (r.predictions || D.predictions)[i];
  function matches(l, p) {
    return (state.label === "" || l === +state.label) && (state.pred === "" || p === +state.pred)
      && (state.wrong === "" || l !== p);
  }
  const filtering = () => state.label !== "" || state.pred !== "" || state.wrong !== "";

  function fillSelect(el, values, labels, withAny) {
    el.innerHTML = (withAny ? '<option value="">any</option>' : "")
      + values.map((v, i) => '<option value="' + esc(v) + '">' + esc(labels[i]) + "</option>").join("");
  }
  function setup() {
    $("model").textContent = D.model + " · " + D.dataset;
    document.title = "NAPs · " + D.model;
    fillSelect($("layer"), D.layers, D.layers, false);
    fillSelect($("method"), D.methods, D.methods, false);
    const cls = D.classNames.map((_, i) => String(i));
    fillSelect($("flabel"), cls, D.classNames, true);
    fillSelect($("fpred"), cls, D.classNames, true);
    $("layer").addEventListener("change", (e) => go({layer: e.target.value, nap: ""}));
    $("method").addEventListener("change", (e) => go({method: e.target.value, nap: ""}));
    $("flabel").addEventListener("change", (e) => go({label: e.target.value, nap: ""}));
    $("fpred").addEventListener("change", (e) => go({pred: e.target.value, nap: ""}));
    $("fwrong").addEventListener("change", (e) => go({wrong: e.target.checked ? "1" : "", nap: ""}));
    $("naplist").addEventListener("click", (e) => {
      const el = e.target.closest(".nap");
      if (el) go({nap: el.dataset.rank});
    });
    document.body.addEventListener("click", (e) => {
      const im = e.target.closest("img[data-pos]");
      if (im) go({image: im.dataset.pos});
    });
    window.addEventListener("hashchange", () => { state = parseHash(); render(); });
  }

  function thumb(r, pos, prob, cls, focused) {
    const i = idxOf.get(pos);
    const l = D.labels[i], p = predOf(r, i);
    const wrong = l !== p;
    const tip = "position " + pos + " · sample id " + D.sampleIds[i] + " · label " + cname(l) + " · prediction "
      + cname(p) + (prob === null || prob === undefined ? "" : " · p=" + prob);
    return '<figure class="thumb' + (wrong ? " wrong" : "") + (focused ? " focused" : "") + '" style="width:'
      + (T + 6) + 'px">'
      + '<img class="' + cls + '" data-pos="' + pos + '" width="' + T + '" height="' + T + '" alt="' + esc(tip)
      + '" title="' + esc(tip) + '" src="' + D.images[pos] + '">'
      + "<figcaption>" + esc(cname(l)) + "/<wbr>" + esc(cname(p)) + "</figcaption></figure>";
  }

  function statsSvg(st) {
    const n = st.features.length;
    if (!n) return "";
    const L = 44, R = 8, Tp = 8, B = 34, step = Math.max(6, Math.min(16, 640 / n));
    const W = L + R + n * step, H = 190;
    const vals = st.min.concat(st.max).filter((v) => v !== null);
    let lo = Math.min(0, ...vals), hi = Math.max(0, ...vals);
    if (hi - lo < 1e-9) hi = lo + 1;
    const y = (v) => Tp + (hi - v) / (hi - lo) * (H - Tp - B);
    const f = (v) => (v === null ? "n/a" : (+v).toFixed(3));
    const out = ['<svg class="stats" viewBox="0 0 ' + W + " " + H + '" width="' + W + '" height="' + H + '">'];
    out.push('<line x1="' + L + '" x2="' + L + '" y1="' + Tp + '" y2="' + (H - B) + '" stroke="#999"/>');
    for (const v of [lo, 0, hi]) {
      out.push('<line x1="' + (L - 3) + '" x2="' + (W - R) + '" y1="' + y(v) + '" y2="' + y(v) + '" stroke="'
        + (v === 0 ? "#bbb" : "#eee") + '"' + (v === 0 ? ' stroke-dasharray="3,3"' : "") + "/>");
      out.push('<text x="' + (L - 5) + '" y="' + (y(v) + 3) + '" text-anchor="end">' + f(v) + "</text>");
    }
    const every = Math.ceil(n / 16);
    for (let j = 0; j < n; j++) {
      const cx = L + step * (j + 0.5), bw = Math.max(2, step * 0.6);
      const g = (k) => st[k][j];
      if ([g("q1"), g("q3"), g("mean"), g("lw"), g("uw")].some((v) => v === null)) continue;
      out.push('<g class="feat"><title>feature ' + st.features[j] + " (unit " + st.units[j] + ")\nmin " + f(g("min"))
        + "\nlower whisker " + f(g("lw")) + "\nq1 " + f(g("q1")) + "\nmean " + f(g("mean")) + "\nq3 " + f(g("q3"))
        + "\nupper whisker " + f(g("uw")) + "\nmax " + f(g("max")) + "</title>");
      out.push('<rect x="' + (cx - step / 2) + '" y="' + Tp + '" width="' + step + '" height="' + (H - Tp - B)
        + '" fill="transparent"/>');
      out.push('<line x1="' + cx + '" x2="' + cx + '" y1="' + y(g("uw")) + '" y2="' + y(g("lw")) + '" stroke="#555"/>');
      for (const k of ["lw", "uw"]) {
        out.push('<line x1="' + (cx - bw / 3) + '" x2="' + (cx + bw / 3) + '" y1="' + y(g(k)) + '" y2="' + y(g(k))
          + '" stroke="#555"/>');
      }
      const top = y(g("q3")), h = Math.max(1, y(g("q1")) - top);
      out.push('<rect x="' + (cx - bw / 2) + '" y="' + top + '" width="' + bw + '" height="' + h
        + '" fill="#9ecae1" stroke="#2b6c99" stroke-width="0.8"/>');
      out.push('<line x1="' + (cx - bw / 2) + '" x2="' + (cx + bw / 2) + '" y1="' + y(g("mean")) + '" y2="'
        + y(g("mean")) + '" stroke="#e6550d" stroke-width="2"/>');
      for (const [k, w] of [["min", "lw"], ["max", "uw"]]) {
        if (g(k) !== null && Math.abs(g(k) - g(w)) > 1e-9) {
          out.push('<circle cx="' + cx + '" cy="' + y(g(k)) + '" r="1.6" fill="#555"/>');
        }
      }
      out.push("</g>");
      if (j % every === 0) {
        out.push('<text x="' + cx + '" y="' + (H - B + 12) + '" text-anchor="middle">' + st.features[j] + "</text>");
      }
    }
    out.push('<text x="' + (L + (W - L - R) / 2) + '" y="' + (H - 6) + '" text-anchor="middle">feature</text>');
    out.push("</svg>");
    return out.join("");
  }

  function renderList(r) {
    const naps = r.naps.slice().sort((a, b) => b.persistence - a.persistence || a.rank - b.rank);
    const rows = [];
    for (const n of naps) {
      let count = 0;
      for (const [l, p, c] of n.mix) if (matches(l, p)) count += c;
      if (filtering() && count === 0) continue;
      const byLabel = new Map();
      for (const [l, , c] of n.mix) byLabel.set(l, (byLabel.get(l) || 0) + c);
      const [top, topCount] = [...byLabel.entries()].sort((a, b) => b[1] - a[1])[0] || [0, 0];
      const wrong = n.mix.reduce((s, [l, p, c]) => s + (l !== p ? c : 0), 0);
      rows.push('<div class="nap' + (String(n.rank) === state.nap ? " selected" : "") + '" data-rank="' + n.rank
        + '"><div class="t">NAP ' + n.rank + "</div>"
        + '<div class="s">' + n.size + " members · persistence " + n.persistence.toFixed(3) + "</div>"
        + '<div class="s">mostly ' + esc(cname(top)) + " (" + Math.round(100 * topCount / n.size) + "%) · "
        + wrong + " misclassified" + (filtering() ? " · " + count + " match the filters" : "") + "</div>"
        + '<div class="previews">' + n.members.slice(0, 6).map((p) => '<img class="preview" alt="" src="'
          + D.images[p] + '">').join("") + "</div></div>");
    }
    $("naplist").innerHTML = rows.length ? rows.join("")
      : '<div class="nap-empty muted" style="padding:8px">' + (r.naps.length ? "no NAP matches the filters"
        : "no NAPs: all inputs are noise") + "</div>";
    return rows.length;
  }

  function renderDetail(r) {
    const n = r.naps.find((x) => String(x.rank) === state.nap);
    if (!n) {
      $("detail").innerHTML = '<p class="muted">' + (r.naps.length ? "select a NAP on the left" : "no NAPs") + "</p>";
      return;
    }
    const shown = [];
    n.members.forEach((p, j) => {
      const i = idxOf.get(p);
      if (matches(D.labels[i], predOf(r, i))) shown.push(thumb(r, p, n.probs[j], "member", String(p) === state.image));
    });
    const byLabel = new Map();
    for (const [l, , c] of n.mix) byLabel.set(l, (byLabel.get(l) || 0) + c);
    const mix = [...byLabel.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8)
      .map(([l, c]) => esc(cname(l)) + " " + c).join(", ");
    $("detail").innerHTML = "<h2>NAP " + n.rank + " · " + n.size + " members · persistence "
      + n.persistence.toFixed(3) + "</h2>"
      + '<div class="muted">' + esc(r.layer) + " · " + esc(r.method) + " · labels: " + mix + "</div>"
      + '<div class="muted">members by membership probability: the first ' + n.members.length + " of " + n.size
      + (filtering() ? ", " + shown.length + " of them match the filters" : "")
      + "; caption label/prediction, red frame = misclassified; click an image to follow it</div>"
      + '<div class="members">' + shown.join("") + "</div>"
      + "<h3>unit statistics (normalized activations of the members)</h3>"
      + '<div class="muted">' + esc(n.stats.note) + " · box q1–q3, orange bar mean, "
      + "whiskers q1 − 1.5 IQR … q3 + 1.5 IQR (clipped to min / max), dots min / max</div>"
      + statsSvg(n.stats);
  }

  function renderImage() {
    const el = $("imageview");
    const pos = state.image === "" ? NaN : +state.image;
    if (!idxOf.has(pos)) {
      el.innerHTML = '<h2>image view</h2><p class="muted">click an image to see which NAP contains it in each layer'
        + " of the current method.</p>";
      return;
    }
    const i = idxOf.get(pos);
    const rows = D.layers.map((layer) => {
      const r = byKey.get(layer + "\u0000" + state.method);
      const cur = layer === state.layer ? ' class="current"' : "";
      if (!r) return "<tr" + cur + "><td>" + esc(layer) + '</td><td class="muted">no result</td></tr>';
      const k = r.napOf[i];
      if (k < 0) return "<tr" + cur + "><td>" + esc(layer) + '</td><td class="noise">noise in ' + esc(layer)
        + "</td></tr>";
      const n = r.naps[k];
      const h = hashOf({layer: layer, method: state.method, nap: String(k), image: String(pos), label: "", pred: "",
        wrong: ""});
      const inShown = n.members.indexOf(pos) >= 0 ? "" : " (not among the " + n.members.length + " shown)";
      return "<tr" + cur + "><td>" + esc(layer) + '</td><td><a class="jump" href="' + esc(h) + '">NAP ' + k + "</a> · "
        + n.size + " members · p=" + r.probOf[i] + inShown + "</td></tr>";
    });
    const first = D.results.find((r) => r.method === state.method) || D.results[0];
    el.innerHTML = "<h2>image view</h2>"
      + '<img class="focus" alt="" src="' + D.images[pos] + '">'
      + "<div>position " + pos + " · sample id " + D.sampleIds[i] + "</div>"
      + "<div>label <b>" + esc(cname(D.labels[i])) + "</b> · prediction <b>" + esc(cname(predOf(first, i)))
      + "</b></div><h3>NAP per layer (" + esc(state.method) + ")</h3><table>" + rows.join("") + "</table>";
  }

  function render() {
    if (!D.layers.includes(state.layer)) state.layer = defaults.layer;
    if (!D.methods.includes(state.method)) state.method = defaults.method;
    $("layer").value = state.layer;
    $("method").value = state.method;
    $("flabel").value = state.label;
    $("fpred").value = state.pred;
    $("fwrong").checked = state.wrong !== "";
    const r = byKey.get(state.layer + "\u0000" + state.method);
    if (!r) {
      $("summary").textContent = "";
      $("naplist").innerHTML = '<div class="muted" style="padding:8px">no result for this layer and method</div>';
      $("detail").innerHTML = '<p class="muted">no result for layer ' + esc(state.layer) + " with method "
        + esc(state.method) + "</p>";
      renderImage();
      return;
    }
    $("summary").textContent = r.nNaps + " NAPs · noise " + r.nNoise + " of " + r.nSamples + " inputs";
    if (state.nap === "" || !r.naps.some((n) => String(n.rank) === state.nap)) {
      state.nap = "";
      renderList(r);
      const firstNap = $("naplist").querySelector(".nap");
      if (firstNap) state.nap = firstNap.dataset.rank;
    }
    renderList(r);
    renderDetail(r);
    renderImage();
  }

  try {
    setup();
    state = parseHash();
    render();
    markReady();
  } catch (err) {
    markFailed(err, "detail", "the browser");
  }
})();
