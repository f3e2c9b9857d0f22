// Keel's reference console: only the public GraphQL API (HTTP for queries and mutations, graphql-transport-ws
// through the graphql-ws client for subscriptions), as any frontend would use it.

const $ = (id) => document.getElementById(id);
const state = { access: null, refresh: sessionStorage.getItem("keel.refresh"), workspace: null, socket: null };
const AUTH = `{ ... on AuthPayload { accessToken refreshToken user { email workspaces { id name } } }
  ... on Error { code message } }`;
const DOCUMENT = "id title status error chunkCount";

async function post(body, headers = {}) {
  if (state.access) headers.Authorization = `Bearer ${state.access}`;
  const response = await fetch("/graphql", { method: "POST", body, headers });
  if (response.status === 429) throw new Error("too many requests; try again in a moment");
  return response.json();
}

// A query or mutation; an expired access token is renewed once with the refresh token.
async function gql(query, variables = {}, retried = false) {
  const answer = await post(JSON.stringify({ query, variables }), { "Content-Type": "application/json" });
  const codes = (answer.errors || []).map((e) => e.extensions && e.extensions.code);
  if (codes.includes("UNAUTHENTICATED") && !retried && state.refresh && (await renew())) {
    return gql(query, variables, true);
  }
  if (answer.errors && !answer.data) throw new Error(answer.errors[0].message);
  return answer.data;
}

async function renew() {
  const token = state.refresh;
  state.access = null;
  const data = await gql(`mutation($t: String!) { refreshSession(refreshToken: $t) ${AUTH} }`, { t: token }, true);
  return signedIn(data.refreshSession);
}

function signedIn(payload) {
  if (!payload || !payload.accessToken) return false;
  state.access = payload.accessToken;
  state.refresh = payload.refreshToken;
  sessionStorage.setItem("keel.refresh", payload.refreshToken);
  state.workspace = payload.user.workspaces[0].id;
  $("who").textContent = `Signed in as ${payload.user.email}`;
  $("auth").hidden = true;
  $("workspace").hidden = false;
  $("sign-out").hidden = false;
  listDocuments();
  showUsage();
  return true;
}

function sockets() {
  if (!state.socket) {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
    // No silent retries: graphql-ws would subscribe again, and a chat subscription sent twice asks twice.
    // A dropped answer is resumed from where it was (messageStream with the offset) instead.
    state.socket = graphqlWs.createClient({
      url, lazy: true, retryAttempts: 0,
      connectionParams: () => ({ Authorization: `Bearer ${state.access}` }),
    });
  }
  return state.socket;
}

function dropSocket() {
  if (state.socket) state.socket.terminate(); // as a lost network does: every subscription errors
  state.socket = null;
}
window.keel = { dropSocket }; // for the end-to-end tests and for trying reconnection by hand

function subscribe(query, variables, onNext, onDone) {
  return sockets().subscribe({ query, variables }, {
    next: (result) => result.data && onNext(Object.values(result.data)[0]),
    error: (error) => onDone(error instanceof Error ? error.message : "the connection was lost"),
    complete: () => onDone(null),
  });
}

// --- sign in / sign up -------------------------------------------------------------------------------------
$("auth-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const action = event.submitter ? event.submitter.value : "signIn";
  $("auth-error").textContent = "";
  try {
    const data = await gql(`mutation($e: String!, $p: String!) { ${action}(email: $e, password: $p) ${AUTH} }`,
      { e: $("email").value, p: $("password").value });
    if (!signedIn(data[action])) $("auth-error").textContent = data[action].message;
  } catch (error) {
    $("auth-error").textContent = error.message;
  }
});

$("sign-out").addEventListener("click", async () => {
  await gql("mutation { signOut { __typename } }").catch(() => null);
  sessionStorage.removeItem("keel.refresh");
  location.reload();
});

// --- documents ---------------------------------------------------------------------------------------------
function showDocument(doc) {
  let item = $(`doc-${doc.id}`);
  if (!item) {
    item = document.createElement("li");
    item.id = `doc-${doc.id}`;
    $("documents").prepend(item);
  }
  item.textContent = `${doc.title} — `;
  const status = document.createElement("span");
  status.className = "status";
  status.dataset.status = doc.status;
  status.textContent = doc.status.toLowerCase() + (doc.error ? `: ${doc.error}` : "");
  item.append(status);
  if (doc.status === "QUEUED" || doc.status === "PROCESSING") watchDocument(doc.id);
}

const watched = new Set();
function watchDocument(id) {
  if (watched.has(id)) return;
  watched.add(id);
  subscribe(`subscription($w: ID!, $id: ID!) { document(workspaceId: $w, id: $id) {
      ... on Document { ${DOCUMENT} } } }`, { w: state.workspace, id },
    (doc) => doc && doc.id && showDocument(doc), (problem) => {
      watched.delete(id);
      if (problem) setTimeout(() => { state.socket = null; watchDocument(id); }, 1000); // the socket dropped
    });
}

async function listDocuments() {
  const data = await gql(`query($w: ID!) { documents(workspaceId: $w) {
      ... on DocumentConnection { items { ${DOCUMENT} } } } }`, { w: state.workspace });
  (data.documents.items || []).slice().reverse().forEach(showDocument);
}

$("upload-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("upload-error").textContent = "";
  const file = $("file").files[0];
  const body = new FormData();
  body.append("operations", JSON.stringify({
    query: `mutation($w: ID!, $file: Upload!) { uploadDocument(workspaceId: $w, file: $file) {
      ... on UploadedDocuments { documents { document { ${DOCUMENT} } } } ... on Error { code message } } }`,
    variables: { w: state.workspace, file: null } }));
  body.append("map", JSON.stringify({ 0: ["variables.file"] }));
  body.append("0", file, file.name);
  const answer = await post(body);
  const uploaded = answer.data && answer.data.uploadDocument;
  if (!uploaded || uploaded.message) {
    $("upload-error").textContent = uploaded ? uploaded.message : answer.errors[0].message;
    return;
  }
  uploaded.documents.forEach((entry) => showDocument(entry.document));
  event.target.reset();
});

// --- search ----------------------------------------------------------------------------------------------
// Highlights come HTML-escaped with <mark> around matched words: only the text and the marks are kept.
function highlighted(fragment) {
  const parsed = new DOMParser().parseFromString(`<p>${fragment}</p>`, "text/html").body.firstChild;
  const line = document.createElement("p");
  for (const node of parsed.childNodes) {
    const part = node.nodeName === "MARK" ? document.createElement("mark") : document.createElement("span");
    part.textContent = node.textContent;
    line.append(part);
  }
  return line;
}

$("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = await gql(`query($w: ID!, $q: String!, $m: SearchMode!) { search(workspaceId: $w, query: $q,
      mode: $m, k: 5) { ... on SearchResults { hits { documentTitle score text highlights } }
      ... on Error { code message } } }`, { w: state.workspace, q: $("query").value, m: $("mode").value });
  const hits = $("hits");
  hits.replaceChildren();
  if (!data.search.hits) {
    hits.textContent = data.search.message;
    return;
  }
  if (!data.search.hits.length) hits.textContent = "No passage matches.";
  for (const hit of data.search.hits) {
    const item = document.createElement("li");
    const title = document.createElement("strong");
    title.textContent = `${hit.documentTitle} (${hit.score.toFixed(3)})`;
    item.append(title);
    const fragments = hit.highlights.length ? hit.highlights : [hit.text.slice(0, 240)];
    fragments.forEach((fragment) => item.append(highlighted(fragment)));
    hits.append(item);
  }
});

// --- chat --------------------------------------------------------------------------------------------------
let conversationId = null;
let live = null; // { messageId, stop }

function bubble(role) {
  const box = document.createElement("div");
  box.className = `message ${role}`;
  const text = document.createElement("p");
  text.className = "text";
  const meta = document.createElement("p");
  meta.className = "meta";
  box.append(text, meta);
  $("conversation").append(box);
  return box;
}

$("chat-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question || live) return;
  bubble("user").querySelector(".text").textContent = question;
  const answer = bubble("assistant");
  answer.dataset.status = "STREAMING";
  $("question").value = "";
  $("stop").disabled = false;
  live = { messageId: null };
  follow(answer, `chat(workspaceId: $w, content: $q, conversationId: $c)`, "$q: String!, $c: ID",
    { q: question, c: conversationId });
});

const EVENT = `{ kind conversationId messageId offset text error { code message }
  message { status content model costUsd promptTokens completionTokens sources { documentTitle } } }`;

// Streams an answer into its bubble; if the socket drops mid-answer, resumes it from the last character shown.
function follow(answer, field, parameters, variables) {
  const text = answer.querySelector(".text");
  live.stop = subscribe(`subscription($w: ID!, ${parameters}) { ${field} ${EVENT} }`,
    { w: state.workspace, ...variables }, (event) => {
      if (event.kind === "STARTED") {
        conversationId = event.conversationId || conversationId;
        live.messageId = event.messageId;
        answer.dataset.messageId = event.messageId;
      } else if (event.kind === "DELTA") {
        text.textContent = text.textContent.slice(0, event.offset) + event.text;
      } else if (event.kind === "FINISHED" && event.message) {
        finish(answer, event.message);
      } else if (event.kind === "ERROR") {
        answer.dataset.status = "FAILED";
        answer.querySelector(".meta").textContent = event.error ? event.error.message : "failed";
      }
    }, (problem) => {
      if (problem && answer.dataset.status === "STREAMING" && live.messageId) {
        answer.querySelector(".meta").textContent = "connection lost; resuming…";
        state.socket = null;
        setTimeout(() => follow(answer, "messageStream(workspaceId: $w, messageId: $m, offset: $o)",
          "$m: ID!, $o: Int!", { m: live.messageId, o: text.textContent.length }), 500);
        return;
      }
      if (problem) answer.querySelector(".meta").textContent = problem;
      live = null;
      $("stop").disabled = true;
      showUsage();
    });
}

function finish(box, message) {
  box.dataset.status = message.status;
  box.querySelector(".text").textContent = message.content;
  const cost = message.costUsd ? ` · $${message.costUsd.toFixed(5)}` : "";
  box.querySelector(".meta").textContent =
    `${message.status.toLowerCase()} · ${message.model || ""} · ${message.promptTokens + message.completionTokens} tokens${cost}`;
  if (message.sources && message.sources.length) {
    const sources = document.createElement("p");
    sources.className = "sources";
    sources.textContent = "Sources: " + message.sources.map((s, i) => `[${i + 1}] ${s.documentTitle}`).join(", ");
    box.append(sources);
  }
  if (message.status === "COMPLETE" && box.dataset.messageId) box.append(ratingButtons(box.dataset.messageId));
}

// Feedback on an answer: stored with it and counted per prompt version.
function ratingButtons(messageId) {
  const row = document.createElement("div");
  row.className = "row rating";
  for (const [rating, label] of [["UP", "Good answer"], ["DOWN", "Bad answer"]]) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = label;
    button.addEventListener("click", async () => {
      const data = await gql(`mutation($w: ID!, $m: ID!, $r: Rating!) { rateAnswer(workspaceId: $w,
          messageId: $m, rating: $r) { ... on Message { feedback { rating } } ... on Error { message } } }`,
        { w: state.workspace, m: messageId, r: rating });
      row.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      row.dataset.rating = data.rateAnswer.feedback ? data.rateAnswer.feedback.rating : "";
    });
    row.append(button);
  }
  return row;
}

$("stop").addEventListener("click", async () => {
  if (!live || !live.messageId) return;
  $("stop").disabled = true;
  await gql(`mutation($w: ID!, $m: ID!) { stopAnswer(workspaceId: $w, messageId: $m) { __typename } }`,
    { w: state.workspace, m: live.messageId });
});

// --- usage -------------------------------------------------------------------------------------------------
async function showUsage() {
  const data = await gql(`query($w: ID!) { myUsage(workspaceId: $w) { ... on UsageReportType {
      totalTokens totalCostUsd } } }`, { w: state.workspace });
  const usage = data.myUsage;
  if (usage) $("usage").textContent = `${usage.totalTokens} tokens · $${usage.totalCostUsd.toFixed(5)}`;
}

// A reload keeps the session (the refresh token lives in this tab's session storage).
if (state.refresh) renew().catch(() => sessionStorage.removeItem("keel.refresh"));
