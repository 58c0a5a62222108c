// Shared pieces of the console. Everything from the server is rendered as text: Preact
// sets it with text nodes and attributes, never as HTML.
import { html, useState, useEffect, useRef, useCallback } from '../vendor/htm-preact-standalone.module.js';
import { ApiError, newIdempotencyKey } from './api.js';
import { when, text } from './format.js';

export { html };

/** Loads `fn()` when `deps` change: `{ data, error, loading, reload }`. */
export function useLoad(fn, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    fn().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error) => live && setState({ data: null, error, loading: false }),
    );
    return () => { live = false; };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

let showToast = () => {};
/** A short message at the bottom of the screen. */
export const toast = (message) => showToast(message);
export function Toasts() {
  const [message, setMessage] = useState(null);
  useEffect(() => {
    let timer;
    showToast = (m) => { setMessage(m); clearTimeout(timer); timer = setTimeout(() => setMessage(null), 3500); };
  }, []);
  return message ? html`<div class="toast" role="status">${message}</div>` : null;
}

/** A problem+json refusal: title, detail and per-field messages. */
export function Problem({ error }) {
  if (!error) return null;
  const p = error instanceof ApiError ? error.problem : { title: String(error.message || error) };
  const fields = p.errors && typeof p.errors === 'object' ? Object.entries(p.errors) : [];
  return html`<div class="error" role="alert">
    <strong>${p.title || 'Refused'}</strong>${p.detail && p.detail !== p.title ? html`: ${p.detail}` : ''}
    ${fields.length ? html`<ul>${fields.map(([k, v]) => html`<li key=${k}><code>${k}</code> ${Array.isArray(v) ? v.join('; ') : text(v)}</li>`)}</ul>` : ''}
  </div>`;
}

export function Loading({ state, children }) {
  if (state.error) return html`<${Problem} error=${state.error} />`;
  if (!state.data) return html`<p class="muted">Loading…</p>`;
  return children;
}

/** An id in monospace with a button that copies it. */
export function CopyId({ id, label }) {
  if (!id) return html`<span class="muted">—</span>`;
  const copy = (e) => {
    e.stopPropagation();
    copyText(String(id), label || 'id');
  };
  return html`<span class="copy"><code title=${id}>${id}</code><button type="button" class="small" onClick=${copy} aria-label=${`Copy ${label || 'id'}`}>copy</button></span>`;
}

export function copyText(value, what) {
  const done = () => toast(`Copied ${what}`);
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(value).then(done, () => fallbackCopy(value, done));
  } else {
    fallbackCopy(value, done);
  }
}

function fallbackCopy(value, done) {
  const area = document.createElement('textarea');
  area.value = value;
  document.body.append(area);
  area.select();
  const ok = document.execCommand('copy');
  area.remove();
  if (ok) done(); else toast('Copy failed: select the text instead');
}

/** A link only for http(s) addresses, opening outside the console; anything else is text. */
export function ExtLink({ href, children }) {
  let ok = false;
  try { ok = ['http:', 'https:'].includes(new URL(String(href)).protocol); } catch { ok = false; }
  if (!ok) return html`<span>${children || text(href)}</span>`;
  return html`<a href=${href} target="_blank" rel="noopener noreferrer">${children || href}</a>`;
}

export const Time = ({ at }) => html`<span title=${at || ''}>${when(at)}</span>`;

const TONES = {
  active: 'ok', processed: 'ok', approved: 'ok', captured: 'ok', intact: 'ok', yes: 'ok', clean: 'ok',
  pending: 'warn', open: 'warn', held: 'warn', locked: 'warn', ignored: 'warn', processing: 'warn',
  failed: 'bad', disabled: 'bad', rejected: 'bad', expired: 'bad', broken: 'bad',
  admin: 'accent', released: '',
};
export const Badge = ({ value, tone }) =>
  html`<span class=${`badge ${tone ?? TONES[value] ?? ''}`}>${text(value)}</span>`;

/**
 * A table; with `onOpen`, rows are focusable and open with a click or Enter, and the
 * arrow keys move between them.
 */
export function Table({ columns, rows, onOpen, rowKey = (r) => r.id, empty = 'Nothing here.', selected }) {
  if (!rows || rows.length === 0) return html`<p class="empty">${empty}</p>`;
  const keydown = (row) => (e) => {
    if (e.key === 'Enter') { e.preventDefault(); onOpen(row); }
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const next = e.key === 'ArrowDown' ? e.currentTarget.nextElementSibling : e.currentTarget.previousElementSibling;
      if (next) next.focus();
    }
  };
  return html`<div class="table-wrap"><table>
    <thead><tr>${columns.map((c) => html`<th key=${c.label} class=${c.num ? 'num' : ''} scope="col">${c.label}</th>`)}</tr></thead>
    <tbody>${rows.map((row) => html`<tr key=${rowKey(row)}
        class=${[onOpen ? 'clickable' : '', selected === rowKey(row) ? 'selected' : ''].join(' ')}
        tabindex=${onOpen ? 0 : undefined}
        onClick=${onOpen ? () => onOpen(row) : undefined}
        onKeyDown=${onOpen ? keydown(row) : undefined}>
      ${columns.map((c) => html`<td key=${c.label} class=${[c.num ? 'num' : '', c.wrap ? 'wrap' : ''].join(' ')}>${c.render ? c.render(row) : text(row[c.key])}</td>`)}
    </tr>`)}</tbody>
  </table></div>`;
}

/** Cursor paging: Next follows `next_cursor`, First goes back to the start. */
export function Pager({ cursor, next, onCursor }) {
  if (!cursor && !next) return null;
  return html`<div class="row small">
    <button type="button" disabled=${!cursor} onClick=${() => onCursor('')}>First page</button>
    <button type="button" disabled=${!next} onClick=${() => onCursor(next)}>Next page</button>
  </div>`;
}

/** Label/value pairs; values are rendered as text unless they are already elements. */
export function KV({ items }) {
  return html`<dl class="kv">${items.filter(Boolean).map(([k, v]) => html`
    <dt key=${`t${k}`}>${k}</dt><dd key=${`d${k}`}>${v !== null && typeof v === 'object' && v.type ? v : text(v)}</dd>`)}</dl>`;
}

/**
 * A modal form stating what will happen. `fields` are `{ name, label, type, required,
 * min, placeholder }`; `onSubmit(values)` returns a promise, and a refusal is shown in place.
 */
export function Dialog({ title, effect, fields = [], submitLabel = 'Confirm', danger, onSubmit, onClose }) {
  const ref = useRef(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  // One key per submission: a second click while the first is in flight replays it;
  // after a refusal the corrected form is a new submission with a new key.
  const key = useRef(newIdempotencyKey());
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    const first = d && d.querySelector('input, textarea, select');
    if (first) first.focus();
  }, []);
  const submit = async (e) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const values = Object.fromEntries(fields.map((f) => [f.name, String(form.get(f.name) || '').trim()]));
    setBusy(true); setError(null);
    try {
      await onSubmit(values, key.current);
      ref.current && ref.current.close();
      onClose(true);
    } catch (err) {
      key.current = newIdempotencyKey();
      setError(err); setBusy(false);
    }
  };
  const cancel = (e) => { e.preventDefault(); ref.current && ref.current.close(); onClose(false); };
  return html`<dialog ref=${ref} onCancel=${cancel} aria-labelledby="dialog-title">
    <form class="form" onSubmit=${submit}>
      <h2 id="dialog-title">${title}</h2>
      ${effect ? html`<p class="effect" data-testid="effect">${effect}</p>` : ''}
      ${fields.map((f) => html`<label key=${f.name}>${f.label}${f.required ? ' (required)' : ''}
        ${f.type === 'textarea'
          ? html`<textarea name=${f.name} required=${f.required} maxlength="500" placeholder=${f.placeholder || ''}></textarea>`
          : f.type === 'select'
            ? html`<select name=${f.name}>${f.options.map((o) => html`<option key=${o} value=${o} selected=${o === f.value}>${o}</option>`)}</select>`
            : html`<input name=${f.name} type=${f.type || 'text'} required=${f.required} min=${f.min} step=${f.step} value=${f.value || ''} placeholder=${f.placeholder || ''} />`}
      </label>`)}
      <${Problem} error=${error} />
      <div class="buttons">
        <button type="button" onClick=${cancel}>Cancel</button>
        <button type="submit" class=${danger ? 'danger' : 'primary'} disabled=${busy}>${busy ? 'Working…' : submitLabel}</button>
      </div>
    </form>
  </dialog>`;
}

/** State for one dialog at a time: `[dialog element or null, open(props)]`. */
export function useDialog() {
  const [props, setProps] = useState(null);
  const open = useCallback((p) => setProps(p), []);
  const el = props ? html`<${Dialog} ...${props} onClose=${(done) => { setProps(null); if (done && props.onDone) props.onDone(); }} />` : null;
  return [el, open];
}

/** The route's query as an object, and a setter that rewrites the hash (so filters deep-link). */
export function setQuery(route, changes) {
  const params = new URLSearchParams(route.query);
  for (const [k, v] of Object.entries(changes)) {
    if (v === '' || v === null || v === undefined) params.delete(k); else params.set(k, v);
  }
  const q = params.toString();
  location.hash = `#/${route.path.join('/')}${q ? `?${q}` : ''}`;
}

export const link = (...parts) => `#/${parts.map(encodeURIComponent).join('/')}`;

/** Columns for rows of unknown shape (billing history, attempt logs): every key of the first rows. */
export function autoColumns(rows) {
  const keys = [];
  for (const r of (rows || []).slice(0, 20)) for (const k of Object.keys(r)) if (!keys.includes(k)) keys.push(k);
  return keys.map((k) => ({
    label: k, wrap: true,
    render: (r) => (/(_at|^at)$/.test(k) ? html`<${Time} at=${r[k]} />` : text(r[k])),
  }));
}
