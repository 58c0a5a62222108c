// System: what is running and how it is configured (read-only on purpose).
import { get } from '../api.js';
import { html, useLoad, Loading, KV, Badge, Table } from '../ui.js';
import { num, bytes, duration, text } from '../format.js';

export function System() {
  const state = useLoad(() => get('system'), []);
  return html`<div class="page-head"><h1>System</h1><button type="button" onClick=${state.reload}>Refresh</button></div>
    <${Loading} state=${state}>${state.data && html`<${Body} s=${state.data} />`}<//>`;
}

function Body({ s }) {
  const stripe = s.stripe || {}; const b = s.backlogs || {};
  const config = Object.entries(s.config || {}).map(([key, value]) => ({ key, value }));
  return html`<div class="two">
      <section class="panel"><h2>Service</h2><${KV} items=${[
        ['Version', s.version], ['Schema version', s.schema_version], ['Uptime', duration(s.uptime_secs)],
        ['Database', bytes(s.db_bytes)], ['WAL', bytes(s.wal_bytes)],
        ['Email', html`<${Badge} value=${s.email_mode} tone=${s.email_mode === 'smtp' ? 'ok' : 'warn'} />`],
      ]} /></section>
      <section class="panel"><h2>Stripe and workers</h2><${KV} items=${[
        ['Stripe', html`<${Badge} value=${stripe.configured ? 'configured' : 'not configured'} tone=${stripe.configured ? 'ok' : ''} />`],
        ['Mode', stripe.mode || '—'], ['Webhook secrets', num(stripe.webhook_secrets)],
        ['Webhooks pending', num(b.webhooks_pending)], ['Webhooks failed', num(b.webhooks_failed)],
        ['Emails pending', num(b.outbox_pending)], ['Emails failed', num(b.outbox_failed)],
      ]} /></section>
    </div>
    <section class="panel"><h2>Effective configuration</h2>
      <p class="muted small">Secrets are masked. Configuration is changed in Rocket.toml or the environment, never here.</p>
      <${Table} rowKey=${(r) => r.key} rows=${config} columns=${[
        { label: 'key', render: (r) => html`<code>${r.key}</code>` },
        { label: 'value', wrap: true, render: (r) => text(r.value) },
      ]} />
    </section>`;
}
