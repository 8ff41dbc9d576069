// Driven by tests/e2e/test_dashboard.py over stdin/stdout (one JSON object per line):
//   argv: <dashboard url> <screenshot path>
//   -> {"ready": true, "states": {...}}        once the first poll is rendered
//   <- {"groups": {name: requests}, "states": {dep: state}, "event": "substring", "text": {selector: prefix}}
//   -> {"ok": bool, "error": str|null, "console_errors": [...], "page_errors": [...]}
import { chromium } from "playwright-core";
import readline from "node:readline";

const [url, shot] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

const consoleErrors = [], pageErrors = [];
let browser, result = { ok: false, error: null };
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--no-first-run"],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  const resp = await page.goto(url);
  if (!resp || resp.status() !== 200) throw new Error("GET /ui: " + (resp && resp.status()));
  await page.waitForSelector("body[data-polls] tr[data-dep] [data-field=state] .badge", { timeout: 15000 });
  const states = await page.$$eval("tr[data-dep]", (rows) =>
    Object.fromEntries(rows.map((r) => [r.dataset.dep, r.querySelector("[data-field=state] .badge").className.split(" ")[1]])));
  out({ ready: true, states });

  const want = JSON.parse((await lines.next()).value);
  await page.waitForFunction((w) => {
    const txt = (sel) => { const e = document.querySelector(sel); return e ? e.textContent.trim() : null; };
    for (const g in w.groups)
      if (txt(`tr[data-group="${CSS.escape(g)}"] [data-field=requests]`) !== String(w.groups[g])) return false;
    for (const d in w.states) {
      const b = document.querySelector(`tr[data-dep="${CSS.escape(d)}"] [data-field=state] .badge`);
      if (!b || !b.classList.contains(w.states[d])) return false;
    }
    for (const sel in w.text || {}) { const t = txt(sel); if (t === null || !t.startsWith(w.text[sel])) return false; }
    if (w.event && ![...document.querySelectorAll("#events li[data-event]")].some((li) => li.textContent.includes(w.event)))
      return false;
    return true;
  }, want, { timeout: 20000, polling: 200 }).catch(async (e) => {
    const body = await page.evaluate(() => document.querySelector("main").innerText);
    throw new Error("dashboard never showed " + JSON.stringify(want) + ":\n" + body);
  });
  // Let the chart accumulate a few polls for the screenshot.
  await page.waitForFunction((n) => Number(document.body.dataset.polls) >= n, want.min_polls || 1,
                             { timeout: 30000, polling: 200 });
  await page.screenshot({ path: shot, fullPage: true });
  result.ok = true;
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  if (browser) await browser.close().catch(() => {});
}
out({ ...result, console_errors: consoleErrors, page_errors: pageErrors });
process.exit(0);
