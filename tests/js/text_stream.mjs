// (1) client.messages.stream(): the 'text' pieces, the helper's events, the raw event types, the final Message.
import { MODEL, makeClient, print, userTurn } from './common.mjs';

const client = makeClient();
const stream = client.messages.stream({
  model: MODEL, max_tokens: 300, messages: userTurn('Tell me about photosynthesis'),
});
const pieces = [];
const snapshots = [];
const rawTypes = [];
const helperEvents = [];
let deltaUsage = null;
stream.on('connect', () => helperEvents.push('connect'));
stream.on('text', (delta, snapshot) => { pieces.push(delta); snapshots.push(snapshot); });
stream.on('streamEvent', (event) => {
  rawTypes.push(event.type);
  if (event.type === 'message_delta') deltaUsage = event.usage;
});
stream.on('contentBlock', () => helperEvents.push('contentBlock'));
stream.on('message', () => helperEvents.push('message'));
stream.on('finalMessage', () => helperEvents.push('finalMessage'));
stream.on('end', () => helperEvents.push('end'));
const final = await stream.finalMessage();
const text = await stream.finalText();
await stream.done();
print({ pieces, lastSnapshot: snapshots.at(-1) ?? null, rawTypes, helperEvents, deltaUsage, final, finalText: text,
  requestID: stream.request_id ?? null });
