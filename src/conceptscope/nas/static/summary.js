(function () {
  try {
    const d = JSON.parse(document.getElementById("nas-data").textContent);
    const cell = 14, rowH = 20, barH = 0.8 * rowH;
    let lo = 0, hi = 0;
    for (const u of d.units) { lo = Math.min(lo, u.first); hi = Math.max(hi, u.first + u.counts.length); }
    const width = (hi - lo + 1) * cell, zeroX = (0 - lo + 0.5) * cell;
    const legend = document.getElementById("legend");
    d.classes.forEach((c, k) => {
      const s = document.createElement("span"); s.className = "swatch"; s.style.background = d.colors[k];
      legend.appendChild(s); legend.appendChild(document.createTextNode(c));
    });
    legend.appendChild(document.createTextNode(
      `  — bar width: 1-${d.thresholds[0] - 1}, ${d.thresholds[0]}-${d.thresholds[1] - 1}, ` +
      `${d.thresholds[1]}+ images; ` +
      "thick line = activation 0"));
    document.getElementById("info").textContent = `${d.units.length} units, ${d.nImages} images`;
    const sel = document.getElementById("type");
    for (const t of d.types) {
      const o = document.createElement("option"); o.value = t; o.textContent = t; sel.appendChild(o);
    }
    const rows = document.getElementById("rows");
    const ns = "http://www.w3.org/2000/svg";
    for (const u of d.units) {
      const row = document.createElement("div"); row.className = "unit-row"; row.dataset.unit = u.unit;
      row.dataset.labels = u.labels;
      const name = document.createElement("span"); name.className = "name";
      name.title = `${u.unit} [${u.edges[0]}, ${u.edges[u.edges.length - 1]}] ${u.labels}`;
      // the whole label list, wrapped after a "+" when it does not fit the column (never cut)
      name.textContent = name.title.replaceAll("+", "+\u200b");
      row.appendChild(name);
      const svg = document.createElementNS(ns, "svg");
      svg.setAttribute("width", width); svg.setAttribute("height", rowH);
      const parts = [];
      u.counts.forEach((c, i) => {
        const n = c.reduce((a, b) => a + b, 0);
        if (!n) return;
        const w = d.barWidths[u.width[i]] * cell, cx = (u.first + i - lo + 0.5) * cell + cell / 2;
        let y = (rowH + barH) / 2;
        c.forEach((k, cls) => {
          if (!k) return;
          const h = barH * k / n; y -= h;
          parts.push(`<rect x="${(cx - w / 2).toFixed(2)}" y="${y.toFixed(2)}" width="${w.toFixed(2)}" ` +
            `height="${h.toFixed(2)}" fill="${d.colors[cls]}"><title>range ${i}: ` +
            `[${u.edges[i]}, ${u.edges[i + 1]}${i === u.counts.length - 1 ? "]" : ")"} ` +
            `${d.classes[cls]} ${k} of ${n}</title></rect>`);
        });
      });
      const zx = (zeroX - 1.5).toFixed(2);  // the left edge of cell 0
      parts.push(`<rect class="zero" x="${zx}" y="0" width="3" height="${rowH}"></rect>`);
      svg.innerHTML = parts.join("");
      row.appendChild(svg);
      rows.appendChild(row);
    }
    sel.addEventListener("change", () => {
      for (const r of rows.children) {
        r.classList.toggle("hidden", !!sel.value && !r.dataset.labels.split("+").includes(sel.value));
      }
    });
    markReady();
  } catch (err) {
    markFailed(err, "rows", "the page");
  }
})();
