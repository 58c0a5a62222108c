// Users: search by email part, exact id or display name; filters; cursor paging.
import { useEffect, useRef } from '../../vendor/htm-preact-standalone.module.js';
import { get } from '../api.js';
import { html, useLoad, Loading, Table, Pager, Badge, Time, setQuery, link } from '../ui.js';
import { num } from '../format.js';

const FILTERS = [
  ['role', 'Role', ['user', 'admin']],
  ['status', 'Status', ['active', 'disabled']],
  ['verified', 'Verified', ['true', 'false']],
  ['locked', 'Locked', ['true', 'false']],
];

export function Users({ route }) {
  const q = Object.fromEntries(route.query);
  const search = useRef(null);
  const state = useLoad(() => get('users', { ...q, limit: 50 }), [route.query.toString()]);
  useEffect(() => {
    const slash = (e) => {
      if (e.key === '/' && !['INPUT', 'TEXTAREA', 'SELECT'].includes(document.activeElement.tagName)) {
        e.preventDefault(); search.current.focus();
      }
    };
    addEventListener('keydown', slash);
    return () => removeEventListener('keydown', slash);
  }, []);
  const submit = (e) => {
    e.preventDefault();
    const form = Object.fromEntries(new FormData(e.currentTarget));
    setQuery(route, { ...form, cursor: '' });
  };
  const open = (u) => { location.hash = link('users', u.id); };
  return html`<div class="page-head"><h1>Users</h1></div>
    <form class="filters panel" onSubmit=${submit} role="search">
      <label class="grow"><span>Search (email part, exact id, display name) <span class="kbd" title="press / to search">/</span></span>
        <input ref=${search} name="q" type="search" value=${q.q || ''} placeholder="ada@ or 0190… or Ada" /></label>
      ${FILTERS.map(([name, label, options]) => html`<label key=${name}>${label}
        <select name=${name}><option value="">any</option>${options.map((o) => html`<option key=${o} value=${o} selected=${q[name] === o}>${o}</option>`)}</select></label>`)}
      <button type="submit" class="primary">Search</button>
    </form>
    <section class="panel">
      <${Loading} state=${state}>${state.data && html`
        <${Table} rows=${state.data.users} onOpen=${open} empty="No user matches." columns=${[
          { label: 'email', render: (u) => html`<a href=${link('users', u.id)} tabindex="-1">${u.email}</a>` },
          { label: 'name', wrap: true, key: 'display_name' },
          { label: 'role', render: (u) => html`<${Badge} value=${u.role} />` },
          { label: 'status', render: (u) => html`<${Badge} value=${u.status} />` },
          { label: 'verified', render: (u) => (u.email_verified ? 'yes' : html`<${Badge} value="no" tone="warn" />`) },
          { label: 'locked', render: (u) => (u.locked ? html`<${Badge} value="locked" />` : 'no') },
          { label: 'balance', num: true, render: (u) => num(u.balance) },
          { label: 'last seen', render: (u) => html`<${Time} at=${u.last_seen_at} />` },
          { label: 'created', render: (u) => html`<${Time} at=${u.created_at} />` },
        ]} />
        <${Pager} cursor=${q.cursor} next=${state.data.next_cursor} onCursor=${(c) => setQuery(route, { cursor: c })} />`}
      <//>
    </section>`;
}
