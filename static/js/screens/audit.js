// Audit log: filtered browse, row detail with hashes, and verifying the chain.
import { useState } from '../../vendor/htm-preact-standalone.module.js';
import { get, post } from '../api.js';
import { html, useLoad, Loading, Pager, KV, Time, CopyId, Badge, setQuery, Problem } from '../ui.js';
import { num, text } from '../format.js';
import { AuditTable } from './user_tabs.js';

/** A date input's `YYYY-MM-DD` as an RFC 3339 bound: `from` its start, `to` (exclusive) the next day's start, UTC. */
function bound(date, end) {
  if (!date) return '';
  const t = Date.parse(`${date}T00:00:00Z`) + (end ? 86400000 : 0);
  return Number.isNaN(t) ? '' : new Date(t).toISOString().replace('.000Z', 'Z');
}

export function Audit({ route }) {
  const q = Object.fromEntries(route.query);
  const params = { actor: q.actor, target: q.target, action: q.action, from: bound(q.from), to: bound(q.to, true), cursor: q.cursor, limit: 50 };
  const state = useLoad(() => get('audit', params), [route.query.toString()]);
  const [selected, setSelected] = useState(null);
  const submit = (e) => { e.preventDefault(); setQuery(route, { ...Object.fromEntries(new FormData(e.currentTarget)), cursor: '' }); };
  return html`<div class="page-head"><h1>Audit log</h1></div>
    <${Verify} />
    <form class="filters panel" onSubmit=${submit}>
      <label class="grow">Actor (user id)<input name="actor" value=${q.actor || ''} /></label>
      <label class="grow">Target (id)<input name="target" value=${q.target || ''} /></label>
      <label>Action prefix<input name="action" value=${q.action || ''} placeholder="tokens." /></label>
      <label>From<input name="from" type="date" value=${q.from || ''} /></label>
      <label>To<input name="to" type="date" value=${q.to || ''} /></label>
      <button type="submit" class="primary">Filter</button>
    </form>
    ${selected ? html`<${Row} id=${selected} onClose=${() => setSelected(null)} />` : ''}
    <section class="panel"><${Loading} state=${state}>${state.data && html`
      <${AuditTable} rows=${state.data.entries} selected=${selected} onOpen=${(r) => setSelected(r.id)} />
      <${Pager} cursor=${q.cursor} next=${state.data.next_cursor} onCursor=${(c) => setQuery(route, { cursor: c })} />`}<//></section>`;
}

function Row({ id, onClose }) {
  const state = useLoad(() => get(`audit/${encodeURIComponent(id)}`), [id]);
  const r = state.data || {};
  return html`<section class="panel" aria-label="Audit row">
    <div class="page-head"><h2>Audit row ${id}</h2><button type="button" onClick=${onClose}>Close</button></div>
    <${Loading} state=${state}>${state.data && html`<${KV} items=${[
      ['When', html`<${Time} at=${r.at} />`], ['Action', html`<code>${r.action}</code>`],
      ['Actor', text(r.actor_email || r.actor_id)], ['Target', html`<${CopyId} id=${r.target_id} label="target id" />`],
      ['IP', r.ip], ['User agent', r.user_agent],
      ['Hash', html`<${CopyId} id=${r.hash} label="hash" />`], ['Previous hash', html`<${CopyId} id=${r.prev_hash} label="hash" />`],
    ]} /><h3>Details</h3><pre>${JSON.stringify(r.details, null, 2)}</pre>`}<//>
  </section>`;
}

function Verify() {
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const run = async () => {
    setBusy(true); setError(null);
    try { setResult(await post('audit/verify', {})); } catch (e) { setError(e); } finally { setBusy(false); }
  };
  return html`<section class="panel" data-testid="verify">
    <div class="page-head"><h2>Chain</h2><button type="button" class="primary" onClick=${run} disabled=${busy}>${busy ? 'Verifying…' : 'Verify chain'}</button></div>
    <p class="muted small">Every row carries the hash of the one before; verifying recomputes them all. Record the head elsewhere to detect a rewritten log later.</p>
    <${Problem} error=${error} />
    ${result && html`<${KV} items=${[
      ['Result', html`<${Badge} value=${result.intact ? 'intact' : 'broken'} />`],
      ['Rows checked', num(result.rows)],
      ['Head id', html`<span data-testid="head-id">${text(result.head_id)}</span>`],
      ['Head hash', html`<${CopyId} id=${result.head_hash} label="head hash" />`],
      result.problem ? ['Problem', text(result.problem)] : null,
    ]} />`}
  </section>`;
}
