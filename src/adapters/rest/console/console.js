// Keel's reference console: only the public GraphQL API (api.js), as any frontend would use it.

import { $, AUTH, dropSocket, gql, post, remember, renew, session, state, subscribe } from "./api.js";
import { listConversations, resetConversation } from "./chat.js";

const DOCUMENT = "id title status error chunkCount";
window.keel = { dropSocket }; // for the end-to-end tests and for trying reconnection by hand

session.onSignedIn = (payload) => {
  if (!payload || !payload.accessToken) return false;
  remember(payload);
  $("who").textContent = `Signed in as ${payload.user.email}`;
  $("auth").hidden = true;
  $("workspace").hidden = false;
  $("sign-out").hidden = false;
  showWorkspaces(payload.user.workspaces, state.workspace || payload.user.workspaces[0].id);
  $("admin").hidden = payload.user.role !== "ADMIN";
  return true;
};

// --- sign in / sign up -------------------------------------------------------------------------------------
$("auth-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const action = event.submitter ? event.submitter.value : "signIn";
  $("auth-error").textContent = "";
  try {
    const data = await gql(`mutation($e: String!, $p: String!) { ${action}(email: $e, password: $p) ${AUTH} }`,
      { e: $("email").value, p: $("password").value });
    if (!session.onSignedIn(data[action])) $("auth-error").textContent = data[action].message;
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

// --- workspaces, members, plan ----------------------------------------------------------------------------
function showWorkspaces(workspaces, current) {
  const select = $("workspace-select");
  select.replaceChildren(...workspaces.map((w) => new Option(w.name, w.id, false, w.id === current)));
  openWorkspace(current);
}

function openWorkspace(id) {
  state.workspace = id;
  $("documents").replaceChildren();
  $("hits").replaceChildren();
  resetConversation();
  listDocuments();
  listConversations();
  showMembers();
  showPlan();
  showUsage();
}

$("workspace-select").addEventListener("change", (event) => openWorkspace(event.target.value));

$("workspace-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = await gql(`mutation($n: String!) { createWorkspace(name: $n) { ... on Workspace { id }
      ... on Error { message } } }`, { n: $("workspace-name").value });
  if (data.createWorkspace.message) return ($("workspace-error").textContent = data.createWorkspace.message);
  const listed = await gql("{ workspaces { id name } }");
  event.target.reset();
  showWorkspaces(listed.workspaces, data.createWorkspace.id);
});

async function showMembers() {
  const data = await gql(`query($w: ID!) { workspace(id: $w) { ... on Workspace { myRole
      members { email role } } } }`, { w: state.workspace });
  const members = (data.workspace && data.workspace.members) || [];
  $("members").replaceChildren(...members.map((m) => {
    const item = document.createElement("li");
    item.textContent = `${m.email} — ${m.role.toLowerCase()}`;
    return item;
  }));
}

$("member-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = await gql(`mutation($w: ID!, $e: String!, $r: WorkspaceRole!) { setMember(workspaceId: $w,
      email: $e, role: $r) { __typename ... on Error { message } } }`,
    { w: state.workspace, e: $("member-email").value, r: $("member-role").value });
  $("member-error").textContent = data.setMember.message || "";
  if (!data.setMember.message) event.target.reset();
  showMembers();
});

async function showPlan() {
  const data = await gql(`query($w: ID!) { entitlement(workspaceId: $w) { ... on Entitlement { plan status
      limits { dailyTokens softCapTokens cheaperModel } } } plans { name purchasable }
      workspaceUsage(workspaceId: $w, days: 1) { ... on UsageReportType { totalTokens } } }`,
    { w: state.workspace });
  const plan = data.entitlement;
  $("plan").textContent = plan.plan ? `${plan.plan} (${plan.status.toLowerCase()}): ${plan.limits.dailyTokens} ` +
    `tokens a day, ${plan.limits.cheaperModel} after ${plan.limits.softCapTokens}` : "–";
  const today = data.workspaceUsage ? data.workspaceUsage.totalTokens : null; // owners see the workspace's
  $("soft-cap").textContent = today === null ? "" : today >= plan.limits.softCapTokens
    ? `Today ${today} tokens: past the soft cap, answers use ${plan.limits.cheaperModel}.`
    : `Today ${today} tokens of ${plan.limits.softCapTokens} before the cheaper model.`;
  $("upgrades").replaceChildren(...data.plans.filter((p) => p.purchasable && p.name !== plan.plan).map((p) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `Upgrade to ${p.name}`;
    button.addEventListener("click", () => checkout(p.name));
    return button;
  }));
}

async function checkout(plan) {
  const data = await gql(`mutation($w: ID!, $p: String!) { startCheckout(workspaceId: $w, plan: $p) {
      ... on BillingRedirect { url } ... on Error { message } } }`, { w: state.workspace, p: plan });
  if (data.startCheckout.url) location.assign(data.startCheckout.url); // Stripe Checkout
  else $("plan-error").textContent = data.startCheckout.message;
}

// --- admin -------------------------------------------------------------------------------------------------
$("admin-refresh").addEventListener("click", async () => {
  const data = await gql(`{ auditLog(limit: 20) { at action subject clientIp }
      webhookEvents(first: 20) { ... on WebhookEventList { events { id type status } } }
      reconciliationRepairs(first: 20) { ... on ReconciliationRepairList { repairs { at workspaceId before after } } } }`);
  $("audit").replaceChildren(...data.auditLog.map((e) => row([e.at, e.action, e.subject, e.clientIp])));
  const events = (data.webhookEvents && data.webhookEvents.events) || [];
  $("webhooks").replaceChildren(...events.map((e) => row([e.id, e.type, e.status])));
  const repairs = (data.reconciliationRepairs && data.reconciliationRepairs.repairs) || [];
  $("repairs").replaceChildren(...repairs.map((r) => row([r.at, r.workspaceId, JSON.stringify(r.before),
    JSON.stringify(r.after)])));
  findUsers();
});

$("users-form").addEventListener("submit", (event) => { event.preventDefault(); findUsers(); });

async function findUsers() {
  const data = await gql(`query($s: String!) { users(search: $s, first: 50) { id email role } }`,
    { s: $("users-search").value });
  $("users").replaceChildren(...data.users.map((user) => {
    const line = row([user.email, user.role.toLowerCase()]);
    const other = user.role === "ADMIN" ? "USER" : "ADMIN";
    const change = document.createElement("button");
    change.type = "button";
    change.textContent = other === "ADMIN" ? `Make ${user.email} admin` : `Make ${user.email} a user`;
    change.addEventListener("click", async () => {
      await gql(`mutation($u: ID!, $r: Role!) { setUserRole(userId: $u, role: $r) { __typename } }`,
        { u: user.id, r: other });
      findUsers();
    });
    const cell = document.createElement("td");
    cell.append(change);
    line.append(cell);
    return line;
  }));
}

function row(cells) {
  const tr = document.createElement("tr");
  tr.append(...cells.map((value) => {
    const td = document.createElement("td");
    td.textContent = value;
    return td;
  }));
  return tr;
}

// --- usage -------------------------------------------------------------------------------------------------
async function showUsage() {
  const data = await gql(`query($w: ID!) { myUsage(workspaceId: $w) { ... on UsageReportType {
      totalTokens totalCostUsd } } }`, { w: state.workspace });
  const usage = data.myUsage;
  if (usage) $("usage").textContent = `${usage.totalTokens} tokens · $${usage.totalCostUsd.toFixed(5)}`;
}

// --- OAuth: a button per configured provider; the provider sends the browser back to /oauth/<name>/callback ---
async function showOAuthButtons() {
  const data = await gql("{ oauthProviders }");
  $("oauth").replaceChildren(...data.oauthProviders.map((provider) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `Continue with ${provider[0].toUpperCase()}${provider.slice(1)}`;
    button.addEventListener("click", async () => {
      const started = await gql(`mutation($p: String!) { startOAuth(provider: $p) {
          ... on OAuthStartPayload { authorizationUrl } ... on Error { message } } }`, { p: provider });
      if (started.startOAuth.authorizationUrl) location.assign(started.startOAuth.authorizationUrl);
      else $("auth-error").textContent = started.startOAuth.message;
    });
    return button;
  }));
}

async function completeOAuth(provider, query) {
  history.replaceState(null, "", "/"); // the code is single-use: not left in the address bar
  const data = await gql(`mutation($p: String!, $c: String!, $s: String!) { completeOAuth(provider: $p, code: $c,
      state: $s) ${AUTH} }`, { p: provider, c: query.get("code") || "", s: query.get("state") || "" });
  if (!session.onSignedIn(data.completeOAuth)) $("auth-error").textContent = data.completeOAuth.message;
}

const callback = location.pathname.match(/^\/oauth\/([a-z]+)\/callback$/);
if (callback) completeOAuth(callback[1], new URLSearchParams(location.search));
// A reload keeps the session (the refresh token lives in this tab's session storage).
else if (state.refresh) renew().catch(() => sessionStorage.removeItem("keel.refresh"));
showOAuthButtons();

document.addEventListener("keel:answered", () => { showUsage(); showPlan(); listConversations(); });
