// The reproduction table: one row per claim id, from the JSON the page carries.
try {
  const rows = JSON.parse(document.getElementById("claims-data").textContent);
  const body = document.querySelector("#claims tbody");
  const counts = {};
  for (const r of rows) {
    counts[r.verdict] = (counts[r.verdict] || 0) + 1;
    const tr = document.createElement("tr");
    const cells = [r.claim_id, r.figure, r.paper_value, r.measured_value, r.verdict, r.detail];
    cells.forEach((value, i) => {
      const td = document.createElement("td");
      td.textContent = value == null ? "" : String(value);
      if (i === 4) td.className = String(r.verdict).replace(" ", "-");
      if (i === 5) td.className = "detail";
      tr.appendChild(td);
    });
    body.appendChild(tr);
  }
  document.getElementById("counts").textContent = Object.entries(counts)
    .map(([v, n]) => n + " " + v).join(", ");
  markReady();
} catch (err) {
  markFailed(err, "counts", "the claims table");
}
