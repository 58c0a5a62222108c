// Two-factor sign-in in the console (issue 13), in a real browser against the real binary
// with admins needing a second factor (the default): enrolment read off the page (the
// test computes the codes, RFC 6238), the code step of the sign-in, its refusals, and an
// admin resetting a user's two-factor sign-in; screenshots of each new screen.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  App, ADMIN, NEW_ADMIN, FRESH_ADMIN, DEMO_PASSWORD, launch, consolePage, signIn, adminPage, openUser,
  totp, totpStep, nextStepAfter, eventually, shotsDir,
} from './harness.js';

const RESET_USER = 'demo7@example.com';
const VARIANTS = [[1280, 800, 'light'], [1280, 800, 'dark'], [390, 844, 'light'], [390, 844, 'dark']];

let app; let browser;

before(async () => {
  app = await App.start();
  browser = await launch();
  app.admin = await app.enrol(ADMIN.email, ADMIN.password);
  await app.enrol(RESET_USER, DEMO_PASSWORD);
});

after(async () => {
  if (browser) await browser.close();
  if (app) await app.stop();
});

/** Screenshots of `page` as it is, in every size and colour scheme (a modal: the viewport only). */
async function shootAll(page, name, { fullPage = true } = {}) {
  for (const [width, height, colorScheme] of VARIANTS) {
    await page.setViewportSize({ width, height });
    await page.emulateMedia({ colorScheme });
    await page.screenshot({ path: join(shotsDir(), `${name}-${width}x${height}-${colorScheme}.png`), fullPage });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.emulateMedia({ colorScheme: 'light' });
}

/** A code of `secret` that is not the one of this step nor its neighbours. */
function wrongCode(secret) {
  const now = Date.now();
  const near = [-30_000, 0, 30_000, 60_000].map((d) => totp(secret, now + d));
  for (let n = 0; ; n += 1) {
    const candidate = String((Number(near[1]) + 1 + n) % 1_000_000).padStart(6, '0');
    if (!near.includes(candidate)) return candidate;
  }
}

test('an admin without two-factor sign-in enrols in the console, then signs in with password and code', async () => {
  const page = await consolePage(browser, app);
  await signIn(page, app, NEW_ADMIN.email, NEW_ADMIN.password);
  // The password alone opens only the enrolment.
  await page.getByRole('heading', { name: 'Two-factor sign-in is required' }).waitFor();
  assert.equal(await page.getByRole('navigation', { name: 'Screens' }).count(), 0);
  await page.getByLabel('Password').fill(NEW_ADMIN.password);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { name: 'Scan the code with your authenticator app' }).waitFor();
  // The server's QR code renders as an image under the console's policy.
  const qr = page.getByRole('img', { name: /QR code/ });
  await qr.waitFor();
  assert.ok(await qr.evaluate((img) => img.complete && img.naturalWidth > 0), 'the QR code did not render');
  const secret = (await page.getByTestId('totp-secret').innerText()).replace(/\s+/g, '');
  assert.match(secret, /^[A-Z2-7]{16,}$/);

  await page.getByLabel('Code from the app').fill(wrongCode(secret));
  await page.getByRole('button', { name: 'Turn on' }).click();
  await page.getByRole('alert').getByText(/not the current code/).waitFor();
  const confirmedAt = Date.now();
  await page.getByLabel('Code from the app').fill(totp(secret, confirmedAt));
  await page.getByRole('button', { name: 'Turn on' }).click();
  await page.getByRole('heading', { name: 'Save your recovery codes' }).waitFor();
  const codes = await page.getByTestId('recovery-codes').getByRole('listitem').allInnerTexts();
  assert.equal(codes.length, 10, JSON.stringify(codes));
  assert.equal(new Set(codes).size, 10);
  await shootAll(page, 'enrol-codes');
  const done = page.getByRole('button', { name: 'Continue to the console' });
  assert.equal(await done.isDisabled(), true, 'continuing before saying the codes are saved');
  await page.getByLabel('I have saved these codes').check();
  await done.click();
  await page.getByRole('heading', { name: 'Needs attention' }).waitFor();

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await signIn(page, app, NEW_ADMIN.email, NEW_ADMIN.password);
  await page.getByRole('heading', { name: 'Two-factor sign-in', exact: true }).waitFor();
  assert.equal((await page.context().cookies()).filter((c) => c.name === 'audiostudio_admin').length, 0,
    'a cookie before the second factor');
  await page.getByLabel('Authentication code').fill(wrongCode(secret));
  await page.getByRole('button', { name: 'Verify' }).click();
  await page.getByRole('alert').getByText('That code is wrong or was already used', { exact: false }).waitFor();
  await shootAll(page, 'signin-code-wrong');
  // The code that turned it on was used: the next one comes with the next 30 s step.
  await nextStepAfter(totpStep(confirmedAt));
  await page.getByLabel('Authentication code').fill(totp(secret));
  await page.getByRole('button', { name: 'Verify' }).click();
  await page.getByRole('heading', { name: 'Needs attention' }).waitFor();
  const me = await page.evaluate(async () => (await fetch('/admin/api/me')).json());
  assert.deepEqual(me.mfa, { enabled: true, factor: 'totp', enrolment_required: false });
  page.check();
  await page.context().close();
});

test('a sign-in challenge that has expired sends the admin back to the password step', async () => {
  const page = await consolePage(browser, app);
  // The server answers as for an expired challenge; the test only swaps the token.
  await page.route('**/admin/api/login/verify', (route) => {
    const body = JSON.parse(route.request().postData());
    route.continue({ postData: JSON.stringify({ ...body, mfa_token: 'an-expired-challenge' }) });
  });
  await signIn(page, app);
  await page.getByRole('heading', { name: 'Two-factor sign-in', exact: true }).waitFor();
  await page.getByLabel('Authentication code').fill('123456');
  const [answer] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/admin/api/login/verify')),
    page.getByRole('button', { name: 'Verify' }).click(),
  ]);
  assert.equal(answer.status(), 401);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByRole('alert').getByText('enter your password again', { exact: false }).waitFor();
  page.check();
  await page.context().close();
});

test('an admin resets a user\'s two-factor sign-in from the user page', async () => {
  const page = await adminPage(browser, app);
  await openUser(page, RESET_USER);
  assert.match(await page.getByTestId('mfa-state').innerText(), /^on: authenticator app since .*, 10 recovery codes left$/);
  await page.waitForLoadState('networkidle');
  await shootAll(page, 'user-mfa-on');
  await page.getByRole('button', { name: 'Reset two-factor…' }).click();
  const dialog = page.getByRole('dialog');
  assert.match(await dialog.getByTestId('effect').innerText(), /sign in with the password alone/);
  await shootAll(page, 'user-mfa-reset', { fullPage: false });
  await dialog.getByRole('button', { name: 'Reset two-factor' }).click();
  await page.getByText('Two-factor sign-in reset').waitFor();
  await eventually('the user page shows two-factor sign-in off', async () => (await page.getByTestId('mfa-state').innerText()) === 'off');
  assert.equal(await page.getByRole('button', { name: 'Reset two-factor…' }).count(), 0);

  const login = await app.api('POST', '/api/auth/login', { body: { email: RESET_USER, password: DEMO_PASSWORD } });
  assert.equal(typeof login.body.access_token, 'string', JSON.stringify(login.body));
  const user = (await app.api('GET', `/api/admin/users?q=${encodeURIComponent(RESET_USER)}`, { token: app.admin.token })).body.users[0];
  const audit = (await app.api('GET', `/api/admin/audit?target=${user.id}&action=auth.mfa_reset`, { token: app.admin.token })).body;
  assert.equal(audit.entries.length, 1, JSON.stringify(audit));
  assert.equal(audit.entries[0].actor_email, ADMIN.email);
  page.check();
  await page.context().close();
});

test('screenshots of the sign-in code step and the enrolment', async () => {
  const page = await consolePage(browser, app);
  await signIn(page, app);
  await page.getByRole('heading', { name: 'Two-factor sign-in', exact: true }).waitFor();
  await shootAll(page, 'signin-code');
  await page.getByRole('button', { name: 'Use a recovery code' }).click();
  await page.getByLabel('Recovery code').waitFor();
  await shootAll(page, 'signin-recovery');
  await signIn(page, app, FRESH_ADMIN.email, FRESH_ADMIN.password);
  await page.getByRole('heading', { name: 'Two-factor sign-in is required' }).waitFor();
  await shootAll(page, 'enrol-required');
  await page.getByLabel('Password').fill(FRESH_ADMIN.password);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('img', { name: /QR code/ }).waitFor();
  await shootAll(page, 'enrol-scan');
  page.check();
  await page.context().close();
});
