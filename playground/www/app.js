// The page's glue: the explainer itself is portico_playground.wasm (Rust, wasm-bindgen).
import init, { explain, samples } from "./pkg/portico_playground.js";

const $ = (id) => document.getElementById(id);
const fill = (list, items) => {
  list.replaceChildren(...items.map((text) => {
    const li = document.createElement("li");
    li.textContent = text;
    return li;
  }));
};

function run() {
  const ask = {
    objects: $("objects").value,
    request: $("request").value,
    headers: $("headers").value,
    via: $("via").value,
    source: $("source").value,
    destination: $("destination").value,
    nowMs: Date.now(),
  };
  if ($("no-sni").checked) ask.sni = "";
  else if ($("sni").value.trim() !== "") ask.sni = $("sni").value.trim();
  const answer = JSON.parse(explain(JSON.stringify(ask)));
  const verdict = $("verdict");
  if (answer.error) {
    verdict.textContent = answer.error;
    verdict.className = "verdict error";
  } else {
    verdict.textContent = answer.verdict;
    const refused = /^(refused|blocked|closed|TLS handshake|plain HTTP)|→ 404|→ respond [45]/.test(answer.verdict);
    verdict.className = refused ? "verdict refused" : "verdict";
  }
  fill($("steps"), answer.steps);
  fill($("diagnostics"), answer.diagnostics.length ? answer.diagnostics : ["none"]);
}

function load(sample) {
  $("objects").value = sample.objects;
  $("request").value = sample.request;
  $("headers").value = sample.headers;
  $("via").value = sample.via;
  for (const id of ["source", "sni", "destination"]) $(id).value = "";
  $("no-sni").checked = false;
}

await init();
const all = JSON.parse(samples());
$("sample").replaceChildren(...all.map((s, i) => new Option(s.name, String(i))));
$("sample").addEventListener("change", () => { load(all[Number($("sample").value)]); run(); });
$("explain").addEventListener("click", run);
load(all[0]);
$("explain").disabled = false;
run();
document.body.dataset.ready = "true";
