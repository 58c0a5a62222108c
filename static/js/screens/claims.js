// Social claims: the review queue, pending first; approve or reject with a reason, by keyboard too.
import { useState, useEffect } from '../../vendor/htm-preact-standalone.module.js';
import { get, post } from '../api.js';
import { html, useLoad, Loading, Table, Pager, Badge, Time, ExtLink, useDialog, toast, setQuery, link, Problem } from '../ui.js';
import { num } from '../format.js';

export function Claims({ route }) {
  const status = route.query.get('status') ?? 'pending';
  const cursor = route.query.get('cursor') || '';
  const state = useLoad(() => get('claims', { status, cursor, limit: 50 }), [status, cursor]);
  const [selected, setSelected] = useState(null);
  const [error, setError] = useState(null);
  const [dialog, open] = useDialog();
  const claims = (state.data && state.data.claims) || [];
  const current = claims.find((c) => c.id === selected) || claims.find((c) => c.status === 'pending') || null;

  const approve = async (c) => {
    setError(null);
    try { await post(`claims/${encodeURIComponent(c.id)}/approve`, {}); toast(`Approved: ${num(c.reward)} tokens to ${c.email}`); state.reload(); } catch (e) { setError(e); }
  };
  const reject = (c) => open({
    title: `Reject ${c.email}'s claim`, submitLabel: 'Reject', danger: true,
    effect: 'No tokens are granted; the user sees your reason and may submit again.',
    fields: [{ name: 'reason', label: 'Reason', type: 'textarea', required: true }],
    onSubmit: (v) => post(`claims/${encodeURIComponent(c.id)}/reject`, { reason: v.reason }),
    onDone: () => { toast('Rejected'); state.reload(); },
  });

  useEffect(() => {
    const keys = (e) => {
      if (dialog || ['INPUT', 'TEXTAREA', 'SELECT'].includes(document.activeElement.tagName) || e.ctrlKey || e.metaKey || e.altKey) return;
      const i = claims.indexOf(current);
      if (e.key === 'j' && i < claims.length - 1) setSelected(claims[i + 1].id);
      else if (e.key === 'k' && i > 0) setSelected(claims[i - 1].id);
      else if (e.key === 'a' && current && current.status === 'pending') approve(current);
      else if (e.key === 'r' && current && current.status === 'pending') reject(current);
      else return;
      e.preventDefault();
    };
    addEventListener('keydown', keys);
    return () => removeEventListener('keydown', keys);
  });

  return html`<div class="page-head"><h1>Social claims</h1>
      <label>Status<select onChange=${(e) => setQuery(route, { status: e.currentTarget.value, cursor: '' })}>
        ${['pending', 'approved', 'rejected', ''].map((s) => html`<option key=${s} value=${s} selected=${s === status}>${s || 'all'}</option>`)}
      </select></label></div>
    <p class="muted small">Keys: <span class="kbd">j</span>/<span class="kbd">k</span> move, <span class="kbd">a</span> approve, <span class="kbd">r</span> reject (asks for a reason).</p>
    <${Problem} error=${error} />
    ${dialog}
    <section class="panel"><${Loading} state=${state}>${state.data && html`
      <${Table} rows=${claims} selected=${current && current.id} onOpen=${(c) => setSelected(c.id)} empty="No claims to review." columns=${[
        { label: 'submitted', render: (c) => html`<${Time} at=${c.created_at} />` },
        { label: 'user', wrap: true, render: (c) => html`<a href=${link('users', c.user_id)}>${c.email}</a>` },
        { label: 'task', wrap: true, render: (c) => c.task_title || c.task },
        { label: 'handle', wrap: true, key: 'handle' },
        { label: 'proof', wrap: true, render: (c) => html`<${ExtLink} href=${c.proof_url} />` },
        { label: 'reward', num: true, render: (c) => num(c.reward) },
        { label: 'today / cap', num: true, render: (c) => `${num(c.claims_today)} / ${num(c.daily_cap)}` },
        { label: 'status', render: (c) => html`<${Badge} value=${c.status} />${c.reason ? html`<div class="small muted">${c.reason}</div>` : ''}` },
        { label: '', render: (c) => (c.status === 'pending' ? html`<div class="row small">
            <button type="button" class="primary" onClick=${(e) => { e.stopPropagation(); approve(c); }}>Approve</button>
            <button type="button" onClick=${(e) => { e.stopPropagation(); reject(c); }}>Reject…</button></div>` : '') },
      ]} />
      <${Pager} cursor=${cursor} next=${state.data.next_cursor} onCursor=${(c) => setQuery(route, { cursor: c })} />`}<//></section>`;
}
