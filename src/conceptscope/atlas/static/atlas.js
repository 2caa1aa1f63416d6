// The concept atlas: per model and layer one column of concept cards per method, the layer's alignment and
// recovery tables, then the claims. Every string from the data is set with textContent (never as markup).
(function () {
  const DASH = "\u2013";

  // a number for reading: null / missing -> "–", integers as they are, tiny values in exponent form
  function fmt(x) {
    if (x == null || x === "") return DASH;
    if (typeof x !== "number") return String(x);
    if (Number.isInteger(x)) return String(x);
    if (x !== 0 && Math.abs(x) < 1e-3) return x.toExponential(1);
    return String(Number(x.toFixed(3)));
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = String(text);
    return e;
  }
  // a link from {label, href}; a script URL is shown as plain text, never followed
  function link(l, label) {
    const a = el("a", null, label != null ? label : l.label);
    const href = l.href == null ? "" : String(l.href);
    if (href && !/^\s*(javascript|vbscript):/i.test(href)) a.href = href;
    return a;
  }
  function table(cls, headers, rows) {
    const t = el("table", "grid " + cls);
    const tr = el("tr");
    for (const h of headers) tr.appendChild(el("th", null, h));
    t.appendChild(el("thead")).appendChild(tr);
    const body = t.appendChild(el("tbody"));
    for (const row of rows) {
      const r = body.appendChild(el("tr"));
      for (const cell of row) {
        const td = r.appendChild(el("td"));
        if (cell instanceof Node) td.appendChild(cell);
        else {
          td.textContent = fmt(cell);
          if (typeof cell === "number") td.className = "num";
        }
      }
    }
    return t;
  }

  function conceptCard(c) {
    const card = el("div", "concept");
    card.dataset.concept = String(c.name);
    if (c.thumbnail) {
      const img = el("img");
      img.alt = String(c.name);
      img.src = String(c.thumbnail);
      card.appendChild(img);
    } else card.appendChild(el("div", "noimg", "no images"));
    card.appendChild(el("div", "name", c.name));
    card.appendChild(el("div", "size", "size " + fmt(c.size)));
    const f = c.faithfulness;
    let faith = "faithfulness: not scored";
    if (f != null) {
      faith = `logit drop ${fmt(f.observed)}; random directions ${fmt(f.random_mean)} (p ${fmt(f.p_value)})`;
      if (f.set_mean != null) faith += `; random image sets ${fmt(f.set_mean)} (p ${fmt(f.set_p_value)})`;
    }
    card.appendChild(el("div", "faith", faith));
    if (c.counterparts.length) {
      const ul = card.appendChild(el("ul", "counterparts"));
      for (const m of c.counterparts) {
        const li = ul.appendChild(el("li", null,
          `best match \u2194 ${m.method} ${m.concept} (J ${fmt(m.jaccard)} on ${fmt(m.n_universe)} images)`));
        if (m.counterpart) {
          li.appendChild(el("b", "counterpart", " counterpart"));
        }
      }
    }
    if (c.recovery != null && c.recovery.length) {
      const ul = card.appendChild(el("ul", "recovery"));
      for (const r of c.recovery) {
        ul.appendChild(el("li", null, `best match of planted ${r.planted}: F1 ${fmt(r.f1)} (p ${fmt(r.p_value)})`));
      }
    }
    return card;
  }

  function methodColumn(m) {
    const col = el("div", "method");
    col.dataset.method = String(m.method);
    col.appendChild(el("h4", null, m.variant == null || m.variant === "" ? m.method : `${m.method} (${m.variant})`));
    const count = col.appendChild(el("p", "count", `${fmt(m.shown)} of ${fmt(m.n_concepts)} concepts shown`));
    if (m.link != null) {
      count.appendChild(document.createTextNode(" \u00b7 "));
      count.appendChild(link(m.link));
    }
    if (!m.concepts.length) col.appendChild(el("p", "note", "no concepts"));
    for (const c of m.concepts) col.appendChild(conceptCard(c));
    return col;
  }

  function alignmentTable(rows) {
    return table("alignment", ["methods", "images compared", "concepts", "with counterpart",
      "matched \u2265 threshold", "threshold", "mean matched J", "null mean", "null q95", "p", "heatmap"],
    rows.map((a) => [
      `${a.method_a} \u2194 ${a.method_b}`, a.n_universe, `${fmt(a.n_a)} / ${fmt(a.n_b)}`,
      `${fmt(a.n_a_with_counterpart)} / ${fmt(a.n_b_with_counterpart)}`, a.n_matched_above, a.threshold,
      a.mean_matched_jaccard, a.null_mean, a.null_q95, a.p_value,
      a.figure ? link({href: a.figure}, "heatmap") : DASH]));
  }

  function recoveryTable(rows) {
    return table("recovery", ["method", "variant", "planted", "carriers compared", "best concept", "precision",
      "recall", "F1", "null mean", "null q95", "p", "class baseline F1"], rows.map((r) => [r.method, r.variant,
      r.planted, r.planted_in_universe, r.best_concept, r.precision, r.recall, r.f1, r.null_mean, r.null_q95,
      r.p_value, r.class_f1]));
  }

  function layerBlock(layer, id) {
    const div = el("div", "layer");
    div.id = id;
    div.dataset.layer = String(layer.layer);
    div.appendChild(el("h3", null, layer.layer));
    const cols = div.appendChild(el("div", "methods"));
    for (const m of layer.methods) cols.appendChild(methodColumn(m));
    div.appendChild(el("h4", null, "alignment"));
    if (layer.alignment.length) div.appendChild(alignmentTable(layer.alignment));
    else div.appendChild(el("p", "note", layer.methods.length < 2 ? "one method at this layer: nothing to align"
      : "no alignment computed at this layer"));
    if (layer.recovery.length) {
      div.appendChild(el("h4", null, "recovery of the planted concepts"));
      div.appendChild(recoveryTable(layer.recovery));
    }
    return div;
  }

  function modelSection(m, i, nav) {
    const sec = el("section", "model");
    sec.id = "m" + i;
    sec.dataset.model = String(m.model);
    sec.appendChild(el("h2", null, `${m.model} \u2014 ${m.dataset} (${m.split})`));
    sec.appendChild(el("p", "ran", "methods: " + (m.methods.length ? m.methods.join(", ") : "none")));
    if (m.links.length) {
      const ul = sec.appendChild(el("ul", "links"));
      for (const l of m.links) ul.appendChild(el("li")).appendChild(link(l));
    }
    const li = nav.appendChild(el("li"));
    li.appendChild(link({href: "#" + sec.id}, m.model));
    const sub = li.appendChild(el("ul"));
    m.layers.forEach((layer, j) => {
      const block = sec.appendChild(layerBlock(layer, `${sec.id}-l${j}`));
      sub.appendChild(el("li")).appendChild(link({href: "#" + block.id}, layer.layer));
    });
    if (!m.layers.length) sec.appendChild(el("p", "note", "no layers with concepts"));
    return sec;
  }

  function header(d) {
    const dl = document.getElementById("settings");
    for (const [k, v] of Object.entries(d.settings)) {
      dl.appendChild(el("dt", null, k));
      dl.appendChild(el("dd", null, typeof v === "boolean" ? String(v) : fmt(v)));
    }
    const links = document.getElementById("page-links");
    if (d.claims_href) links.appendChild(link({href: d.claims_href}, "the claims page (reproduction table)"));
    const figs = document.getElementById("figures");
    if (d.figures.length) {
      figs.appendChild(el("h2", null, "figures"));
      const ul = figs.appendChild(el("ul"));
      for (const f of d.figures) ul.appendChild(el("li")).appendChild(link(f));
    }
  }

  function claimsTable(rows) {
    const body = document.querySelector("#claims tbody");
    const counts = {};
    for (const r of rows) {
      counts[r.verdict] = (counts[r.verdict] || 0) + 1;
      const tr = body.appendChild(el("tr"));
      [r.claim_id, r.figure, r.paper_value, r.measured_value, r.verdict, r.detail].forEach((v, i) => {
        const td = tr.appendChild(el("td", null, v == null ? "" : v));
        if (i === 4) td.className = String(r.verdict).replaceAll(" ", "-");
        if (i === 5) td.className = "detail";
      });
    }
    document.getElementById("claim-counts").textContent = rows.length
      ? Object.entries(counts).map(([v, n]) => n + " " + v).join(", ") : "no claims";
  }

  try {
    const d = JSON.parse(document.getElementById("atlas-data").textContent);
    header(d);
    const nav = document.getElementById("nav-list");
    const models = document.getElementById("models");
    d.models.forEach((m, i) => models.appendChild(modelSection(m, i, nav)));
    if (!d.models.length) models.appendChild(el("p", "note", "no models"));
    nav.appendChild(el("li")).appendChild(link({href: "#claims-section"}, "claims"));
    claimsTable(d.claims);
    markReady();
  } catch (err) {
    markFailed(err, "main", "the atlas");
  }
})();
