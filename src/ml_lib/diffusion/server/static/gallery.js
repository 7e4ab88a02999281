// The gallery page: plan a prompt, generate it with live progress (server-sent events), browse, filter,
// rate and tag past images, reproduce or edit them. Plain DOM + fetch; every text is set with textContent.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const FIELDS = ["prompt", "negative_prompt", "model", "sampler", "width", "height", "steps", "cfg_scale", "seed"];
const NUMBERS = new Set(["width", "height", "steps", "cfg_scale", "seed"]);
let running = null; // the AbortController of the generation in progress

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { "Content-Type": "application/json", ...(options.headers || {}) },
  });
  if (!response.ok) throw new Error(await errorText(response));
  return response.json();
}

async function errorText(response) {
  try {
    const body = await response.json();
    return body.detail || body.message || response.statusText;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

function showError(message) {
  const box = $("#error");
  box.textContent = message || "";
  box.hidden = !message;
}

function setStatus(message) {
  $("#status").textContent = message;
}

function formBody() {
  const body = {};
  for (const name of FIELDS) {
    const input = document.getElementsByName(name)[0];
    const value = input.value.trim();
    if (value === "" && name !== "prompt") continue;
    body[name] = NUMBERS.has(name) ? Number(value) : value;
  }
  return body;
}

function fillForm(entry) {
  const values = {
    prompt: entry.prompt, negative_prompt: entry.negative_prompt || "", model: entry.model || "",
    sampler: entry.sampler || "", width: entry.width, height: entry.height, steps: entry.steps,
    cfg_scale: entry.cfg_scale, seed: entry.seed,
  };
  for (const [name, value] of Object.entries(values)) {
    const input = document.getElementsByName(name)[0];
    if (input.tagName === "SELECT" && value && !Array.from(input.options).some((o) => o.value === value)) {
      input.add(new Option(value, value));
    }
    input.value = value ?? "";
  }
  $("#settings").open = true;
}

// -- plan ------------------------------------------------------------------------------------------
async function showPlan() {
  showError("");
  const body = formBody();
  if (!body.prompt) return showError("Type a prompt first.");
  try {
    renderPlan(await api("api/v1/plan", { method: "POST", body: JSON.stringify(body) }));
  } catch (error) {
    showError(error.message);
  }
}

function renderPlan(plan) {
  $("#plan-summary").textContent =
    `${plan.model.name} · ${plan.width}×${plan.height} · ${plan.steps} steps · CFG ${plan.cfg_scale} · ` +
    `${plan.sampler}${plan.schedule && plan.schedule !== "Automatic" ? " " + plan.schedule : ""} · seed ${plan.seed}`;
  const rows = $("#decisions tbody");
  rows.replaceChildren();
  for (const decision of plan.decisions) {
    const row = rows.insertRow();
    row.className = "decision";
    row.insertCell().textContent = decision.field;
    row.insertCell().textContent = JSON.stringify(decision.value);
    const why = row.insertCell();
    const source = document.createElement("span");
    source.className = "source";
    source.textContent = decision.source;
    why.append(source, " ", decision.reason);
  }
  $("#plan").hidden = false;
}

// -- generate with progress ----------------------------------------------------------------------
async function generate(event) {
  event.preventDefault();
  showError("");
  const body = formBody();
  if (!body.prompt) return showError("Type a prompt first.");
  running = new AbortController();
  setBusy(true);
  try {
    const response = await fetch("api/v1/generate/stream", {
      method: "POST", body: JSON.stringify(body), signal: running.signal,
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    });
    if (!response.ok) throw new Error(await errorText(response));
    await readEvents(response.body, onEvent);
  } catch (error) {
    showError(error.name === "AbortError" ? "Cancelled." : error.message);
  } finally {
    running = null;
    setBusy(false);
  }
}

async function readEvents(stream, handle) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trim());
      }
      if (data.length) handle(name, JSON.parse(data.join("\n")));
    }
  }
}

function onEvent(name, data) {
  if (name === "queued") {
    $("#progress-text").textContent = `Waiting: ${data.position} job(s) ahead`;
  } else if (name === "progress") {
    $("#progress-bar").value = data.progress;
    $("#progress-text").textContent = `Step ${data.step} of ${data.total}` +
      (data.eta ? ` · about ${data.eta.toFixed(1)} s left` : "");
    if (data.preview) {
      $("#preview").src = data.preview;
      $("#preview").hidden = false;
    }
  } else if (name === "done") {
    $("#progress-bar").value = 1;
    $("#progress-text").textContent = "Done";
    renderPlan(data.plan);
    setStatus(`Generated ${data.images.length} image(s), seed ${data.seeds.join(", ")}`);
    loadGallery();
  } else if (name === "error") {
    showError(data.detail);
  }
}

function setBusy(busy) {
  $("#generate-button").disabled = busy;
  $("#cancel-button").hidden = !busy;
  if (busy) {
    $("#progress").hidden = false;
    $("#progress-bar").value = 0;
    $("#progress-text").textContent = "Starting…";
    $("#preview").hidden = true;
  }
}

// -- gallery -------------------------------------------------------------------------------------
async function loadGallery() {
  const query = new URLSearchParams({ limit: "200" });
  const stars = $("#filter-stars").value;
  const tag = $("#filter-tag").value.trim();
  const model = $("#filter-model").value;
  if (stars) query.set("min_stars", stars);
  if (tag) query.set("tag", tag);
  if (model) query.set("model", model);
  try {
    const entries = await api(`api/v1/images?${query}`);
    $("#gallery").replaceChildren(...entries.map(card));
    $("#empty").hidden = entries.length > 0;
  } catch (error) {
    showError(error.message);
  }
}

function card(entry) {
  const node = $("#card-template").content.firstElementChild.cloneNode(true);
  node.dataset.id = entry.id;
  if (entry.images.length) {
    $(".thumb", node).src = entry.images[0];
    $(".thumb", node).alt = entry.prompt;
    $(".image-link", node).href = entry.images[0];
  }
  $(".prompt", node).textContent = entry.prompt;
  const meta = {
    model: entry.model, size: `${entry.width}×${entry.height}`, steps: entry.steps, CFG: entry.cfg_scale,
    sampler: entry.sampler, seed: entry.seed, made: new Date(entry.created * 1000).toLocaleString(),
  };
  if (entry.negative_prompt) meta.negative = entry.negative_prompt;
  if (entry.loras.length) meta.LoRAs = entry.loras.map((l) => `${l.name}:${l.weight}`).join(", ");
  for (const [key, value] of Object.entries(meta)) {
    const term = document.createElement("dt");
    const detail = document.createElement("dd");
    term.textContent = key;
    detail.textContent = value ?? "";
    $(".meta", node).append(term, detail);
  }
  renderStars(node, entry.stars);
  renderTags(node, entry.tags);
  $(".tag-form", node).addEventListener("submit", (event) => addTag(event, node));
  $(".reproduce", node).addEventListener("click", () => reproduce(entry));
  $(".edit", node).addEventListener("click", () => {
    fillForm(entry);
    $("#prompt").focus();
    showPlan();
  });
  return node;
}

function renderStars(node, stars) {
  const group = $(".stars", node);
  group.replaceChildren();
  node.dataset.stars = stars ?? "";
  for (let n = 1; n <= 5; n++) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "star" + (stars && n <= stars ? " on" : "");
    button.textContent = "★";
    button.title = `${n} star${n > 1 ? "s" : ""}`;
    button.setAttribute("aria-label", button.title);
    button.setAttribute("aria-pressed", String(stars === n));
    button.addEventListener("click", () => rate(node, n));
    group.append(button);
  }
}

function renderTags(node, tags) {
  $(".tags", node).replaceChildren(...tags.map((tag) => {
    const item = document.createElement("li");
    item.textContent = tag;
    return item;
  }));
}

async function rate(node, stars) {
  try {
    await api(`api/v1/images/${node.dataset.id}/feedback`, { method: "POST", body: JSON.stringify({ stars }) });
    renderStars(node, stars);
    setStatus(`Rated ${stars} star${stars > 1 ? "s" : ""}`);
  } catch (error) {
    showError(error.message);
  }
}

async function addTag(event, node) {
  event.preventDefault();
  const input = $(".tag-input", node);
  const tag = input.value.trim();
  if (!tag) return;
  try {
    await api(`api/v1/images/${node.dataset.id}/feedback`, { method: "POST", body: JSON.stringify({ tags: [tag] }) });
    const tags = Array.from(node.querySelectorAll(".tags li"), (li) => li.textContent);
    if (!tags.includes(tag)) renderTags(node, [...tags, tag]);
    input.value = "";
  } catch (error) {
    showError(error.message);
  }
}

async function reproduce(entry) {
  showError("");
  setStatus("Reproducing…");
  try {
    const out = await api(`api/v1/images/${entry.id}/reproduce`, { method: "POST" });
    setStatus(out.identical ? "Reproduced: pixel-identical" : "Reproduced: the pixels differ (other device or versions?)");
    loadGallery();
  } catch (error) {
    setStatus("");
    showError(error.message);
  }
}

// -- start ---------------------------------------------------------------------------------------
async function loadChoices() {
  try {
    const [models, samplers] = await Promise.all([api("api/v1/models?kind=checkpoint"), api("sdapi/v1/samplers")]);
    for (const model of models) {
      $("#model").add(new Option(model.name, model.name));
      $("#filter-model").add(new Option(model.name, model.name));
    }
    for (const sampler of samplers) $("#sampler").add(new Option(sampler.name, sampler.name));
  } catch (error) {
    showError(error.message);
  }
}

function debounce(fn, ms) {
  let timer;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}

document.addEventListener("DOMContentLoaded", () => {
  $("#prompt-form").addEventListener("submit", generate);
  $("#plan-button").addEventListener("click", showPlan);
  $("#cancel-button").addEventListener("click", () => running && running.abort());
  for (const id of ["filter-stars", "filter-model"]) $("#" + id).addEventListener("change", loadGallery);
  $("#filter-tag").addEventListener("input", debounce(loadGallery, 300));
  loadChoices();
  loadGallery();
});
