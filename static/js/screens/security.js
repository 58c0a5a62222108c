// Two-factor sign-in of the signed-in admin: the enrolment (password, QR code and secret,
// a first code, then the recovery codes shown once) and the Security screen with its state.
import { useState } from '../../vendor/htm-preact-standalone.module.js';
import { get, post } from '../api.js';
import { html, useLoad, KV, Badge, Time, Problem, copyText } from '../ui.js';
import { num } from '../format.js';

/** The server's QR code (an SVG document) as an image: never parsed into the page. */
const qrSource = (svg) => `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;

/** `ABCD EFGH …`: the base32 secret in groups of four, easier to type. */
const grouped = (secret) => String(secret).replace(/(.{4})/g, '$1 ').trim();

const FACTORS = { password: 'password only', totp: 'password and authenticator code', recovery_code: 'password and a recovery code' };

/**
 * Enrolment in three steps; `onDone()` once the admin has confirmed a code and said the
 * recovery codes are saved (until then the codes stay on screen).
 */
export function Enrol({ onDone }) {
  const [setup, setSetup] = useState(null);
  const [codes, setCodes] = useState(null);
  if (codes) return html`<${RecoveryCodes} codes=${codes} onDone=${onDone} />`;
  if (setup) return html`<${Scan} setup=${setup} onConfirmed=${setCodes} onRestart=${() => setSetup(null)} />`;
  return html`<${AskPassword} onSetup=${setSetup} />`;
}

/** A form that posts and shows the refusal in place. */
function useSubmit(action) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    setBusy(true); setError(null);
    try {
      await action(new FormData(form));
    } catch (err) {
      setError(err); setBusy(false);
      const input = form.querySelector('input');
      if (input) { input.select(); input.focus(); }
    }
  };
  return { error, busy, submit };
}

function AskPassword({ onSetup }) {
  const { error, busy, submit } = useSubmit(async (form) => {
    onSetup(await post('mfa/setup', { password: form.get('password') }));
  });
  return html`<form class="form" onSubmit=${submit} aria-labelledby="enrol-title">
    <h2 id="enrol-title">Turn on two-factor sign-in</h2>
    <p class="muted">Signing in will take your password and a 6-digit code from an authenticator app
      (such as Aegis, 2FAS, Google Authenticator or 1Password). Enter your password again to begin.</p>
    <label>Password<input name="password" type="password" autocomplete="current-password" required autofocus /></label>
    <${Problem} error=${error} />
    <div><button type="submit" class="primary" disabled=${busy}>${busy ? 'Checking…' : 'Continue'}</button></div>
  </form>`;
}

function Scan({ setup, onConfirmed, onRestart }) {
  const { error, busy, submit } = useSubmit(async (form) => {
    const code = String(form.get('code') || '').replace(/\s+/g, '');
    const answer = await post('mfa/confirm', { code });
    onConfirmed(answer.recovery_codes || []);
  });
  return html`<form class="form" onSubmit=${submit} aria-labelledby="scan-title">
    <h2 id="scan-title">Scan the code with your authenticator app</h2>
    <div class="enrol">
      <img class="qr" src=${qrSource(setup.qr_svg)} width="240" height="240" alt="QR code of the two-factor secret for your authenticator app" />
      <div class="form">
        <p class="muted small">Cannot scan it? Add an account by hand with this key (time-based, 6 digits, 30 seconds):</p>
        <div class="row"><code class="secret" data-testid="totp-secret">${grouped(setup.secret)}</code>
          <button type="button" class="small" onClick=${() => copyText(setup.secret, 'the key')}>copy</button></div>
        <p class="muted small">The key is shown only now. Keep it secret: anyone with it can make your codes.</p>
        <label>Code from the app<input name="code" class="otp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" maxlength="7" title="6 digits" required autofocus /></label>
        <${Problem} error=${error} />
        <div class="row"><button type="submit" class="primary" disabled=${busy}>${busy ? 'Checking…' : 'Turn on'}</button>
          <button type="button" class="link" onClick=${onRestart}>Start again</button></div>
      </div>
    </div>
  </form>`;
}

function RecoveryCodes({ codes, onDone }) {
  const [saved, setSaved] = useState(false);
  const textFile = `audiostudio recovery codes (each works once)\n\n${codes.join('\n')}\n`;
  return html`<div class="form" aria-labelledby="codes-title">
    <h2 id="codes-title">Save your recovery codes</h2>
    <div class="notice" role="status">Two-factor sign-in is on.</div>
    <p class="muted">If you lose your authenticator app, each of these codes signs you in once instead of a
      code. They are shown only now: copy or download them and keep them somewhere safe.</p>
    <ol class="codes" data-testid="recovery-codes">${codes.map((c) => html`<li key=${c}><code>${c}</code></li>`)}</ol>
    <div class="row">
      <button type="button" onClick=${() => copyText(codes.join('\n'), 'the recovery codes')}>Copy</button>
      <a class="button" href=${`data:text/plain;charset=utf-8,${encodeURIComponent(textFile)}`} download="audiostudio-recovery-codes.txt">Download</a>
    </div>
    <label class="check"><input type="checkbox" checked=${saved} onChange=${(e) => setSaved(e.currentTarget.checked)} />I have saved these codes</label>
    <div><button type="button" class="primary" disabled=${!saved} onClick=${onDone}>Continue to the console</button></div>
  </div>`;
}

/** The page an admin sees, and only this, while admins need two-factor sign-in and theirs is off. */
export function EnrolRequired({ me, onDone, onSignOut }) {
  return html`<main class="signin wide">
    <div class="brand"><img src="/admin/favicon.svg" alt="" />audiostudio admin</div>
    <section class="panel">
      <h1>Two-factor sign-in is required</h1>
      <p class="muted small">Admins of this server sign in with a second factor. Set it up for <strong>${me.user.email}</strong> to use the console.</p>
      <${Enrol} onDone=${onDone} />
    </section>
    <p class="small"><button type="button" class="link" onClick=${onSignOut}>Sign out</button></p>
  </main>`;
}

/** The Security screen: the admin's own two-factor state, and enrolment when it is off. */
export function Security({ me, onMeChanged }) {
  const mfa = me.mfa || {};
  const [enrolling, setEnrolling] = useState(false);
  return html`<div class="page-head"><h1>Security</h1></div>
    <section class="panel">
      <h2>Two-factor sign-in</h2>
      ${mfa.enabled
        ? html`<${Enrolled} me=${me} />`
        : enrolling
          ? html`<${Enrol} onDone=${onMeChanged} />`
          : html`<${KV} items=${[
            ['State', html`<${Badge} value="off" tone="warn" />`],
            ['This session', FACTORS[mfa.factor] || mfa.factor],
          ]} />
            <p class="muted">Your account signs in with the password alone.</p>
            <div><button type="button" class="primary" onClick=${() => setEnrolling(true)}>Turn on two-factor sign-in…</button></div>`}
    </section>`;
}

function Enrolled({ me }) {
  const state = useLoad(() => get(`users/${encodeURIComponent(me.user.id)}`), [me.user.id]);
  const detail = (state.data && state.data.mfa) || {};
  return html`<${KV} items=${[
      ['State', html`<${Badge} value="on" tone="ok" />`],
      ['Factor', 'authenticator app (TOTP)'],
      ['Turned on', html`<${Time} at=${detail.enrolled_at} />`],
      ['Recovery codes left', num(detail.recovery_codes_left)],
      ['This session', FACTORS[me.mfa.factor] || me.mfa.factor],
    ]} />
    ${state.error ? html`<${Problem} error=${state.error} />` : ''}
    ${detail.recovery_codes_left === 0 ? html`<div class="error" role="alert">No recovery codes are left: if you lose your authenticator app, another admin has to reset your two-factor sign-in.</div>` : ''}
    <p class="muted small">To move to a new phone, or if you lost the app and your codes, another admin can
      reset your two-factor sign-in from your user page (or with <code>audiostudio users mfa-reset</code> on the
      server); you then set it up again at your next sign-in.</p>`;
}
