// Sign-in: the same login path as the API (lockout, limits, audit), admins only.
import { useState } from '../../vendor/htm-preact-standalone.module.js';
import { post } from '../api.js';
import { html, Problem } from '../ui.js';

export function SignIn({ onSignedIn }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    setBusy(true); setError(null);
    try {
      onSignedIn(await post('login', { email: form.get('email'), password: form.get('password') }));
    } catch (err) {
      setError(err); setBusy(false);
    }
  };
  return html`<main class="signin">
    <div class="brand"><img src="/admin/favicon.svg" alt="" />audiostudio admin</div>
    <form class="panel form" onSubmit=${submit} aria-labelledby="signin-title">
      <h1 id="signin-title">Sign in</h1>
      <label>Admin email<input name="email" type="email" autocomplete="username" required autofocus /></label>
      <label>Password<input name="password" type="password" autocomplete="current-password" required /></label>
      ${error ? html`<${Problem} error=${error.status === 401 ? { message: 'Wrong email or password, or not an admin account.' } : error} />` : ''}
      <button type="submit" class="primary" disabled=${busy}>${busy ? 'Signing in…' : 'Sign in'}</button>
      <p class="muted small">Only admin accounts can sign in. Sessions end after a period of inactivity.</p>
    </form>
  </main>`;
}
