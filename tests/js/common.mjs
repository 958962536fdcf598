// Shared by the scripts tests/test_js_sdk.py runs: a client for the simulator, and one JSON line out.
import Anthropic from '@anthropic-ai/sdk';

export const MODEL = 'claude-haiku-4-5';
export const WEATHER_TOOL = {
  name: 'get_weather',
  description: 'Get the current weather in a given location',
  input_schema: {
    type: 'object',
    properties: {
      location: { type: 'string', description: 'The city, e.g. Paris' },
      unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
    },
    required: ['location'],
  },
};

// Every request the SDK sends (method, path, headers), seen through the SDK's own `fetch` option.
export const requests = [];

export function makeClient(options = {}) {
  const baseURL = process.env.SIM_BASE_URL;
  if (!baseURL) throw new Error('SIM_BASE_URL is not set: the Python test passes the simulator URL');
  return new Anthropic({
    baseURL,
    apiKey: 'test-key',
    fetch: async (url, init = {}) => {
      requests.push({
        method: init.method ?? 'GET',
        path: new URL(String(url)).pathname,
        headers: Object.fromEntries(new Headers(init.headers).entries()),
      });
      return fetch(url, init);
    },
    ...options,
  });
}

export function userTurn(text) {
  return [{ role: 'user', content: text }];
}

// What a thrown error is, in plain data: the SDK class it is an instance of, and its fields.
export function describeError(err) {
  const classes = ['APIError', 'BadRequestError', 'AuthenticationError', 'NotFoundError', 'RateLimitError',
    'InternalServerError', 'OverloadedError', 'APIConnectionError', 'AnthropicError'];
  return {
    name: err?.constructor?.name ?? null,
    instanceOf: classes.filter((c) => Anthropic[c] && err instanceof Anthropic[c]),
    status: err?.status ?? null,
    type: err?.type ?? null,
    apiMessage: err?.apiMessage ?? null,
    requestID: err?.requestID ?? null,
    error: err?.error ?? null,
    message: String(err?.message ?? err),
  };
}

export function print(result) {
  process.stdout.write(JSON.stringify({ ...result, requests }) + '\n');
}
