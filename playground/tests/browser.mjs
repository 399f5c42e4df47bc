// The playground in headless Chromium: load the page built by `just playground-build`, explain
// a sample and a pasted edit, check the verdicts shown, save a screenshot.
//   node playground/tests/browser.mjs SITE_DIR SCREENSHOT.png
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const [siteArg, screenshot] = process.argv.slice(2);
if (!siteArg || !screenshot) {
  console.error("usage: browser.mjs SITE_DIR SCREENSHOT.png");
  process.exit(2);
}
const site = path.resolve(siteArg);
const executablePath = process.env.PORTICO_CHROMIUM || "/usr/bin/chromium";
if (!fs.existsSync(executablePath)) {
  console.error(`Chromium is not at ${executablePath}: run \`just setup\` (apt-get install chromium) or set PORTICO_CHROMIUM`);
  process.exit(1);
}

const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".wasm": "application/wasm" };
const server = http.createServer((req, res) => {
  const file = path.join(site, decodeURIComponent(new URL(req.url, "http://x").pathname).replace(/^\/$/, "/index.html"));
  if (!file.startsWith(site + path.sep) || !fs.existsSync(file)) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "content-type": types[path.extname(file)] || "application/octet-stream" });
  fs.createReadStream(file).pipe(res);
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const url = `http://127.0.0.1:${server.address().port}/`;

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let failures = 0;
const check = (what, ok, shown) => {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}${ok ? "" : `: shown ${JSON.stringify(shown)}`}`);
  if (!ok) failures++;
};
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.goto(url);
  try {
    await page.waitForSelector("body[data-ready=true]", { state: "attached", timeout: 30000 });
  } catch (e) {
    throw new Error(`the page did not start: ${JSON.stringify(errors)}`);
  }
  const verdict = () => page.textContent("#verdict");
  const steps = () => page.$$eval("#steps li", (l) => l.map((e) => e.textContent));
  const diagnostics = () => page.$$eval("#diagnostics li", (l) => l.map((e) => e.textContent));

  // The first sample as loaded: the Secret's certificate by SNI, the route, its endpoints.
  let v = await verdict();
  check("ingress-nginx sample: routed to cart", v.includes("cart.default.svc.cluster.local:80"), v);
  let s = await steps();
  check("the SNI picks the Secret's certificate", s[0]?.startsWith("tls (ingress-nginx, SNI shop.example.com): SNI rule"), s[0]);
  check("the endpoint is named", s.some((l) => l.includes("10.1.0.11:8080")), s);

  // Pasted edits: a header for the canary, then an object that does not read.
  await page.fill("#headers", "x-canary: always");
  await page.click("#explain");
  v = await verdict();
  check("the canary header picks the canary backend", v.includes("cart-next"), v);

  // The sidecar's egress policy.
  await page.selectOption("#sample", "2");
  v = await verdict();
  check("REGISTRY_ONLY blocks an unknown host", v.startsWith("blocked: 502"), v);
  s = await steps();
  check("the egress step says why", s.some((l) => l.includes("no ServiceEntry or Service has host unknown.example.org")), s);
  await page.fill("#request", "GET http://reviews.default.svc.cluster.local:9080/");
  await page.fill("#headers", "end-user: jason");
  await page.click("#explain");
  v = await verdict();
  check("a VirtualService match picks a DestinationRule subset in the sidecar", v.includes("v2"), v);

  await page.selectOption("#sample", "1");
  await page.fill("#objects", (await page.inputValue("#objects")) + "---\nkind: HTTPRoute\napiVersion: gateway.networking.k8s.io/v1\nmetadata: {name: bad, namespace: default}\nspec: {rules: 7}\n");
  await page.click("#explain");
  const d = await diagnostics();
  check("a bad pasted object is a diagnostic naming it", d.some((l) => l.includes("HTTPRoute default/bad")), d);
  v = await verdict();
  check("the other objects still answer", v.includes("store-v2"), v);
  await page.selectOption("#sample", "0");
  await page.fill("#headers", "x-canary: always");
  await page.click("#explain");
  await page.$eval("#objects", (e) => { e.scrollTop = 0; });
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshot: ${screenshot}`);
  check("no error in the page", errors.length === 0, errors);
} finally {
  await browser.close();
  server.close();
}
console.log(failures ? `${failures} failed` : "playground: every check passed");
process.exit(failures ? 1 : 0);
