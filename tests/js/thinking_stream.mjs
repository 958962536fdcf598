// (4) Extended thinking, streamed: the 'thinking' and 'signature' events, the raw order, and the final content.
import { MODEL, makeClient, print, userTurn } from './common.mjs';

const client = makeClient();
const stream = client.messages.stream({
  model: MODEL,
  max_tokens: 2048,
  thinking: { type: 'enabled', budget_tokens: 1024 },
  messages: userTurn('Why is the sky blue? Think it through first.'),
});
const thinking = []; // [delta, snapshot]
const signatures = [];
const text = [];
const raw = []; // [type, index, delta type or block type]
stream.on('thinking', (delta, snapshot) => thinking.push([delta, snapshot]));
stream.on('signature', (signature) => signatures.push(signature));
stream.on('text', (delta) => text.push(delta));
stream.on('streamEvent', (event) => {
  const detail = event.type === 'content_block_delta' ? event.delta.type
    : event.type === 'content_block_start' ? event.content_block : null;
  raw.push([event.type, event.index ?? null, detail]);
});
let final = null;
let error = null;
try {
  final = await stream.finalMessage();
} catch (err) {
  error = { name: err?.constructor?.name, status: err?.status ?? null, message: String(err?.message ?? err) };
}
print({ thinking, signatures, text, raw, final, error });
