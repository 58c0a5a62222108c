// A user's billing, sessions and activity tabs.
import { useState } from '../../vendor/htm-preact-standalone.module.js';
import { get, post } from '../api.js';
import { html, useLoad, Loading, Table, Pager, KV, Time, CopyId, toast, autoColumns, Problem } from '../ui.js';
import { text } from '../format.js';

export function BillingTab({ id, version }) {
  const state = useLoad(() => get(`users/${encodeURIComponent(id)}/billing`), [id, version]);
  const b = state.data || {};
  return html`<${Loading} state=${state}>${state.data && html`
    <section class="panel"><h2>Subscription</h2>
      <${KV} items=${[
        ['Stripe customer', html`<${CopyId} id=${b.stripe_customer_id} label="customer id" />`],
        ...Object.entries(b.subscription || {}).map(([k, v]) => [k, /_at$/.test(k) ? html`<${Time} at=${v} />` : text(v)]),
      ]} />
      ${b.subscription ? '' : html`<p class="empty">No subscription.</p>`}
    </section>
    <section class="panel"><h2>Subscription changes</h2>
      <${Table} rows=${b.changes} rowKey=${(r) => r.id || JSON.stringify(r)} columns=${autoColumns(b.changes)} empty="No changes." /></section>
    <section class="panel"><h2>Purchases</h2>
      <${Table} rows=${b.purchases} rowKey=${(r) => r.id || JSON.stringify(r)} columns=${autoColumns(b.purchases)} empty="No purchases." /></section>`}<//>`;
}

export function SessionsTab({ id, version, onChanged }) {
  const state = useLoad(() => get(`users/${encodeURIComponent(id)}/sessions`), [id, version]);
  const [error, setError] = useState(null);
  const revoke = async (s) => {
    setError(null);
    try {
      await post(`users/${encodeURIComponent(id)}/sessions/${encodeURIComponent(s.id)}/revoke`, {});
      toast('Session revoked'); onChanged();
    } catch (e) { setError(e); }
  };
  return html`<section class="panel"><h2>Sessions</h2><${Problem} error=${error} />
    <${Loading} state=${state}>${state.data && html`<${Table} rows=${state.data.sessions} empty="No active sessions." columns=${[
      { label: 'created', render: (s) => html`<${Time} at=${s.created_at} />` },
      { label: 'last used', render: (s) => html`<${Time} at=${s.last_used_at} />` },
      { label: 'expires', render: (s) => html`<${Time} at=${s.expires_at} />` },
      { label: 'ip', key: 'ip' },
      { label: 'user agent', wrap: true, key: 'user_agent' },
      { label: '', render: (s) => html`<button type="button" class="small" onClick=${() => revoke(s)}>Revoke</button>` },
    ]} />`}<//></section>`;
}

export function ActivityTab({ id, version }) {
  const [cursor, setCursor] = useState('');
  const state = useLoad(() => get(`users/${encodeURIComponent(id)}/activity`, { limit: 50, cursor }), [id, version, cursor]);
  return html`<section class="panel"><h2>Activity (by or about this user)</h2>
    <${Loading} state=${state}>${state.data && html`<${AuditTable} rows=${state.data.entries} />
      <${Pager} cursor=${cursor} next=${state.data.next_cursor} onCursor=${setCursor} />`}<//></section>`;
}

export function AuditTable({ rows, onOpen, selected }) {
  return html`<${Table} rows=${rows} onOpen=${onOpen} selected=${selected} empty="No audit rows." columns=${[
    { label: 'id', key: 'id' },
    { label: 'when', render: (r) => html`<${Time} at=${r.at} />` },
    { label: 'action', render: (r) => html`<code>${r.action}</code>` },
    { label: 'actor', wrap: true, render: (r) => text(r.actor_email || r.actor_id) },
    { label: 'target', wrap: true, key: 'target_id' },
    { label: 'ip', key: 'ip' },
    { label: 'details', wrap: true, render: (r) => html`<span class="mono small">${text(r.details)}</span>` },
  ]} />`;
}
