// The console's only way to the server: JSON to /admin/api/* with the session cookie.

/** A refusal from the API, carrying its problem+json body. */
export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

let onSignedOut = () => {};
/** Called when the session has ended (a 401 on any call but the sign-in's two steps). */
export function whenSignedOut(fn) { onSignedOut = fn; }

/** A fresh key for one form submission: a double click replays instead of repeating. */
export function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** `?a=1&b=2` from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

async function call(method, path, body, idempotencyKey) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (method !== 'GET') {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body || {});
  }
  if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
  let res;
  try {
    res = await fetch(`/admin/api/${path}`, init);
  } catch (e) {
    throw new ApiError(0, { title: 'The server did not answer', detail: String(e.message || e) });
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { title: text.slice(0, 200) }; }
  }
  if (!res.ok) {
    if (res.status === 401 && !path.startsWith('login')) onSignedOut();
    throw new ApiError(res.status, data);
  }
  return data;
}

export const get = (path, params) => call('GET', path + query(params));
export const post = (path, body, idempotencyKey) => call('POST', path, body, idempotencyKey);
