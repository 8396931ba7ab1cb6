// Test driver (tests/test_report.py) appended to a copy of a Snakemake report: clicks through the
// report as a reader would -- each category, each subcategory, each result's view and info
// buttons -- and writes what it saw (menu, result labels, the element shown, the caption) as JSON
// into a PRE element with id driver-log, which chromium's --dump-dom returns.
(async function () {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const out = { categories: [], results: [], errors: [] };
  const links = () => [...document.querySelectorAll("#app nav a")];
  const byText = (label) => links().find((a) => a.textContent.trim() === label);
  const home = () => document.querySelector("#app nav ol li a");
  try {
    await sleep(300);
    const top = links().map((a) => a.textContent.trim()).filter((t) => t);
    out.menu = top;
    for (const category of ["Tables", "Tables vs paper", "Figures"]) {
      home().click(); await sleep(100);
      const link = byText(category);
      if (!link) { out.errors.push("no menu entry " + category); continue; }
      link.click(); await sleep(100);
      // a category with several subcategories lists them first
      let subs = [];
      if (!document.querySelector("#app nav table")) {
        subs = [...document.querySelectorAll("#app nav ul a")].map((a) => a.textContent.trim())
          .filter((t) => t && !top.includes(t));
      }
      out.categories.push({ category, subcategories: subs });
      for (const sub of subs.length ? subs : [null]) {
        if (sub !== null) {
          home().click(); await sleep(50); byText(category).click(); await sleep(50);
          byText(sub).click(); await sleep(100);
        }
        const rows = [...document.querySelectorAll("#app nav table tbody tr")];
        for (let i = 0; i < rows.length; i++) {
          const row = [...document.querySelectorAll("#app nav table tbody tr")][i];
          const cells = [...row.querySelectorAll("td")].map((td) => td.textContent.trim()).filter((t) => t);
          const buttons = row.querySelectorAll("td:last-child a");
          buttons[0].click(); await sleep(150);
          const iframe = document.querySelector("#app iframe");
          const img = document.querySelector("#app img:not([class~='h-4'])");
          const shown = iframe ? { kind: "iframe", src: iframe.src }
                      : img ? { kind: "img", src: img.src.slice(0, 100), width: img.naturalWidth, height: img.naturalHeight }
                      : { kind: "none" };
          const again = [...document.querySelectorAll("#app nav table tbody tr")][i];
          again.querySelectorAll("td:last-child a")[1].click(); await sleep(100);
          const caption = document.querySelector("#app nav").innerText;
          out.results.push({ category, subcategory: sub, labels: cells, shown, caption });
          home().click(); await sleep(50); byText(category).click(); await sleep(50);
          if (sub !== null) { byText(sub).click(); await sleep(50); }
        }
      }
    }
  } catch (e) { out.errors.push(String(e && e.stack || e)); }
  const pre = document.createElement("pre");
  pre.id = "driver-log";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
