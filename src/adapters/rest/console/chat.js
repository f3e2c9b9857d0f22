// Chat: an answer streamed token by token; Stop; a dropped answer resumed from the last character shown;
// ratings; the conversation list.

import { $, gql, state, subscribe } from "./api.js";

// --------------------------------------------------------------------------------------------------
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
      document.dispatchEvent(new Event("keel:answered")); // the console shows usage, plan and the list again
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


export function resetConversation() {
  conversationId = null;
  $("conversation").replaceChildren();
}

export async function listConversations() {
  const data = await gql(`query($w: ID!) { conversations(workspaceId: $w, first: 20) { ... on ConversationConnection {
      items { id title } } } }`, { w: state.workspace });
  const items = (data.conversations && data.conversations.items) || [];
  $("conversations").replaceChildren(...items.map((c) => {
    const item = document.createElement("li");
    const open = document.createElement("button");
    open.type = "button";
    open.className = "link";
    open.textContent = c.title || "Untitled";
    open.addEventListener("click", () => openConversation(c.id));
    item.append(open);
    return item;
  }));
}

async function openConversation(id) {
  const data = await gql(`query($w: ID!, $id: ID!) { conversation(workspaceId: $w, id: $id, lastMessages: 20) {
      ... on Conversation { messages(last: 20) { id role status content model costUsd promptTokens
      completionTokens } } ... on Error { message } } }`, { w: state.workspace, id });
  resetConversation();
  conversationId = id;
  for (const message of data.conversation.messages || []) {
    const box = bubble(message.role === "USER" ? "user" : "assistant");
    box.dataset.messageId = message.id;
    if (message.role === "USER") box.querySelector(".text").textContent = message.content;
    else finish(box, message);
  }
}
