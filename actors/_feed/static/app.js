// The openrouter-trio dashboard: lists sessions and follows one, live, from the
// websocket event feed (docs/guides/websocket-feed.md). No build step, no
// dependencies. Every value from the feed is written with textContent, never
// as HTML.
//
// URL fragment parameters (never sent to the HTTP server):
//   token=<feed token>   required; sent in the first frame {"type": "auth"}
//   feed=<ws url>        optional; default: the port in /config.json, this host
//   session=<id>         optional; the session to follow at start
//
// Nothing is ever lost silently: the page keeps the last sequence number it
// showed and resumes from it (subscribe "after") after a reconnect or when it
// sees a gap; only the log's retention can drop events, and then the feed's
// "resync" frame says which, and the page says so.
"use strict";

(function () {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token") || "";
  const $ = (id) => document.getElementById(id);

  const index = new Map(); // session id -> snapshot
  const rows = new Map(); // session id -> <tr>
  let socket = null;
  let backoff = 500;
  let follow = null; // {id, last, tools: Map, items: Map, pending: "", events: 0}
  let flushQueued = false;
  let connects = 0;
  let scope = null; // the one session a read token may follow, if any

  // -- connection ----------------------------------------------------------------

  function setConnection(state, detail) {
    const el = $("connection");
    el.dataset.state = state;
    el.textContent = detail ? state + " (" + detail + ")" : state;
  }

  async function feedUrl() {
    const explicit = params.get("feed");
    if (explicit) {
      return explicit;
    }
    const response = await fetch("config.json", { cache: "no-store" });
    const config = await response.json();
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    return scheme + "://" + location.hostname + ":" + config.feed_port + config.feed_path;
  }

  function send(command) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(command));
    }
  }

  async function connect() {
    if (!token) {
      setConnection("unauthorized", "no #token= in the URL");
      return;
    }
    let url;
    try {
      url = await feedUrl();
    } catch (error) {
      setConnection("closed", "no feed address");
      retry();
      return;
    }
    setConnection("connecting");
    socket = new WebSocket(url);
    socket.onopen = () => {
      connects += 1;
      $("connection").dataset.connects = String(connects);
      setConnection("authenticating");
      socket.send(JSON.stringify({ type: "auth", token: token }));
    };
    socket.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (Array.isArray(message)) {
        for (const frame of message) {
          handle(frame); // a batch: several events of one session, in order
        }
      } else {
        handle(message);
      }
    };
    socket.onclose = (event) => {
      socket = null;
      if (event.code === 1008) {
        setConnection("unauthorized", event.reason || "policy");
        return; // a bad token will not get better by retrying
      }
      setConnection("closed", String(event.code));
      retry();
    };
  }

  function retry() {
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 10000);
  }

  // -- frames --------------------------------------------------------------------

  function handle(frame) {
    switch (frame.type) {
      case "feed.ready":
        backoff = 500;
        setConnection("open");
        scope = frame.data.scope ? frame.data.scope.session : null;
        if (!scope) {
          send({ type: "subscribe_index" });
        }
        if (follow) {
          resume(); // where we were: no gap, no duplicate
        } else if (scope || params.get("session")) {
          startFollowing(scope || params.get("session"));
        }
        return;
      case "feed.error":
        showNotice("error: " + frame.data.code + " — " + frame.data.message);
        return;
      case "feed.pong":
        return;
      case "sessions.snapshot":
        replaceIndex(frame.data.sessions);
        return;
      case "session.updated":
        upsert(frame.data);
        return;
      case "session.removed":
        removeRow(frame.data.id);
        return;
      default:
        if (follow && frame.source === "/sessions/" + follow.id) {
          onSessionFrame(frame);
        }
    }
  }

  // -- the index -----------------------------------------------------------------

  function formatCost(cost) {
    return cost === null || cost === undefined ? "–" : "$" + Number(cost).toFixed(6);
  }

  function cell(row, index, text) {
    row.cells[index].textContent = text;
  }

  function upsert(snapshot) {
    index.set(snapshot.id, snapshot);
    let row = rows.get(snapshot.id);
    if (!row) {
      row = document.createElement("tr");
      row.id = "session-" + snapshot.id;
      row.dataset.session = snapshot.id;
      row.tabIndex = 0;
      for (let i = 0; i < 6; i++) {
        row.appendChild(document.createElement("td"));
      }
      row.addEventListener("click", () => startFollowing(snapshot.id));
      row.addEventListener("keydown", (event) => {
        if (event.key === "Enter") {
          startFollowing(snapshot.id);
        }
      });
      rows.set(snapshot.id, row);
      $("sessions").appendChild(row);
    }
    const usage = snapshot.usage || {};
    row.dataset.status = snapshot.status;
    row.dataset.turn = String(snapshot.turn);
    row.dataset.tokens = String(usage.total_tokens || 0);
    row.dataset.cost = usage.cost === null || usage.cost === undefined ? "" : String(usage.cost);
    row.classList.toggle("followed", Boolean(follow && follow.id === snapshot.id));
    cell(row, 0, snapshot.id);
    cell(row, 1, snapshot.model || "–");
    cell(row, 2, snapshot.status);
    cell(row, 3, String(snapshot.turn));
    cell(row, 4, String(usage.total_tokens || 0));
    cell(row, 5, formatCost(usage.cost));
    if (follow && follow.id === snapshot.id) {
      showSnapshot(snapshot);
    }
    updateTotals();
  }

  function removeRow(id) {
    index.delete(id);
    const row = rows.get(id);
    if (row) {
      row.remove();
      rows.delete(id);
    }
    updateTotals();
  }

  function replaceIndex(sessions) {
    for (const id of Array.from(rows.keys())) {
      removeRow(id);
    }
    for (const snapshot of sessions) {
      upsert(snapshot);
    }
    updateTotals();
  }

  function updateTotals() {
    let tokens = 0;
    let cost = 0;
    const byStatus = {};
    for (const snapshot of index.values()) {
      tokens += (snapshot.usage && snapshot.usage.total_tokens) || 0;
      cost += (snapshot.usage && snapshot.usage.cost) || 0;
      byStatus[snapshot.status] = (byStatus[snapshot.status] || 0) + 1;
    }
    const totals = $("totals");
    totals.dataset.sessions = String(index.size);
    totals.dataset.tokens = String(tokens);
    const parts = Object.keys(byStatus)
      .sort()
      .map((status) => byStatus[status] + " " + status);
    totals.textContent =
      index.size + " sessions" + (parts.length ? " (" + parts.join(", ") + ")" : "") +
      " · " + tokens + " tokens · " + formatCost(cost);
    $("no-sessions").hidden = index.size > 0;
  }

  // -- following one session -----------------------------------------------------

  function startFollowing(id) {
    if (follow && follow.id !== id) {
      send({ type: "unsubscribe", session: follow.id });
    }
    follow = { id: id, last: -1, tools: new Map(), items: new Map(), pending: "", events: 0 };
    const panel = $("session-panel");
    panel.dataset.session = id;
    panel.dataset.status = "";
    $("followed").textContent = id;
    $("text").textContent = "";
    $("text").dataset.events = "0";
    $("tools").textContent = "";
    showNotice("");
    for (const [rowId, row] of rows) {
      row.classList.toggle("followed", rowId === id);
    }
    const hash = new URLSearchParams(location.hash.slice(1));
    hash.set("session", id);
    history.replaceState(null, "", "#" + hash.toString());
    send({ type: "subscribe", session: id, after: -1, batch: true });
  }

  function resume() {
    // Ask for everything after the last event shown. Frames still in flight
    // from before are ignored until the feed confirms (session.subscribed).
    follow.resuming = true;
    send({ type: "subscribe", session: follow.id, after: follow.last, batch: true });
  }

  function showNotice(text) {
    const notice = $("notice");
    notice.textContent = text;
    notice.hidden = !text;
  }

  function setUsage(id, value) {
    const el = $(id);
    el.dataset.value = value === null || value === undefined ? "" : String(value);
    el.textContent = value === null || value === undefined ? "–" : String(value);
  }

  function showSnapshot(snapshot) {
    const usage = snapshot.usage || {};
    $("session-panel").dataset.status = snapshot.status;
    setUsage("usage-status", snapshot.status);
    setUsage("usage-turn", snapshot.turn);
    setUsage("usage-model-calls", usage.model_calls);
    setUsage("usage-input-tokens", usage.input_tokens);
    setUsage("usage-output-tokens", usage.output_tokens);
    setUsage("usage-reasoning-tokens", usage.reasoning_tokens);
    setUsage("usage-total-tokens", usage.total_tokens);
    const cost = $("usage-cost");
    cost.dataset.value = usage.cost === null || usage.cost === undefined ? "" : String(usage.cost);
    cost.textContent = formatCost(usage.cost);
    setUsage("usage-events", snapshot.next_seq);
  }

  function appendText(text) {
    follow.pending += text;
    if (!flushQueued) {
      flushQueued = true;
      requestAnimationFrame(flushText);
    }
  }

  function flushText() {
    flushQueued = false;
    if (follow && follow.pending) {
      $("text").appendChild(document.createTextNode(follow.pending));
      follow.pending = "";
    }
  }

  function onSessionFrame(frame) {
    const data = frame.data;
    switch (frame.type) {
      case "session.subscribed":
        follow.resuming = false;
        follow.last = frame.sequence;
        showSnapshot(data.snapshot);
        return;
      case "resync": {
        // Only the log's retention drops events; the feed names them.
        follow.last = frame.sequence;
        const range = data.missed_from + "–" + data.missed_to;
        appendText("\n[… " + data.missed + " events dropped by retention …]\n");
        showNotice("the log no longer holds events " + range + " (" + data.missed + " missed)");
        showSnapshot(data.snapshot);
        return;
      }
      case "session.end":
        showSnapshot(data.snapshot);
        flushText();
        return;
      default:
        break;
    }
    if (follow.resuming) {
      return; // from the subscription being replaced: the resumed one resends it
    }
    if (typeof frame.sequence === "number") {
      if (frame.sequence <= follow.last) {
        return; // already shown (a re-subscription overlapping what we have)
      }
      if (frame.sequence > follow.last + 1) {
        resume(); // a gap the feed did not announce: fetch it through "after"
        return;
      }
      follow.last = frame.sequence;
    }
    follow.events += 1;
    $("text").dataset.events = String(follow.events);
    onEvent(frame.type, data);
  }

  function onEvent(type, data) {
    switch (type) {
      case "turn.start":
        if (data.turn_number > 0 && ($("text").textContent || follow.pending)) {
          appendText("\n\n");
        }
        return;
      case "response.output_text.delta":
        appendText(data.delta);
        return;
      case "response.output_item.added":
        if (data.item && data.item.type === "function_call") {
          const tool = toolEntry(data.item.call_id, data.item.name);
          follow.items.set(data.item.id, data.item.call_id);
          tool.args.textContent = data.item.arguments || "";
        }
        return;
      case "response.function_call_arguments.delta": {
        const callId = follow.items.get(data.item_id);
        if (callId !== undefined) {
          const tool = toolEntry(callId);
          tool.args.textContent += data.delta;
        }
        return;
      }
      case "response.output_item.done":
        if (data.item && data.item.type === "function_call") {
          const tool = toolEntry(data.item.call_id, data.item.name);
          tool.args.textContent = data.item.arguments;
          setToolStatus(tool, "called");
        }
        return;
      case "tool.preliminary_result": {
        const tool = toolEntry(data.tool_call_id);
        const item = document.createElement("li");
        item.textContent = JSON.stringify(data.result);
        tool.progress.appendChild(item);
        tool.li.dataset.progress = String(tool.progress.children.length);
        setToolStatus(tool, "running");
        return;
      }
      case "tool.result": {
        const tool = toolEntry(data.tool_call_id);
        tool.result.textContent = JSON.stringify(data.result);
        const failed = data.result && typeof data.result === "object" && "error" in data.result;
        setToolStatus(tool, failed ? "error" : "done");
        return;
      }
      default:
        return;
    }
  }

  function toolEntry(callId, name) {
    let tool = follow.tools.get(callId);
    if (!tool) {
      const li = document.createElement("li");
      li.id = "tool-" + callId;
      li.dataset.callId = callId;
      li.dataset.status = "streaming";
      li.dataset.progress = "0";
      const title = document.createElement("span");
      title.className = "name";
      const args = document.createElement("code");
      args.className = "args";
      const progress = document.createElement("ol");
      progress.className = "progress";
      const result = document.createElement("code");
      result.className = "result";
      li.append(title, " ", args, progress, result);
      $("tools").appendChild(li);
      tool = { li: li, title: title, args: args, progress: progress, result: result };
      follow.tools.set(callId, tool);
    }
    if (name) {
      tool.title.textContent = name;
      tool.li.dataset.name = name;
    }
    return tool;
  }

  function setToolStatus(tool, status) {
    const order = ["streaming", "called", "running", "done", "error"];
    if (order.indexOf(status) >= order.indexOf(tool.li.dataset.status)) {
      tool.li.dataset.status = status;
    }
  }

  connect();
})();
