// Analytics: tokens spent per day and per feature, earned per source, over a chosen range.
import { get } from '../api.js';
import { html, useLoad, Loading, Table, setQuery } from '../ui.js';
import { num, day } from '../format.js';
import { DayChart, daysBetween, onDays } from '../chart.js';

const PRESETS = [7, 30, 90, 365];

function range(route) {
  const today = new Date();
  const to = route.query.get('to') || day(today);
  const from = route.query.get('from') || day(new Date(Date.parse(`${to}T00:00:00Z`) - 29 * 86400000));
  return { from, to };
}

export function Analytics({ route }) {
  const { from, to } = range(route);
  const byDay = useLoad(() => get('analytics', { from, to, group_by: 'day' }), [from, to]);
  const byFeature = useLoad(() => get('analytics', { from, to, group_by: 'feature' }), [from, to]);
  const submit = (e) => { e.preventDefault(); setQuery(route, Object.fromEntries(new FormData(e.currentTarget))); };
  const preset = (n) => setQuery(route, { to: day(new Date()), from: day(new Date(Date.now() - (n - 1) * 86400000)) });
  const days = daysBetween(from, to);
  return html`<div class="page-head"><h1>Analytics</h1></div>
    <form class="filters panel" onSubmit=${submit}>
      <label>From<input name="from" type="date" value=${from} required /></label>
      <label>To<input name="to" type="date" value=${to} required /></label>
      <button type="submit" class="primary">Show</button>
      <span class="spacer"></span>
      ${PRESETS.map((n) => html`<button key=${n} type="button" onClick=${() => preset(n)}>Last ${n} days</button>`)}
    </form>
    <section class="panel"><h2>Tokens spent per day</h2>
      <${Loading} state=${byDay}>${byDay.data && html`
        <p class="muted small">${num(byDay.data.total_spent)} spent, ${num(byDay.data.total_earned)} earned from ${from} to ${to} (UTC).</p>
        <${DayChart} days=${days} series=${[{ label: 'tokens spent', values: onDays(days, byDay.data.spent, 'key', 'tokens') }]} label="Tokens spent per day" />`}<//>
    </section>
    <div class="two">
      <section class="panel"><h2>Spent per feature</h2>
        <${Loading} state=${byFeature}>${byFeature.data && html`<${Table} rows=${byFeature.data.spent} rowKey=${(r) => r.key} empty="Nothing spent in this range." columns=${[
          { label: 'feature', render: (r) => html`<code>${r.key}</code>` },
          { label: 'tokens', num: true, render: (r) => num(r.tokens) },
          { label: 'jobs', num: true, render: (r) => num(r.jobs) },
        ]} />`}<//></section>
      <section class="panel"><h2>Earned per source</h2>
        <${Loading} state=${byDay}>${byDay.data && html`<${Table} rows=${byDay.data.earned} rowKey=${(r) => r.source} empty="Nothing earned in this range." columns=${[
          { label: 'source', render: (r) => html`<code>${r.source}</code>` },
          { label: 'tokens', num: true, render: (r) => num(r.tokens) },
        ]} />`}<//></section>
    </div>`;
}
