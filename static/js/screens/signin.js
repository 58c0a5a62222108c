// Sign-in: the same login path as the API (lockout, limits, audit), admins only. An
// account with two-factor sign-in gets a second step: the authenticator's code (or a
// recovery code) completes the sign-in at `login/verify`.
import { useState } from '../../vendor/htm-preact-standalone.module.js';
import { post } from '../api.js';
import { html, Problem } from '../ui.js';

const WRONG_PASSWORD = 'Wrong email or password, or not an admin account.';
const EXPIRED = 'The sign-in took too long or was ended: enter your password again.';

export function SignIn({ onSignedIn }) {
  // `{ token, until }` once the password was right and a second factor is due.
  const [challenge, setChallenge] = useState(null);
  const [notice, setNotice] = useState(null);
  const expired = () => { setChallenge(null); setNotice(EXPIRED); };
  return html`<main class="signin">
    <div class="brand"><img src="/admin/favicon.svg" alt="" />audiostudio admin</div>
    ${challenge
      ? html`<${SecondFactor} challenge=${challenge} onSignedIn=${onSignedIn} onExpired=${expired} onBack=${() => setChallenge(null)} />`
      : html`<${Password} notice=${notice} onSignedIn=${onSignedIn} onChallenge=${(c) => { setNotice(null); setChallenge(c); }} />`}
  </main>`;
}

function Password({ notice, onSignedIn, onChallenge }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    setBusy(true); setError(null);
    try {
      const answer = await post('login', { email: form.get('email'), password: form.get('password') });
      if (answer && answer.mfa_required) {
        onChallenge({ token: answer.mfa_token, until: Date.now() + 1000 * (answer.expires_in || 300) });
      } else {
        onSignedIn(answer);
      }
    } catch (err) {
      setError(err); setBusy(false);
    }
  };
  return html`<form class="panel form" onSubmit=${submit} aria-labelledby="signin-title">
    <h1 id="signin-title">Sign in</h1>
    ${notice ? html`<div class="error" role="alert">${notice}</div>` : ''}
    <label>Admin email<input name="email" type="email" autocomplete="username" required autofocus /></label>
    <label>Password<input name="password" type="password" autocomplete="current-password" required /></label>
    ${error ? html`<${Problem} error=${error.status === 401 ? { message: WRONG_PASSWORD } : error} />` : ''}
    <button type="submit" class="primary" disabled=${busy}>${busy ? 'Signing in…' : 'Sign in'}</button>
    <p class="muted small">Only admin accounts can sign in. Sessions end after a period of inactivity.</p>
  </form>`;
}

/** What to tell the admin about a refused code; `null` when the challenge itself is gone. */
function refusal(err, recovery) {
  const detail = String((err.problem && err.problem.detail) || '');
  if (err.status === 401 && /challenge|disabled/.test(detail)) return null;
  if (err.status === 401) {
    return { message: recovery
      ? 'That recovery code is wrong or was already used.'
      : 'That code is wrong or was already used: wait for the next code and try again.' };
  }
  return err;
}

function SecondFactor({ challenge, onSignedIn, onExpired, onBack }) {
  const [recovery, setRecovery] = useState(false);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    if (Date.now() > challenge.until) { onExpired(); return; }
    const value = String(new FormData(e.currentTarget).get('code') || '');
    const body = recovery
      ? { mfa_token: challenge.token, recovery_code: value.trim() }
      : { mfa_token: challenge.token, code: value.replace(/\s+/g, '') };
    setBusy(true); setError(null);
    try {
      onSignedIn(await post('login/verify', body));
    } catch (err) {
      const shown = refusal(err, recovery);
      if (!shown) { onExpired(); return; }
      setError(shown); setBusy(false);
      const input = e.target.querySelector('input[name=code]');
      if (input) { input.select(); input.focus(); }
    }
  };
  const toggle = () => { setRecovery(!recovery); setError(null); };
  return html`<form class="panel form" onSubmit=${submit} aria-labelledby="mfa-title">
    <h1 id="mfa-title">Two-factor sign-in</h1>
    ${recovery
      ? html`<p class="muted small">Enter one of the recovery codes you saved when you turned on two-factor sign-in. Each works once.</p>
        <label key="recovery">Recovery code<input name="code" autocomplete="off" autocapitalize="off" spellcheck="false" required autofocus /></label>`
      : html`<p class="muted small">Enter the 6-digit code your authenticator app shows for audiostudio.</p>
        <label key="totp">Authentication code<input name="code" class="otp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" maxlength="7" title="6 digits" required autofocus /></label>`}
    <${Problem} error=${error} />
    <button type="submit" class="primary" disabled=${busy}>${busy ? 'Checking…' : 'Verify'}</button>
    <div class="row small">
      <button type="button" class="link" onClick=${toggle}>${recovery ? 'Use the authenticator code' : 'Use a recovery code'}</button>
      <span class="spacer"></span>
      <button type="button" class="link" onClick=${onBack}>Back</button>
    </div>
  </form>`;
}
