// (3) A forced tool call, streamed: the 'inputJson' events, the raw input_json_delta events, the parsed input.
import { MODEL, WEATHER_TOOL, makeClient, print, userTurn } from './common.mjs';

const client = makeClient();
const stream = client.messages.stream({
  model: MODEL,
  max_tokens: 300,
  tools: [WEATHER_TOOL],
  tool_choice: { type: 'any' },
  messages: userTurn("What's the weather like in Paris today?"),
});
const inputJson = []; // [partial_json, snapshot of the parsed input so far]
const deltas = []; // [index, delta type, the delta]
const starts = [];
stream.on('inputJson', (partial, snapshot) => inputJson.push([partial, snapshot]));
stream.on('streamEvent', (event) => {
  if (event.type === 'content_block_delta') deltas.push([event.index, event.delta.type, event.delta]);
  if (event.type === 'content_block_start') starts.push(event);
});
const final = await stream.finalMessage();
print({ inputJson, deltas, starts, final });
