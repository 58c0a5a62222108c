// Webhooks: Stripe events by status / type / object; detail with payload; replay one or all failed.
import { get, post } from '../api.js';
import { html, useLoad, Loading, Table, Pager, Badge, Time, CopyId, KV, useDialog, toast, setQuery, link, copyText, autoColumns } from '../ui.js';
import { num } from '../format.js';

export function Webhooks({ route }) {
  const q = Object.fromEntries(route.query);
  const state = useLoad(() => get('webhooks', { ...q, limit: 50 }), [route.query.toString()]);
  const [dialog, open] = useDialog();
  const submit = (e) => { e.preventDefault(); setQuery(route, { ...Object.fromEntries(new FormData(e.currentTarget)), cursor: '' }); };
  const replayAll = async () => {
    const overview = await get('overview');
    const count = overview.alerts.failed_webhooks;
    open({
      title: 'Replay every failed event', submitLabel: `Replay ${num(count)}`, danger: true,
      effect: `${num(count)} failed ${count === 1 ? 'event goes' : 'events go'} back to the queue and will be processed again (each grants at most once).`,
      onSubmit: async () => { const r = await post('webhooks/replay-failed', {}); toast(`Requeued ${num(r && r.requeued)} events`); },
      onDone: state.reload,
    });
  };
  return html`<div class="page-head"><h1>Webhooks</h1><button type="button" onClick=${replayAll}>Replay all failed…</button></div>
    ${dialog}
    <form class="filters panel" onSubmit=${submit}>
      <label>Status<select name="status">${['', 'pending', 'processing', 'processed', 'failed', 'ignored'].map((s) => html`<option key=${s} value=${s} selected=${(q.status || '') === s}>${s || 'any'}</option>`)}</select></label>
      <label class="grow">Type<input name="type" value=${q.type || ''} placeholder="invoice.paid" /></label>
      <label class="grow">Object id<input name="object" value=${q.object || ''} placeholder="sub_… / in_… / cs_…" /></label>
      <button type="submit" class="primary">Filter</button>
    </form>
    <section class="panel"><${Loading} state=${state}>${state.data && html`
      <${Table} rows=${state.data.events} onOpen=${(e) => { location.hash = link('webhooks', e.id); }} empty="No events." columns=${[
        { label: 'status', render: (e) => html`<${Badge} value=${e.status} />` },
        { label: 'type', render: (e) => html`<code>${e.type}</code>` },
        { label: 'received', render: (e) => html`<${Time} at=${e.received_at} />` },
        { label: 'object', wrap: true, key: 'object_id' },
        { label: 'attempts', num: true, render: (e) => num(e.attempts) },
        { label: 'last error', wrap: true, key: 'last_error' },
        { label: 'id', render: (e) => html`<a href=${link('webhooks', e.id)}>${e.id}</a>` },
      ]} />
      <${Pager} cursor=${q.cursor} next=${state.data.next_cursor} onCursor=${(c) => setQuery(route, { cursor: c })} />`}<//></section>`;
}

export function WebhookDetail({ route }) {
  const id = route.path[1];
  const state = useLoad(() => get(`webhooks/${encodeURIComponent(id)}`), [id]);
  const [dialog, open] = useDialog();
  const replay = () => open({
    title: 'Replay this event', submitLabel: 'Replay',
    effect: 'The event goes back to the queue and is processed again; what it grants is granted at most once.',
    onSubmit: () => post(`webhooks/${encodeURIComponent(id)}/replay`, {}),
    onDone: () => { toast('Requeued'); state.reload(); },
  });
  const e = state.data || {};
  const payload = JSON.stringify(e.payload, null, 2);
  return html`<p class="small"><a href="#/webhooks">← Webhooks</a></p>${dialog}
    <${Loading} state=${state}>${state.data && html`
      <section class="panel">
        <div class="page-head"><h1><code>${e.type}</code></h1>
          <div class="row"><${Badge} value=${e.status} data-testid="status" />
            ${['failed', 'ignored'].includes(e.status) ? html`<button type="button" class="primary" onClick=${replay}>Replay…</button>` : ''}
            <button type="button" onClick=${state.reload}>Refresh</button></div></div>
        <${KV} items=${[
          ['Event id', html`<${CopyId} id=${e.id} label="event id" />`],
          ['Status', html`<span data-testid="event-status">${e.status}</span>`],
          ['Object', html`<${CopyId} id=${e.object_id} label="object id" />`],
          ['User', e.user_id ? html`<a href=${link('users', e.user_id)}>${e.user_id}</a>` : null],
          ['Received', html`<${Time} at=${e.received_at} />`],
          ['Attempts', num(e.attempts)],
          ['Last error', e.last_error],
          e.last_error_at ? ['Last error at', html`<${Time} at=${e.last_error_at} />`] : null,
          ['Next attempt', html`<${Time} at=${e.next_attempt_at} />`],
          e.processed_at ? ['Processed', html`<${Time} at=${e.processed_at} />`] : null,
          e.note ? ['Note', e.note] : null,
          e.livemode === undefined ? null : ['Mode', e.livemode ? 'live' : 'test'],
          e.api_version ? ['API version', e.api_version] : null,
        ]} />
      </section>
      ${e.attempts_log && e.attempts_log.length ? html`<section class="panel"><h2>Attempts</h2>
        <${Table} rows=${e.attempts_log} rowKey=${(r) => JSON.stringify(r)} columns=${autoColumns(e.attempts_log)} /></section>` : ''}
      <section class="panel"><div class="page-head"><h2>Payload</h2>
        <button type="button" onClick=${() => copyText(payload, 'payload')}>Copy payload</button></div>
        <pre data-testid="payload">${payload}</pre></section>`}<//>`;
}
