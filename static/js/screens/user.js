// User detail: profile, the operator's actions, and tabs (tokens, billing, sessions, activity).
import { useState } from '../../vendor/htm-preact-standalone.module.js';
import { get, post } from '../api.js';
import { html, useLoad, Loading, KV, Badge, Time, CopyId, ExtLink, useDialog, toast, link, Problem } from '../ui.js';
import { num, when } from '../format.js';
import { TokensTab } from './user_tokens.js';
import { BillingTab, SessionsTab, ActivityTab } from './user_tabs.js';

const TABS = [['tokens', 'Tokens'], ['billing', 'Billing'], ['sessions', 'Sessions'], ['activity', 'Activity']];

export function UserDetail({ route, me }) {
  const id = route.path[1];
  const [version, setVersion] = useState(0);
  const changed = () => setVersion((v) => v + 1);
  const state = useLoad(() => get(`users/${encodeURIComponent(id)}`), [id, version]);
  const tab = TABS.some(([k]) => k === route.query.get('tab')) ? route.query.get('tab') : 'tokens';
  const Tab = { tokens: TokensTab, billing: BillingTab, sessions: SessionsTab, activity: ActivityTab }[tab];
  return html`<p class="small"><a href="#/users">← Users</a></p>
    <${Loading} state=${state}>${state.data && html`
      <${Profile} u=${state.data} me=${me} onChanged=${changed} />
      <div class="tabs" role="tablist">${TABS.map(([k, label]) => html`<a key=${k} role="tab" href=${`${link('users', id)}?tab=${k}`} aria-selected=${k === tab ? 'true' : 'false'}>${label}</a>`)}</div>
      <${Tab} key=${tab} id=${id} user=${state.data} version=${version} onChanged=${changed} route=${route} />`}
    <//>`;
}

/** `on: authenticator app since …, 9 recovery codes left`, or `off`. */
function twoFactor(mfa) {
  if (!mfa || !mfa.enabled) return 'off';
  const codes = mfa.recovery_codes_left === 1 ? '1 recovery code left' : `${num(mfa.recovery_codes_left)} recovery codes left`;
  return `on: authenticator app since ${when(mfa.enrolled_at)}, ${codes}`;
}

function Profile({ u, me, onChanged }) {
  const [dialog, open] = useDialog();
  const [error, setError] = useState(null);
  const path = (action) => `users/${encodeURIComponent(u.id)}/${action}`;
  const now = (action, message) => async () => {
    setError(null);
    try { await post(path(action), {}); toast(message); onChanged(); } catch (e) { setError(e); }
  };
  const self = me.user.id === u.id;
  const otherRole = u.role === 'admin' ? 'user' : 'admin';
  const lockout = u.lockout || {};
  const actions = [
    u.status === 'active'
      ? html`<button type="button" class="danger" onClick=${() => open({
        title: `Disable ${u.email}`, danger: true, submitLabel: 'Disable',
        effect: `${u.email} is signed out of every session at once (API and console), their access tokens are refused from now on, and they cannot sign in until enabled again. Their tokens and history are kept.`,
        fields: [{ name: 'reason', label: 'Reason', type: 'textarea', required: true }],
        onSubmit: (v) => post(path('disable'), { reason: v.reason }), onDone: onChanged,
      })}>Disable…</button>`
      : html`<button type="button" onClick=${() => open({
        title: `Enable ${u.email}`, submitLabel: 'Enable',
        effect: `${u.email} can sign in again.`,
        fields: [{ name: 'reason', label: 'Reason (optional)', type: 'textarea' }],
        onSubmit: (v) => post(path('enable'), v.reason ? { reason: v.reason } : {}), onDone: onChanged,
      })}>Enable…</button>`,
    html`<button type="button" disabled=${self} title=${self ? 'You cannot change your own role' : ''} onClick=${() => open({
      title: `Make ${u.email} ${otherRole === 'admin' ? 'an admin' : 'a user'}`, submitLabel: `Make ${otherRole}`, danger: otherRole === 'admin',
      effect: otherRole === 'admin'
        ? `${u.email} gets full access to this console and the admin API: users, tokens, refunds and the audit log.`
        : `${u.email} loses admin access at once: their console sessions end and the admin API refuses them.`,
      onSubmit: () => post(path('role'), { role: otherRole }), onDone: onChanged,
    })}>Change role…</button>`,
    u.locked ? html`<button type="button" onClick=${now('unlock', 'Unlocked')}>Unlock</button>` : null,
    !u.email_verified ? html`<button type="button" onClick=${now('verify-email', 'Marked verified')}>Mark verified</button>` : null,
    !u.email_verified ? html`<button type="button" onClick=${now('resend-verification', 'Verification email queued')}>Resend verification</button>` : null,
    html`<button type="button" onClick=${() => open({
      title: 'Send a password reset', submitLabel: 'Send',
      effect: `${u.email} gets an email with a reset link. Their password stays as it is until they use it.`,
      onSubmit: () => post(path('password-reset'), {}), onDone: () => toast('Password reset email queued'),
    })}>Send password reset…</button>`,
    u.mfa_enabled ? html`<button type="button" class="danger" disabled=${self} title=${self ? 'You cannot reset your own two-factor sign-in' : ''} onClick=${() => open({
      title: `Reset two-factor sign-in of ${u.email}`, submitLabel: 'Reset two-factor', danger: true,
      effect: `${u.email}'s authenticator app and recovery codes stop working: they sign in with the password alone until they set up two-factor sign-in again${u.role === 'admin' ? ' (an admin is asked to at their next console sign-in)' : ''}. They get an email saying so; their sessions stay signed in. Only do this once you are sure the request comes from them.`,
      onSubmit: () => post(path('mfa-reset'), {}), onDone: () => { toast('Two-factor sign-in reset'); onChanged(); },
    })}>Reset two-factor…</button>` : null,
    html`<button type="button" onClick=${() => open({
      title: 'Revoke every session', submitLabel: 'Revoke all', danger: true,
      effect: `${u.email} is signed out everywhere; they can sign in again.`,
      onSubmit: async () => { const r = await post(path('sessions/revoke-all'), {}); toast(`Revoked ${num(r && r.revoked)} sessions`); },
      onDone: onChanged,
    })}>Revoke all sessions…</button>`,
  ];
  return html`<section class="panel">
    <div class="page-head">
      <div><h1>${u.email}</h1>
        <div class="row"><${Badge} value=${u.role} /><${Badge} value=${u.status} />
          <${Badge} value=${u.email_verified ? 'verified' : 'unverified'} tone=${u.email_verified ? 'ok' : 'warn'} />
          <${Badge} value=${u.mfa_enabled ? '2FA on' : '2FA off'} tone=${u.mfa_enabled ? 'ok' : ''} />
          ${u.locked ? html`<${Badge} value="locked" />` : ''}</div></div>
      <div class="card"><div class="label">Balance</div><div class="value" data-testid="balance">${num(u.balance)}</div></div>
    </div>
    <div class="two">
      <${KV} items=${[
        ['Id', html`<${CopyId} id=${u.id} label="user id" />`],
        ['Display name', u.display_name],
        ['Avatar', u.avatar_url ? html`<${ExtLink} href=${u.avatar_url} />` : null],
        ['Plan', u.plan ? `${u.plan.name || u.plan.plan_id} (${u.plan.status})` : 'none'],
      ]} />
      <${KV} items=${[
        ['Created', html`<${Time} at=${u.created_at} />`],
        ['Last seen', html`<${Time} at=${u.last_seen_at} />`],
        ['Two-factor sign-in', html`<span data-testid="mfa-state">${twoFactor(u.mfa)}</span>`],
        ['Failed sign-ins', num(lockout.failed_attempts)],
        ['Locked until', html`<${Time} at=${lockout.locked_until} />`],
      ]} />
    </div>
    <h2>Actions</h2>
    <div class="actions">${actions.filter(Boolean)}</div>
    <${Problem} error=${error} />
    ${dialog}
  </section>`;
}

