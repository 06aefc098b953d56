// The Bazaar dashboard: polls this node's /api/cluster every second and
// draws members, supervision trees, placement (checkout's owner, epoch,
// voters and learners; cart shards), message rates, charts of the message
// rate and the gateway's request latency over the last minutes, and the
// node's recent events (served by the node, so they survive a reload),
// merged with what this page did (kills) and saw (service restarts).
"use strict";

const POLL_MS = 1000;
const MAX_EVENTS = 100;
// Points per chart: five minutes of polls.
const CHART_POINTS = 300;
let previous = null;
// When `previous` arrived (performance.now(), ms).
let previousAt = null;
// Events this page noted itself; the node's own arrive with each poll.
const events = [];
let nodeEvents = [];
// Chart history: {messages: [msgs/s], latency: [ms or null]}.
const history = { messages: [], latency: [] };
// The previous scrape's request-duration sum and count, for the latency.
let previousLatency = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function note(text) {
  events.unshift({ at: new Date(), text });
  events.length = Math.min(events.length, MAX_EVENTS);
}

function tree(report) {
  const label = el("li", {}, report.name + " ");
  if (report.strategy) label.append(el("span", { class: "small" }, report.strategy + " "));
  if (report.restarts > 0) label.append(el("span", { class: "restarts" }, "↻" + report.restarts));
  if (report.status !== "running") label.append(el("span", { class: "small" }, " " + report.status));
  if (report.children && report.children.length) {
    const list = el("ul", { class: "tree" });
    for (const child of report.children) list.append(tree(child));
    label.append(list);
  }
  return label;
}

function diff(current) {
  if (!previous) return;
  // Membership and checkout owner changes come from the node (cluster.events).
  const was = previous.checkout, now = current.checkout;
  const votersText = (c) => (c && c.voters ? c.voters.join(", ") : "");
  if (now && was && votersText(now) !== votersText(was)) {
    note(`checkout voters ${votersText(now) || "none"} (were ${votersText(was) || "none"})`);
  }
  for (const [node, services] of Object.entries(current.services || {})) {
    const oldServices = Object.fromEntries(((previous.services || {})[node] || []).map((s) => [s.name, s]));
    for (const service of services) {
      const old = oldServices[service.name];
      if (old && service.restarts > old.restarts) note(`${service.name} on ${node}: ${service.restarts - old.restarts} restart(s)`);
      if (old && service.escalations > old.escalations) note(`${service.name} on ${node} escalated and restarted whole`);
    }
  }
}

async function kill(node) {
  const token = document.getElementById("token").value.trim();
  const response = await fetch("/api/admin/kill", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer " + token },
    body: JSON.stringify({ node }),
  });
  const body = await response.json().catch(() => ({}));
  note(response.ok ? `killed ${node} (pid ${body.pid})` : `kill ${node}: ${body.error || response.status}`);
}

// Messages per second of each service on each node, from the growth of its
// `handled` counter since the previous poll: {node: {service: rate}}. A
// counter that went down belongs to a restarted node: no rate until the
// next poll.
function rates(cluster, now) {
  const result = {};
  if (!previous || previousAt === null || now <= previousAt) return result;
  const seconds = (now - previousAt) / 1000;
  for (const [node, services] of Object.entries(cluster.services || {})) {
    const before = Object.fromEntries(((previous.services || {})[node] || []).map((s) => [s.name, s.handled]));
    for (const service of services) {
      const old = before[service.name];
      if (old === undefined || service.handled < old) continue;
      (result[node] = result[node] || {})[service.name] = (service.handled - old) / seconds;
    }
  }
  return result;
}

function rateText(rate) {
  if (rate === undefined) return "–";
  return (rate >= 100 ? rate.toFixed(0) : rate.toFixed(1)) + "/s";
}

function renderRates(cluster, perNode) {
  const nodes = Object.keys(cluster.services || {}).sort();
  const services = [];
  for (const node of nodes) {
    for (const service of cluster.services[node]) if (!services.includes(service.name)) services.push(service.name);
  }
  const table = el("table", { id: "rate-table" },
    el("tr", {}, el("th", {}, "service"), ...nodes.map((node) => el("th", {}, node)), el("th", {}, "all")));
  for (const service of services) {
    const row = el("tr", {}, el("td", {}, service));
    let total = 0, known = false;
    for (const node of nodes) {
      const rate = (perNode[node] || {})[service];
      if (rate !== undefined) { total += rate; known = true; }
      row.append(el("td", { class: "rate", "data-node": node, "data-service": service, "data-rate": rate === undefined ? "" : rate.toFixed(3) }, rateText(rate)));
    }
    row.append(el("td", { class: "rate total" }, known ? rateText(total) : "–"));
    table.append(row);
  }
  document.getElementById("rates").replaceChildren(table);
}

// A node's part in checkout: "voter", "learner" or "" (not running it).
function checkoutPart(checkout, name) {
  if (!checkout) return "";
  if ((checkout.voters || []).includes(name)) return "voter";
  if ((checkout.learners || []).includes(name)) return "learner";
  return "";
}

function render(cluster, perNode) {
  const up = cluster.members.filter((m) => m.state === "up").length;
  document.getElementById("summary").textContent =
    `seen by ${cluster.node}: ${up} of ${cluster.expected} up, quorum ${cluster.quorum ? "yes" : "no"}`;
  const nodes = document.getElementById("nodes");
  nodes.replaceChildren();
  for (const member of cluster.members) {
    // Kill works only on nodes started by `bazaar up`: no button elsewhere.
    let button = "";
    if (cluster.kill_enabled) {
      button = el("button", {}, "kill");
      button.disabled = member.state === "down";
      button.addEventListener("click", () => kill(member.name));
    }
    const part = checkoutPart(cluster.checkout, member.name);
    const card = el("div", { class: "node", "data-node": member.name, "data-state": member.state, "data-checkout": part },
      el("h3", {}, el("span", {}, member.name,
        cluster.checkout && cluster.checkout.owner === member.name ? el("span", { class: "badge" }, "checkout owner") : "",
        cluster.checkout && cluster.checkout.standby === member.name ? el("span", { class: "badge" }, "standby") : "",
        part ? el("span", { class: "badge " + part }, part) : ""),
        el("span", { class: "state " + member.state }, member.state)),
      el("div", { class: "small" }, `http ${member.http_addr} · pid ${member.pid} `, button));
    const trees = (cluster.trees || {})[member.name];
    if (trees) card.append(el("ul", { class: "tree root" }, tree(trees)));
    nodes.append(card);
  }
  const placement = document.getElementById("placement");
  placement.replaceChildren();
  if (cluster.checkout) {
    const c = cluster.checkout;
    placement.append(el("p", {}, `checkout: owner ${c.owner || "none"}, standby ${c.standby || "none"}, epoch ${c.epoch}, ${c.commit_index} committed`));
    const voters = c.voters || [], learners = c.learners || [];
    placement.append(el("p", { id: "checkout-voters" },
      `voters (${Math.floor(voters.length / 2) + 1} of ${voters.length} decide): ${voters.join(", ") || "none"}`,
      el("br"), `learners (replicate, never vote): ${learners.join(", ") || "none"}`));
  }
  const owners = {};
  for (const shard of cluster.cart_shards || []) owners[shard.owner] = (owners[shard.owner] || 0) + 1;
  const table = el("table", {}, el("tr", {}, el("th", {}, "node"), el("th", {}, "cart shards owned")));
  for (const [node, count] of Object.entries(owners).sort()) table.append(el("tr", {}, el("td", {}, node), el("td", {}, count)));
  placement.append(table);
  renderRates(cluster, perNode);
  renderCharts();
  const merged = nodeEvents.map((e) => ({ at: new Date(e.at_ms), text: e.text })).concat(events);
  merged.sort((a, b) => b.at - a.at);
  const list = document.getElementById("events");
  list.replaceChildren(...merged.slice(0, MAX_EVENTS).map((e) =>
    el("li", {}, el("span", { class: "small" }, e.at.toLocaleTimeString() + " "), e.text)));
}

// Mean gateway request latency (ms) since the previous scrape of /metrics,
// leaving out the dashboard's own polls; null when nothing was served.
async function latencySample() {
  const response = await fetch("/metrics", { cache: "no-store" });
  if (!response.ok) return null;
  let sum = 0, count = 0;
  for (const line of (await response.text()).split("\n")) {
    if (!line.startsWith("bazaar_http_request_duration_seconds_")) continue;
    if (line.includes('route="/api/cluster"') || line.includes('route="/metrics"')) continue;
    const value = parseFloat(line.slice(line.lastIndexOf(" ") + 1));
    if (line.startsWith("bazaar_http_request_duration_seconds_sum")) sum += value;
    else if (line.startsWith("bazaar_http_request_duration_seconds_count")) count += value;
  }
  const was = previousLatency;
  previousLatency = { sum, count };
  if (!was || count <= was.count) return null;
  return ((sum - was.sum) / (count - was.count)) * 1000;
}

function remember(series, value) {
  series.push(value);
  if (series.length > CHART_POINTS) series.shift();
}

// A small line chart of `series` (nulls are gaps) as an SVG polyline.
function chart(id, series, unit) {
  const width = 300, height = 60;
  const known = series.filter((v) => v !== null && v !== undefined);
  const max = Math.max(1e-9, ...known);
  const points = [];
  // The newest point at the right edge; history grows to the left.
  const offset = CHART_POINTS - series.length;
  series.forEach((v, i) => {
    if (v === null || v === undefined) return;
    const x = ((i + offset) / (CHART_POINTS - 1)) * width;
    const y = height - (v / max) * (height - 4) - 2;
    points.push(x.toFixed(1) + "," + y.toFixed(1));
  });
  const svg = document.getElementById(id);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points.join(" "));
  svg.replaceChildren(line);
  const last = known.length ? known[known.length - 1] : null;
  document.getElementById(id + "-value").textContent =
    last === null ? "–" : `${last >= 100 ? last.toFixed(0) : last.toFixed(1)} ${unit} (max ${max.toFixed(1)})`;
}

function renderCharts() {
  chart("chart-messages", history.messages, "msgs/s");
  chart("chart-latency", history.latency, "ms");
}

async function poll() {
  try {
    const response = await fetch("/api/cluster", { cache: "no-store" });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      document.getElementById("summary").textContent =
        `gateway answered ${response.status}` + (body.error ? `: ${body.error}` : "");
      setTimeout(poll, POLL_MS);
      return;
    }
    const cluster = await response.json();
    const now = performance.now();
    const perNode = rates(cluster, now);
    if (previous) {
      let total = 0;
      for (const services of Object.values(perNode)) for (const rate of Object.values(services)) total += rate;
      remember(history.messages, total);
      remember(history.latency, await latencySample().catch(() => null));
    } else {
      await latencySample().catch(() => null);
    }
    nodeEvents = cluster.events || [];
    diff(cluster);
    previous = cluster;
    previousAt = now;
    render(cluster, perNode);
  } catch (error) {
    document.getElementById("summary").textContent = "gateway unreachable: " + error;
  }
  setTimeout(poll, POLL_MS);
}

poll();
