// The public API as the console uses it: queries and mutations over HTTP with the access token (renewed once
// with the refresh token when it has expired), subscriptions over graphql-transport-ws (the graphql-ws client).

export const $ = (id) => document.getElementById(id);
export const state = { access: null, refresh: sessionStorage.getItem("keel.refresh"), workspace: null, socket: null };
export const session = { onSignedIn: () => false }; // set by the console: what a (renewed) session shows
export const AUTH = `{ ... on AuthPayload { accessToken refreshToken user { email role workspaces { id name } } }
  ... on Error { code message } }`;

export async function post(body, headers = {}) {
  if (state.access) headers.Authorization = `Bearer ${state.access}`;
  const response = await fetch("/graphql", { method: "POST", body, headers });
  if (response.status === 429) throw new Error("too many requests; try again in a moment");
  return response.json();
}

// A query or mutation; an expired access token is renewed once with the refresh token.
export async function gql(query, variables = {}, retried = false) {
  const answer = await post(JSON.stringify({ query, variables }), { "Content-Type": "application/json" });
  const codes = (answer.errors || []).map((e) => e.extensions && e.extensions.code);
  if (codes.includes("UNAUTHENTICATED") && !retried && state.refresh && (await renew())) {
    return gql(query, variables, true);
  }
  if (answer.errors && !answer.data) throw new Error(answer.errors[0].message);
  return answer.data;
}

export async function renew() {
  const token = state.refresh;
  state.access = null;
  const data = await gql(`mutation($t: String!) { refreshSession(refreshToken: $t) ${AUTH} }`, { t: token }, true);
  return session.onSignedIn(data.refreshSession);
}

export function remember(payload) {
  state.access = payload.accessToken;
  state.refresh = payload.refreshToken;
  sessionStorage.setItem("keel.refresh", payload.refreshToken);
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

export function dropSocket() {
  if (state.socket) state.socket.terminate(); // as a lost network does: every subscription errors
  state.socket = null;
}

export function subscribe(query, variables, onNext, onDone) {
  return sockets().subscribe({ query, variables }, {
    next: (result) => result.data && onNext(Object.values(result.data)[0]),
    error: (error) => onDone(error instanceof Error ? error.message : "the connection was lost"),
    complete: () => onDone(null),
  });
}
