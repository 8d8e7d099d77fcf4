// The labelling page. All text from the server (device sidecars included) goes into the
// page with textContent, never as markup. The token comes from this page's URL and goes
// to the API in the Authorization header only.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const KEYS = "1234567890abcdefghijklmnopqrstuvwxyz";
const state = { classes: [], frames: [], counts: {}, heatmaps: false, busy: false, showHeat: false, poll: 0 };
const $ = (id) => document.getElementById(id);

async function api(path, body) {
  const init = { headers: { Authorization: "Bearer " + token } };
  if (body !== undefined) {
    init.method = "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const type = response.headers.get("Content-Type") || "";
  const data = type.startsWith("application/json") ? await response.json() : { error: await response.text() };
  return { status: response.status, data };
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function say(message, isError) {
  $("status").textContent = message;
  $("status").className = isError ? "error" : "";
}

function current() { return state.frames[0]; }

function suggestion(frame) {
  return frame && frame.topk && frame.topk.length ? frame.topk[0][0] : null;
}

function frameUrl(frame) {
  return "/frame?name=" + encodeURIComponent(frame.name) + "&token=" + encodeURIComponent(token);
}

function renderClasses() {
  const box = $("classes");
  box.replaceChildren();
  const suggested = suggestion(current());
  state.classes.forEach((name, i) => {
    const button = el("button", "", name === suggested ? "suggested" : "");
    button.type = "button";
    if (i < KEYS.length) button.append(el("kbd", KEYS[i]), " ");
    button.append(name);
    button.dataset.label = name;
    box.append(button);
  });
}

function renderFrame() {
  const frame = current();
  const counts = state.counts;
  $("progress").textContent = state.frames.length + " waiting \u00b7 " + (counts.label || 0) + " labelled \u00b7 " +
    (counts.none || 0) + " none of these \u00b7 " + (counts.skip || 0) + " skipped";
  $("topk").replaceChildren();
  $("details").replaceChildren();
  hideHeatmap();
  if (!frame) {
    $("frame").removeAttribute("src");
    delete $("frame").dataset.name;
    $("frame").hidden = true;
    $("suggestion").textContent = "The inbox is empty: every frame has been decided.";
    renderClasses();
    return;
  }
  $("frame").hidden = false;
  $("frame").src = frameUrl(frame);
  $("frame").dataset.name = frame.name;
  const top = suggestion(frame);
  $("suggestion").textContent = top ? top + " (" + frame.topk[0][1].toFixed(3) + ")" : "none (no scores for this frame)";
  for (const [label, score] of frame.topk || []) $("topk").append(el("li", label + " " + score.toFixed(3)));
  const details = [["frame", frame.name], ["from", frame.host], ["source", frame.source], ["time", frame.time],
                   ["why kept", frame.why], ["model", frame.model && frame.model.file]];
  for (const [key, value] of details) {
    if (value) $("details").append(el("dt", key), el("dd", String(value)));
  }
  renderClasses();
  for (const next of state.frames.slice(1, 4)) new Image().src = frameUrl(next);  // prefetch
  if (state.showHeat) showHeatmap();
}

async function decide(action, body) {
  if (state.busy || (!current() && action !== "undo")) return;
  state.busy = true;
  try {
    const { status, data } = await api("/api/" + action, body);
    if (status !== 200) {
      say(data.error + (data.hint ? " \u2014 " + data.hint : ""), true);
      return;
    }
    state.classes = data.classes;
    state.counts = data.counts;
    if (action === "undo") {
      state.frames = [data.frame, ...state.frames.filter((f) => f.name !== data.frame.name)];
      say("undone: " + data.undone + " of " + data.frame.name);
    } else if (action === "skip") {
      state.frames.push(state.frames.shift());
      say("skipped (it stays in the inbox)");
    } else {
      state.frames.shift();
      say(action === "none" ? "none of these" : "labelled " + data.entry.label + " \u2192 " + data.entry.file);
    }
    renderFrame();
  } catch (error) {
    say("the review server did not answer: " + error, true);
  } finally {
    state.busy = false;
  }
}

function label(name, isNew) { decide("label", { name: current().name, label: name, new: Boolean(isNew) }); }

function hideHeatmap() {
  clearTimeout(state.poll);
  $("heatmap").hidden = true;
  $("heatmap").removeAttribute("src");
  $("heatmap-note").textContent = "";
}

async function showHeatmap() {
  const frame = current();
  if (!frame) return;
  if (!state.heatmaps) { $("heatmap-note").textContent = "no heatmaps: start edgecls review with --run"; return; }
  const response = await fetch("/api/heatmap?name=" + encodeURIComponent(frame.name),
                               { headers: { Authorization: "Bearer " + token } });
  if (!current() || current().name !== frame.name || !state.showHeat) return;
  if (response.status === 202) {
    $("heatmap-note").textContent = "computing the heatmap\u2026";
    state.poll = setTimeout(showHeatmap, 500);
  } else if (response.ok) {
    const image = $("heatmap");
    image.onload = () => { URL.revokeObjectURL(image.src); image.hidden = false; };
    image.src = URL.createObjectURL(await response.blob());
    $("heatmap-note").textContent = "";
  } else {
    $("heatmap-note").textContent = (await response.json()).error;
  }
}

function toggleHeatmap() {
  state.showHeat = !state.showHeat;
  if (state.showHeat) showHeatmap(); else hideHeatmap();
}

function openNewClass() {
  if (!current()) return;
  $("new-class").hidden = false;
  $("new-class-name").value = "";
  $("new-class-name").focus();
}

function closeNewClass() {
  $("new-class").hidden = true;
  document.activeElement.blur();
}

function onKey(event) {
  if (event.target === $("new-class-name")) {
    if (event.key === "Escape") { event.preventDefault(); closeNewClass(); }
    return;  // Enter submits the form
  }
  if (event.ctrlKey || event.altKey || event.metaKey) {
    if ((event.ctrlKey || event.metaKey) && event.key === "z") { event.preventDefault(); decide("undo", {}); }
    return;
  }
  const key = event.key;
  const index = KEYS.indexOf(key);
  if (index >= 0 && index < state.classes.length && current()) label(state.classes[index]);
  else if (key === "Enter" && suggestion(current()) && state.classes.includes(suggestion(current()))) {
    label(suggestion(current()));
  } else if (key === "Enter") say("the suggestion is not a class of the dataset: press a class key", true);
  else if (key === " ") decide("skip", { name: current() && current().name });
  else if (key === "X") decide("none", { name: current() && current().name });
  else if (key === "+") openNewClass();
  else if (key === "Backspace") decide("undo", {});
  else if (key === "?") toggleHeatmap();
  else return;
  event.preventDefault();
}

function onClick(event) {
  const button = event.target.closest("button");
  if (!button) return;
  if (button.dataset.label) return label(button.dataset.label);
  const action = button.dataset.action;
  if (action === "accept" && suggestion(current())) label(suggestion(current()));
  else if (action === "skip") decide("skip", { name: current() && current().name });
  else if (action === "none") decide("none", { name: current() && current().name });
  else if (action === "new") openNewClass();
  else if (action === "undo") decide("undo", {});
  else if (action === "heatmap") toggleHeatmap();
  button.blur();
}

async function start() {
  const { status, data } = await api("/api/state");
  if (status !== 200) { say(data.error, true); return; }
  Object.assign(state, { classes: data.classes, frames: data.frames, counts: data.counts, heatmaps: data.heatmaps });
  $("where").textContent = data.inbox + " \u2192 " + data.dataset;
  const refused = Object.entries(data.refused);
  if (refused.length) {
    $("refused-box").hidden = false;
    $("refused-title").textContent = refused.length + " file(s) in the inbox are not shown (left where they are)";
    for (const [name, reason] of refused) $("refused").append(el("li", name + ": " + reason));
  }
  document.addEventListener("keydown", onKey);
  document.addEventListener("click", onClick);
  $("new-class").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("new-class-name").value;
    closeNewClass();
    if (name) label(name, !state.classes.includes(name));
  });
  renderFrame();
  document.body.dataset.ready = "1";
}

start();
