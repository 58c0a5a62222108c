// Money checks: the ledger invariant check and the refund shortfalls.
import { useState } from '../../vendor/htm-preact-standalone.module.js';
import { get } from '../api.js';
import { html, useLoad, Loading, Table, Pager, Badge, Time, KV, Problem, link, autoColumns } from '../ui.js';
import { num } from '../format.js';

export function Checks() {
  return html`<div class="page-head"><h1>Money checks</h1></div><${Ledger} /><${Shortfalls} />`;
}

function Ledger() {
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const run = async () => {
    setBusy(true); setError(null);
    try { setResult(await get('checks/ledger')); } catch (e) { setError(e); } finally { setBusy(false); }
  };
  return html`<section class="panel">
    <div class="page-head"><h2>Ledger invariant</h2><button type="button" class="primary" onClick=${run} disabled=${busy}>${busy ? 'Checking…' : 'Run ledger check'}</button></div>
    <p class="muted small">Recomputes every user's balance from the ledger and their lots and compares (what <code>audiostudio check</code> does).</p>
    <${Problem} error=${error} />
    ${result && html`<${KV} items=${[
      ['Result', html`<${Badge} value=${result.clean ? 'clean' : 'mismatch'} tone=${result.clean ? 'ok' : 'bad'} />`],
      ['Users checked', num(result.users_checked)], ['Checked at', html`<${Time} at=${result.checked_at} />`],
    ]} />
    ${result.mismatches && result.mismatches.length ? html`<${Table} rows=${result.mismatches} rowKey=${(m) => m.user_id} columns=${[
      { label: 'user', render: (m) => html`<a href=${link('users', m.user_id)}>${m.email || m.user_id}</a>` },
      { label: 'expected', num: true, render: (m) => num(m.expected) },
      { label: 'actual', num: true, render: (m) => num(m.actual) },
    ]} />` : ''}`}
  </section>`;
}

function Shortfalls() {
  const [user, setUser] = useState('');
  const [cursor, setCursor] = useState('');
  const state = useLoad(() => get('token-shortfalls', { user_id: user, cursor, limit: 50 }), [user, cursor]);
  const submit = (e) => { e.preventDefault(); setUser(String(new FormData(e.currentTarget).get('user_id') || '').trim()); setCursor(''); };
  return html`<section class="panel"><h2>Refund shortfalls</h2>
    <p class="muted small">Tokens a refund or chargeback should have taken back but the user had already spent.</p>
    <form class="filters" onSubmit=${submit}><label class="grow">User id<input name="user_id" value=${user} /></label><button type="submit">Filter</button></form>
    <${Loading} state=${state}>${state.data && html`
      <p>Total: <strong>${num(state.data.total)}</strong> tokens</p>
      <${Table} rows=${state.data.shortfalls} rowKey=${(r) => r.id || JSON.stringify(r)} columns=${autoColumns(state.data.shortfalls)} empty="No shortfalls." />
      <${Pager} cursor=${cursor} next=${state.data.next_cursor} onCursor=${setCursor} />`}<//>
  </section>`;
}
