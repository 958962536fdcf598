// (5) HTTP errors before any stream: each maps to the SDK's error class, from stream() and create({stream: true}).
import Anthropic from '@anthropic-ai/sdk';
import { MODEL, describeError, makeClient, print, requests, userTurn } from './common.mjs';

const client = makeClient();
const cases = {
  // No max_tokens: the SDK's types require it, but at run time the body is sent as given.
  missing_max_tokens: { model: MODEL, messages: userTurn('Hello') },
  unknown_model: { model: 'claude-nonexistent-9', max_tokens: 100, messages: userTurn('Hello') },
};
const results = {};
for (const [name, params] of Object.entries(cases)) {
  for (const how of ['stream', 'create']) {
    const before = requests.length;
    let caught = null;
    let emitted = null;
    try {
      if (how === 'stream') {
        const stream = client.messages.stream(params);
        stream.on('error', (err) => { emitted = err?.constructor?.name ?? String(err); });
        await stream.finalMessage();
      } else {
        const stream = await client.messages.create({ ...params, stream: true });
        for await (const _ of stream); // never reached: the error comes with the response
      }
    } catch (err) {
      caught = describeError(err);
    }
    results[`${name}/${how}`] = { error: caught, emitted, attempts: requests.length - before };
  }
}
// A 529 before the stream, with retries off, is an OverloadedError (a kind of InternalServerError).
const before = requests.length;
try {
  await client.messages.create(
    { model: MODEL, max_tokens: 100, stream: true, messages: userTurn('Hello') },
    { headers: { 'x-sim-fault': 'overloaded' }, maxRetries: 0 },
  );
  results.overloaded = { error: null };
} catch (err) {
  results.overloaded = { error: describeError(err), attempts: requests.length - before };
}
print({ results, classes: Object.keys(Anthropic).filter((k) => k.endsWith('Error')) });
