// palate web page: search, rate, and watch the recommendations change. No build step.
"use strict";

const $ = (id) => document.getElementById(id);
let model = null;
let userId = localStorage.getItem("palate-user") || ("web-" + Math.random().toString(36).slice(2, 10));
localStorage.setItem("palate-user", userId);
// the API key (when the service guards ratings with keys) lives for this tab only
let apiKey = sessionStorage.getItem("palate-key") || "";
const myRatings = new Map();

async function api(path, body) {
  const headers = apiKey ? { Authorization: "Bearer " + apiKey } : {};
  const init = body === undefined ? { headers } : {
    method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, init);
  const data = await response.json();
  if (!response.ok) throw new Error(data.message || response.statusText);
  return data;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "onclick") node.addEventListener("click", value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

const label = (item) => item.title || ("item " + item.item_id);
const genres = (item) => item.genres && item.genres.length ? el("div", { class: "genres" }, item.genres.join(", ")) : null;

function scale() {
  const [low, high] = model.rating_scale;
  if (model.kind === "binary" || model.model_kind === "implicit_als") return [1];
  const lo = low === null ? 1 : low, hi = high === null ? 5 : high;
  const step = (hi - lo) >= 4 ? 1 : 0.5;
  const values = [];
  for (let v = Math.max(lo, Math.ceil(lo)); v <= hi + 1e-9; v += step) values.push(v);
  return values;
}

function titleNode(item) {
  return el("span", { class: "title", "data-item": String(item.item_id), onclick: () => showSimilar(item) }, label(item));
}

function stars(item) {
  const box = el("div", { class: "stars" });
  for (const value of scale()) {
    const chosen = myRatings.has(item.item_id) && myRatings.get(item.item_id).value === value;
    box.append(el("button", {
      class: "star" + (chosen ? " chosen" : ""), type: "button",
      "data-value": String(value), "aria-label": `rate ${label(item)} ${value}`,
      onclick: () => rate(item, value),
    }, model.kind === "binary" || model.model_kind === "implicit_als" ? "♥ like" : String(value)));
  }
  return box;
}

async function search(event) {
  if (event) event.preventDefault();
  const query = $("search").value.trim();
  const list = $("search-results");
  list.replaceChildren();
  if (!query) return;
  try {
    const data = await api("/v1/items?limit=10&query=" + encodeURIComponent(query));
    if (!data.items.length) list.append(el("li", { class: "muted" }, "nothing matches " + JSON.stringify(query)));
    for (const item of data.items) list.append(el("li", { class: "search-result" }, titleNode(item), genres(item), stars(item)));
  } catch (error) {
    list.append(el("li", { class: "muted" }, error.message));
  }
}

async function rate(item, value) {
  try {
    await api(`/v1/users/${encodeURIComponent(userId)}/ratings`, { ratings: [{ item_id: item.item_id, rating: value }] });
    myRatings.set(item.item_id, { ...item, value });
    renderRatings();
    await search();
    await refresh();
  } catch (error) {
    $("recs-note").textContent = error.message;
  }
}

function renderRatings() {
  const list = $("my-ratings");
  list.replaceChildren();
  for (const item of myRatings.values()) {
    list.append(el("li", { class: "rated" }, titleNode(item), el("span", { class: "score" }, String(item.value))));
  }
  $("rating-count").textContent = `(${myRatings.size})`;
}

async function refresh() {
  const data = await api("/v1/recommendations", { user_ids: [userId], k: 10, exclude_seen: true, explain: true });
  const result = data.results[0];
  // a visitor the model does not know yet gets the model's starting list (its fallback for
  // unknown users: the most popular items, or the best shrunk mean ratings)
  const popular = result.fallback || model.capabilities.score_kind === "popularity";
  $("recs-title").textContent = popular ? "Popular now" : "Recommended for you";
  $("recs-note").textContent = result.fallback
    ? "Rate a few titles to get your own list: until then, these are popular with everyone."
    : (result.note || "");
  const list = $("recommendations");
  list.replaceChildren();
  list.dataset.generation = String(data.model_generation);
  list.dataset.ratings = String(result.live_ratings);
  list.dataset.list = popular ? "popular" : "personal";
  if (!result.items.length) {
    list.append(el("li", { class: "muted" }, "Nothing to list yet: search a title above and rate it."));
  }
  for (const item of result.items) {
    list.append(el("li", { class: "recommendation", "data-item": String(item.item_id) },
      titleNode(item), el("span", { class: "score" }, item.score.toFixed(2)), genres(item),
      item.explanation ? el("div", { class: "why" }, "Why: " + item.explanation) : null,
      stars(item)));
  }
}

async function showSimilar(item) {
  const section = $("similar-section");
  $("similar-title").textContent = label(item);
  const list = $("similar");
  list.replaceChildren();
  section.hidden = false;
  try {
    const data = await api("/v1/similar-items", { item_ids: [item.item_id], k: 8 });
    for (const other of data.results[0].similar) list.append(el("li", {}, titleNode(other), genres(other)));
  } catch (error) {
    list.append(el("li", { class: "muted" }, error.message));
  }
  section.scrollIntoView({ behavior: "smooth" });
}

async function signIn(event) {
  event.preventDefault();
  userId = $("key-user").value.trim() || userId;
  apiKey = $("key-value").value.trim();
  localStorage.setItem("palate-user", userId);
  sessionStorage.setItem("palate-key", apiKey);
  $("user-id").textContent = userId;
  await loadRatings();
  await refresh();
}

async function loadRatings() {
  myRatings.clear();
  try {
    const saved = await api(`/v1/users/${encodeURIComponent(userId)}/ratings`);
    for (const r of saved.ratings) myRatings.set(r.item_id, r);
    $("key-note").textContent = model.feedback.api_keys ? "Signed in." : "";
  } catch (error) {
    // a service with API keys: without a key for this user, browse but do not rate
    $("key-note").textContent = error.message;
  }
  renderRatings();
}

async function start() {
  $("user-id").textContent = userId;
  model = await api("/v1/model");
  $("model-info").textContent = `${model.model_kind} model, ${model.n_items.toLocaleString()} items`;
  if (model.feedback.api_keys) {
    $("key-form").hidden = false;
    $("key-user").value = userId;
    $("key-form").addEventListener("submit", signIn);
  }
  await loadRatings();
  $("search-form").addEventListener("submit", search);
  await refresh();
  document.body.dataset.ready = "1";
}

start().catch((error) => { $("model-info").textContent = "error: " + error.message; });
