// The console: who is signed in, the hash route, the frame around every screen.
import { render, useState, useEffect } from '../vendor/htm-preact-standalone.module.js';
import { get, post, whenSignedOut } from './api.js';
import { html, Toasts } from './ui.js';
import { SignIn } from './screens/signin.js';
import { Overview } from './screens/overview.js';
import { Users } from './screens/users.js';
import { UserDetail } from './screens/user.js';
import { Claims } from './screens/claims.js';
import { Webhooks, WebhookDetail } from './screens/webhooks.js';
import { Audit } from './screens/audit.js';
import { Checks } from './screens/checks.js';
import { Analytics } from './screens/analytics.js';
import { System } from './screens/system.js';
import { Security, EnrolRequired } from './screens/security.js';

const SCREENS = [
  ['overview', 'Overview', Overview],
  ['users', 'Users', Users],
  ['claims', 'Social claims', Claims],
  ['webhooks', 'Webhooks', Webhooks],
  ['audit', 'Audit log', Audit],
  ['checks', 'Money checks', Checks],
  ['analytics', 'Analytics', Analytics],
  ['system', 'System', System],
  ['security', 'Security', Security],
];

/** `#/users/ID?tab=tokens` -> `{ path: ['users', 'ID'], query: URLSearchParams }`. */
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, q] = raw.split('?');
  return {
    path: path.split('/').filter(Boolean).map(decodeURIComponent),
    query: new URLSearchParams(q || ''),
  };
}

function useRoute() {
  const [route, setRoute] = useState(parseHash);
  useEffect(() => {
    const changed = () => setRoute(parseHash());
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return route;
}

function screenFor(route) {
  const [first, id] = route.path;
  if (first === 'users' && id) return [UserDetail, 'users'];
  if (first === 'webhooks' && id) return [WebhookDetail, 'webhooks'];
  const found = SCREENS.find(([key]) => key === first) || SCREENS[0];
  return [found[2], found[0]];
}

function Shell({ me, route, onSignOut, onMeChanged }) {
  const [Screen, current] = screenFor(route);
  const title = SCREENS.find(([k]) => k === current)[1];
  useEffect(() => { document.title = `${title} · audiostudio admin`; }, [title]);
  useEffect(() => {
    const main = document.getElementById('main');
    if (main) main.focus({ preventScroll: true });
  }, [route.path.join('/')]);
  return html`<div class="shell">
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById('main').focus(); }}>Skip to content</a>
    <aside class="side">
      <div class="brand"><img src="/admin/favicon.svg" alt="" />audiostudio admin</div>
      <nav class="nav" aria-label="Screens">
        ${SCREENS.map(([key, label]) => html`<a key=${key} href=${`#/${key}`} aria-current=${key === current ? 'page' : undefined}>${label}</a>`)}
      </nav>
      <div class="who">
        <span>Signed in as <strong>${me.user.email}</strong></span>
        <button type="button" class="small" onClick=${onSignOut}>Sign out</button>
      </div>
    </aside>
    <main id="main" class="content" tabindex="-1">
      <${Screen} key=${route.path.join('/')} route=${route} me=${me} onMeChanged=${onMeChanged} />
    </main>
  </div>`;
}

function App() {
  const route = useRoute();
  const [me, setMe] = useState(undefined);
  const reloadMe = () => get('me').then(setMe, () => setMe(null));
  useEffect(() => {
    whenSignedOut(() => setMe(null));
    reloadMe();
  }, []);
  const signOut = async () => {
    try { await post('logout', {}); } finally { setMe(null); }
  };
  if (me === undefined) return html`<main class="boot"><p class="muted">Loading the console…</p></main>`;
  let page;
  if (!me) page = html`<${SignIn} onSignedIn=${setMe} />`;
  else if (me.mfa && me.mfa.enrolment_required) page = html`<${EnrolRequired} me=${me} onDone=${reloadMe} onSignOut=${signOut} />`;
  else page = html`<${Shell} me=${me} route=${route} onSignOut=${signOut} onMeChanged=${reloadMe} />`;
  return html`${page}<${Toasts} />`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
