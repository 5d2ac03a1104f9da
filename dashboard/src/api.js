// The control API from the browser: same origin, authenticated by the session cookie the
// one-time login link set (the token never reaches the page).

/** An API answer that was not 2xx, with the daemon's message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Calls `/v1${path}`; JSON in and out (a string body is sent as YAML). */
export async function api(path, { method = 'GET', body, signal } = {}) {
  const headers = {};
  let payload;
  if (typeof body === 'string') {
    headers['content-type'] = 'application/yaml';
    payload = body;
  } else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const r = await fetch(`/v1${path}`, { method, headers, body: payload, signal, credentials: 'same-origin' });
  const text = await r.text();
  let data;
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = text;
  }
  if (!r.ok) {
    throw new ApiError(r.status, (data && data.error && data.error.message) || `${r.status} ${text}`);
  }
  return data;
}

/**
 * A loader whose answers are applied in order: an answer to an older call that arrives after a
 * newer one's is dropped (a list reloaded by an event must not undo a newer change).
 */
export function latest(fetcher, apply) {
  let generation = 0;
  return (...args) => {
    const mine = ++generation;
    return fetcher(...args).then((value) => {
      if (mine === generation) apply(value);
    });
  };
}

const EVENT_NAMES = [
  'run_queued', 'run_started', 'run_paused', 'run_resumed', 'run_finished',
  'action_started', 'action_finished', 'action_failed', 'agent_stage', 'utterance', 'lagged',
];

const listeners = new Set();
let source = null;

function open() {
  source = new EventSource('/v1/events', { withCredentials: true });
  for (const name of EVENT_NAMES) {
    source.addEventListener(name, (e) => {
      let data;
      try {
        data = JSON.parse(e.data);
      } catch {
        return;
      }
      for (const f of listeners) f(data);
    });
  }
}

/** Subscribes to the daemon's event stream (one shared connection); returns the unsubscriber. */
export function subscribe(f) {
  if (!source) open();
  listeners.add(f);
  return () => listeners.delete(f);
}

/** A duration in microseconds, for people. */
export function duration(us) {
  if (us == null) return '';
  if (us < 1000) return `${us} µs`;
  if (us < 1e6) return `${(us / 1000).toFixed(1)} ms`;
  return `${(us / 1e6).toFixed(2)} s`;
}

/** A Unix-ms time, for people. */
export function when(ms) {
  if (!ms) return 'never';
  return new Date(ms).toLocaleString();
}
