// Charts drawn by uPlot on a canvas, in the page's colours (light or dark).
import { html, useEffect, useRef } from '../vendor/htm-preact-standalone.module.js';
import uPlot from '../vendor/uPlot.esm.js';

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

/** `days` (`YYYY-MM-DD`, ascending) against one or more series `{ label, values }`. */
export function DayChart({ days, series, bars = true, label }) {
  const ref = useRef(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return undefined;
    const xs = days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000);
    const colours = [css('--chart-1'), css('--chart-2')];
    const axis = { stroke: css('--muted'), grid: { stroke: css('--chart-grid'), width: 1 }, ticks: { stroke: css('--chart-grid') } };
    const make = () => new uPlot({
      width: Math.max(el.clientWidth, 200),
      height: 240,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max, 1) * 1.1] } },
      axes: [axis, { ...axis, size: 60 }],
      series: [{ value: '{YYYY}-{MM}-{DD}' }, ...series.map((s, i) => ({
        label: s.label,
        stroke: colours[i % colours.length],
        fill: `${colours[i % colours.length]}33`,
        width: 2,
        paths: bars ? uPlot.paths.bars({ size: [0.7, 40] }) : undefined,
        points: { show: !bars },
      }))],
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
    }, [xs, ...series.map((s) => s.values)], el);
    let plot = make();
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(el.clientWidth, 200), height: 240 }));
    resize.observe(el);
    const scheme = matchMedia('(prefers-color-scheme: dark)');
    const redraw = () => { plot.destroy(); plot = make(); };
    scheme.addEventListener('change', redraw);
    return () => { resize.disconnect(); scheme.removeEventListener('change', redraw); plot.destroy(); };
  }, [JSON.stringify(days), JSON.stringify(series), bars]);
  return html`<div class="chart" ref=${ref} role="img" aria-label=${label || 'chart'} data-testid="chart"></div>`;
}

/** Every day from `from` to `to` inclusive (`YYYY-MM-DD`), so empty days show as zero. */
export function daysBetween(from, to) {
  const out = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += 86400000) {
    out.push(new Date(t).toISOString().slice(0, 10));
  }
  return out;
}

/** The values of `rows` (`{ [dayKey]: day, [valueKey]: n }`) on each of `days`, 0 when absent. */
export function onDays(days, rows, dayKey, valueKey) {
  const by = new Map((rows || []).map((r) => [String(r[dayKey]).slice(0, 10), r[valueKey]]));
  return days.map((d) => by.get(d) || 0);
}
