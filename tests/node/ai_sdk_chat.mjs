// Drives Keel's AI SDK chat endpoint with the AI SDK's own transport and stream reader (package `ai`), as
// a useChat frontend does. Prints one JSON line with what the UI would show.
//   node ai_sdk_chat.mjs BASE API_KEY send|send-then-abort|resume|stop CHAT_ID [QUESTION]
import { DefaultChatTransport, readUIMessageStream } from 'ai';

const [base, apiKey, command, chatId, question] = process.argv.slice(2);
const transport = new DefaultChatTransport({ api: `${base}/ai-sdk/chat`, headers: { 'X-Api-Key': apiKey } });

async function read(stream, stopAfterFirstText) {
  let updates = 0;
  let last = null;
  for await (const message of readUIMessageStream({ stream })) {
    updates += 1;
    last = message;
    const text = message.parts.filter((p) => p.type === 'text').map((p) => p.text).join('');
    if (stopAfterFirstText && text) return { updates, message: last, text };
  }
  const text = last ? last.parts.filter((p) => p.type === 'text').map((p) => p.text).join('') : '';
  return { updates, message: last, text };
}

function summary({ updates, message, text }) {
  return {
    updates, text, id: message?.id ?? null, metadata: message?.metadata ?? null,
    sources: (message?.parts ?? []).filter((p) => p.type === 'source-document').map((p) => p.title),
  };
}

const user = { id: `user-${Date.now()}`, role: 'user', parts: [{ type: 'text', text: question ?? '' }] };
if (command === 'send' || command === 'send-then-abort') {
  const abort = new AbortController();
  const stream = await transport.sendMessages({
    chatId, messages: [user], trigger: 'submit-message', messageId: undefined, abortSignal: abort.signal,
  });
  const result = await read(stream, command === 'send-then-abort');
  if (command === 'send-then-abort') abort.abort();  // as useChat's stop() does: the request goes away
  console.log(JSON.stringify(summary(result)));
} else if (command === 'resume') {
  const stream = await transport.reconnectToStream({ chatId });
  console.log(JSON.stringify(stream === null ? { none: true } : summary(await read(stream, false))));
} else if (command === 'stop') {
  const response = await fetch(`${base}/ai-sdk/chat/${chatId}/stop`, { method: 'POST', headers: { 'X-Api-Key': apiKey } });
  console.log(JSON.stringify(await response.json()));
} else {
  throw new Error(`unknown command ${command}`);
}
