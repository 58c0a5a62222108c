// A user's tokens: the balance card, the ledger, lots with expiry, holds; grant, adjust, release.
import { useState } from '../../vendor/htm-preact-standalone.module.js';
import { get, post } from '../api.js';
import { html, useLoad, Loading, Table, Pager, Badge, Time, CopyId, useDialog, toast } from '../ui.js';
import { num } from '../format.js';

/** `YYYY-MM-DD` from a date input as the start of that day in UTC, or nothing. */
const expiry = (date) => (date ? `${date}T00:00:00Z` : undefined);

export function TokensTab({ id, user, version, onChanged }) {
  const base = `users/${encodeURIComponent(id)}`;
  const [cursor, setCursor] = useState('');
  const [dialog, open] = useDialog();
  const tokens = useLoad(() => get(`${base}/tokens`), [id, version]);
  const ledger = useLoad(() => get(`${base}/ledger`, { limit: 25, cursor }), [id, version, cursor]);
  const lots = useLoad(() => get(`${base}/lots`), [id, version]);
  const holds = useLoad(() => get(`${base}/holds`), [id, version]);
  const grant = () => open({
    title: `Grant tokens to ${user.email}`, submitLabel: 'Grant',
    effect: 'The tokens are added to their balance at once as an admin grant, with your reason in the ledger and the audit log.',
    fields: [
      { name: 'amount', label: 'Tokens', type: 'number', min: 1, step: 1, required: true },
      { name: 'reason', label: 'Reason', type: 'textarea', required: true },
      { name: 'expires', label: 'Expires on (optional, UTC)', type: 'date' },
    ],
    onSubmit: async (v, key) => {
      const r = await post(`${base}/tokens/grant`, { amount: Number(v.amount), reason: v.reason, expires_at: expiry(v.expires) }, key);
      toast(`Granted ${num(Number(v.amount))} tokens; balance ${num(r && r.balance)}`);
    },
    onDone: onChanged,
  });
  const adjust = () => open({
    title: `Take tokens from ${user.email}`, submitLabel: 'Adjust down', danger: true,
    effect: 'The tokens are taken from their available balance (never below zero), recorded in the ledger with your reason.',
    fields: [
      { name: 'amount', label: 'Tokens to take away', type: 'number', min: 1, step: 1, required: true },
      { name: 'reason', label: 'Reason', type: 'textarea', required: true },
    ],
    onSubmit: async (v, key) => {
      const r = await post(`${base}/tokens/adjust`, { amount: Number(v.amount), reason: v.reason }, key);
      toast(`Adjusted; balance ${num(r && r.balance)}`);
    },
    onDone: onChanged,
  });
  const release = (h) => open({
    title: 'Force-release a hold', submitLabel: 'Release', danger: true,
    effect: `The ${num(h.amount)} held tokens go back to ${user.email}'s available balance and the job holding them can no longer capture them.`,
    fields: [{ name: 'reason', label: 'Reason', type: 'textarea', required: true }],
    onSubmit: (v, key) => post(`${base}/holds/${encodeURIComponent(h.id)}/release`, { reason: v.reason }, key),
    onDone: () => { toast('Hold released'); onChanged(); },
  });
  const t = tokens.data || {};
  return html`
    <div class="cards">
      ${[['Balance', t.balance], ['Held', t.held], ['Available', t.available], ['Expiring in 7 days', t.expiring_7d]].map(([label, v]) => html`
        <div class="card" key=${label}><div class="label">${label}</div><div class="value">${tokens.data ? num(v) : '…'}</div></div>`)}
    </div>
    <div class="actions"><button type="button" class="primary" onClick=${grant}>Grant tokens…</button>
      <button type="button" onClick=${adjust}>Adjust down…</button></div>
    ${dialog}
    <section class="panel"><h2>Ledger</h2>
      <${Loading} state=${ledger}>${ledger.data && html`
        <${Table} rows=${ledger.data.entries} empty="No ledger entries." columns=${[
          { label: 'when', render: (e) => html`<${Time} at=${e.created_at} />` },
          { label: 'kind', render: (e) => html`<${Badge} value=${e.kind} />` },
          { label: 'amount', num: true, render: (e) => (e.amount > 0 ? `+${num(e.amount)}` : num(e.amount)) },
          { label: 'balance after', num: true, render: (e) => num(e.balance_after) },
          { label: 'reason', wrap: true, key: 'reason' },
          { label: 'feature', key: 'feature' },
          { label: 'reference', wrap: true, key: 'reference' },
          { label: 'lot', render: (e) => html`<${CopyId} id=${e.lot_id} label="lot id" />` },
        ]} />
        <${Pager} cursor=${cursor} next=${ledger.data.next_cursor} onCursor=${setCursor} />`}<//>
    </section>
    <div class="two">
      <section class="panel"><h2>Lots</h2>
        <${Loading} state=${lots}>${lots.data && html`<${Table} rows=${lots.data.lots} empty="No lots." columns=${[
          { label: 'source', render: (l) => html`<${Badge} value=${l.source} />` },
          { label: 'amount', num: true, render: (l) => num(l.amount) },
          { label: 'remaining', num: true, render: (l) => num(l.remaining) },
          { label: 'expires', render: (l) => (l.expires_at ? html`<${Time} at=${l.expires_at} />` : 'never') },
        ]} />`}<//>
      </section>
      <section class="panel"><h2>Holds</h2>
        <${Loading} state=${holds}>${holds.data && html`<${Table} rows=${holds.data.holds} empty="No holds." columns=${[
          { label: 'amount', num: true, render: (h) => num(h.amount) },
          { label: 'status', render: (h) => html`<${Badge} value=${h.status} />` },
          { label: 'feature', key: 'feature' },
          { label: 'expires', render: (h) => html`<${Time} at=${h.expires_at} />` },
          { label: '', render: (h) => (h.status === 'open'
            ? html`<button type="button" class="small" onClick=${() => release(h)}>Force-release…</button>` : '') },
        ]} />`}<//>
      </section>
    </div>`;
}
