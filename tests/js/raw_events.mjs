// (2) client.messages.create({stream: true}): every raw event, in the order the SDK yields them.
import { MODEL, makeClient, print, userTurn } from './common.mjs';

const client = makeClient();
const { data: stream, response, request_id: requestID } = await client.messages
  .create({ model: MODEL, max_tokens: 200, stream: true, messages: userTurn('Say hello') })
  .withResponse();
const events = [];
for await (const event of stream) events.push(event);
print({ events, status: response.status, contentType: response.headers.get('content-type'), requestID });
