// Overview: is anything wrong, and how the economy is doing.
import { get } from '../api.js';
import { html, useLoad, Loading, Time } from '../ui.js';
import { num } from '../format.js';
import { DayChart } from '../chart.js';

function Alert({ label, value, href, sub, bad }) {
  const cls = `card ${bad ? 'alert' : 'good'}`;
  return html`<a class=${cls} href=${href} data-testid=${`alert-${label}`}>
    <div class="label">${label}</div><div class="value">${value}</div>${sub ? html`<div class="sub">${sub}</div>` : ''}
  </a>`;
}

function Kpi({ label, value, sub }) {
  return html`<div class="card"><div class="label">${label}</div><div class="value">${value}</div>${sub ? html`<div class="sub">${sub}</div>` : ''}</div>`;
}

export function Overview() {
  const state = useLoad(() => get('overview'), []);
  return html`<div class="page-head"><h1>Overview</h1><button type="button" onClick=${state.reload}>Refresh</button></div>
    <${Loading} state=${state}>${state.data && html`<${Body} data=${state.data} />`}<//>`;
}

function Body({ data }) {
  const a = data.alerts || {}; const k = data.kpis || {};
  const check = a.last_ledger_check;
  const days = (data.spend_per_day || []).map((d) => d.day);
  return html`
    <h2>Needs attention</h2>
    <div class="cards">
      <${Alert} label="Pending claims" value=${num(a.pending_claims)} href="#/claims" bad=${a.pending_claims > 0} />
      <${Alert} label="Failed webhooks" value=${num(a.failed_webhooks)} href="#/webhooks?status=failed" bad=${a.failed_webhooks > 0} />
      <${Alert} label="Failed emails" value=${num(a.failed_emails)} href="#/system" bad=${a.failed_emails > 0} />
      <${Alert} label="Refund shortfalls" value=${num(a.shortfall_total)} sub="tokens not recovered" href="#/checks" bad=${a.shortfall_total > 0} />
      <${Alert} label="Holds past TTL" value=${num(a.holds_past_ttl)} href="#/users" bad=${a.holds_past_ttl > 0} />
      <${Alert} label="Last ledger check" value=${check ? (check.clean ? 'clean' : 'mismatch') : 'never'}
        sub=${check ? html`<${Time} at=${check.at} />` : 'run it under Money checks'} href="#/checks" bad=${!check || !check.clean} />
    </div>
    <h2>Key figures</h2>
    <div class="cards">
      <${Kpi} label="Users" value=${num(k.users)} sub=${`${num(k.users_new_7d)} new in 7 days`} />
      <${Kpi} label="Tokens outstanding" value=${num(k.tokens_outstanding)} />
      <${Kpi} label="Tokens held" value=${num(k.tokens_held)} />
      <${Kpi} label="Expiring in 7 days" value=${num(k.tokens_expiring_7d)} />
    </div>
    <section class="panel">
      <h2>Tokens spent per day (last 30 days)</h2>
      <${DayChart} days=${days} series=${[{ label: 'tokens spent', values: (data.spend_per_day || []).map((d) => d.tokens) }]} label="Tokens spent per day" />
    </section>`;
}
