// (6) An error event after the 200 (the simulator's `x-sim-fault: error_midstream`, asked for per request).
import { MODEL, describeError, makeClient, print, requests, userTurn } from './common.mjs';

const client = makeClient();
const fault = { headers: { 'x-sim-fault': 'error_midstream', 'x-sim-fault-after': '5' } };
const params = { model: MODEL, max_tokens: 300, messages: userTurn('Tell me about photosynthesis') };

// messages.stream(): the text before the fault arrives, then finalMessage() rejects.
const stream = client.messages.stream(params, fault);
const pieces = [];
let emitted = null;
stream.on('text', (delta) => pieces.push(delta));
stream.on('error', (err) => { emitted = err?.constructor?.name ?? String(err); });
let streamError = null;
try {
  await stream.finalMessage();
} catch (err) {
  streamError = describeError(err);
}
const snapshot = stream.currentMessage ?? null;
const streamAttempts = requests.length;

// create({stream: true}): the for-await loop throws at the error event, after the events before it.
const events = [];
let createError = null;
try {
  const raw = await client.messages.create({ ...params, stream: true }, fault);
  for await (const event of raw) events.push(event.type);
} catch (err) {
  createError = describeError(err);
}
print({
  stream: { pieces, emitted, error: streamError, snapshot, attempts: streamAttempts },
  create: { events, error: createError, attempts: requests.length - streamAttempts },
});
