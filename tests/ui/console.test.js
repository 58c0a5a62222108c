// The admin console in a real browser against the real binary (issue 8's scenarios), then
// full-page screenshots of every screen. Admins need two-factor sign-in (the default): the
// admin enrols through the API first. Run: AUDIOSTUDIO_BIN=... node --test tests/ui/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { App, ADMIN, DEMO_PASSWORD, FAILING_INTENT, launch, consolePage, signIn, signInWithRecoveryCode, adminPage, nav, openUser, eventually, fakeStripe, freePort, shotsDir } from './harness.js';

let app; let browser; let adminToken; let stripe;
const EVENT_ID = 'evt_console_failed_1';

before(async () => {
  app = await App.start();
  browser = await launch();
  app.admin = await app.enrol(ADMIN.email, ADMIN.password);
  adminToken = app.admin.token;
  await app.claim('demo2@example.com', 'task_x_follow', '@demo_two');
  await app.claim('demo3@example.com', 'task_youtube_subscribe', '@demo_three');
  await app.postEvent(EVENT_ID, 'payment_intent.payment_failed', { id: FAILING_INTENT, object: 'payment_intent' });
  await eventually('the webhook event failed (Stripe unreachable, one attempt)', async () => {
    const e = await app.webhook(adminToken, EVENT_ID);
    return e && e.status === 'failed';
  });
});

after(async () => {
  if (browser) await browser.close();
  if (stripe) stripe.close();
  if (app) await app.stop();
});

test('a wrong password and a non-admin are refused the same way', async () => {
  const page = await consolePage(browser, app);
  for (const [email, password] of [[ADMIN.email, 'not the password'], ['demo1@example.com', DEMO_PASSWORD]]) {
    const [answer] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/admin/api/login')),
      signIn(page, app, email, password),
    ]);
    assert.equal(answer.status(), 401, email);
    await page.getByRole('alert').getByText('Wrong email or password, or not an admin account.').waitFor();
    assert.equal(await page.getByRole('heading', { name: 'Overview' }).count(), 0);
    const cookies = await page.context().cookies();
    assert.deepEqual(cookies.filter((c) => c.name === 'audiostudio_admin'), [], email);
  }
  page.check();
  await page.context().close();
});

test('signing in (password, then a recovery code) shows the overview with the pending claim and the failed webhook', async () => {
  const page = await consolePage(browser, app);
  await signInWithRecoveryCode(page, app, app.admin.recoveryCodes);
  await page.getByRole('heading', { name: 'Needs attention' }).waitFor();
  const claims = page.getByTestId('alert-Pending claims');
  const hooks = page.getByTestId('alert-Failed webhooks');
  assert.match(await claims.innerText(), /\b2\b/);
  assert.match(await hooks.innerText(), /\b1\b/);
  assert.equal(await page.locator('[data-testid=chart] canvas').count() > 0, true);
  const cookie = (await page.context().cookies()).find((c) => c.name === 'audiostudio_admin');
  assert.ok(cookie && cookie.httpOnly && cookie.sameSite === 'Strict' && cookie.path === '/admin' && cookie.secure, JSON.stringify(cookie));
  page.check();
  await page.context().close();
});

test('search a user, grant 500 tokens with a reason: the ledger row and the balance appear', async () => {
  const page = await adminPage(browser, app);
  await openUser(page, 'demo5@example.com');
  const before = Number((await page.getByTestId('balance').innerText()).replace(/,/g, ''));
  await page.getByRole('button', { name: 'Grant tokens…' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel(/Tokens/).fill('500');
  await dialog.getByRole('button', { name: 'Grant' }).click();
  // The reason is required: the browser keeps the dialog open.
  assert.equal(await dialog.isVisible(), true);
  await dialog.getByLabel(/Reason/).fill('support ticket 4711');
  const [request] = await Promise.all([
    page.waitForRequest((r) => r.url().endsWith('/tokens/grant')),
    dialog.getByRole('button', { name: 'Grant' }).click(),
  ]);
  assert.match(request.headers()['idempotency-key'] || '', /^[0-9a-f-]{36}$/);
  assert.equal(request.headers()['content-type'], 'application/json');
  await page.getByRole('cell', { name: 'support ticket 4711' }).waitFor();
  await eventually('the balance shows the grant', async () =>
    Number((await page.getByTestId('balance').innerText()).replace(/,/g, '')) === before + 500);
  const row = page.getByRole('row').filter({ hasText: 'support ticket 4711' });
  assert.match(await row.innerText(), /\+500/);
  page.check();
  await page.context().close();
});

test('disabling a user refuses their API token at once', async () => {
  const token = await app.login('demo4@example.com', DEMO_PASSWORD);
  assert.equal((await app.api('GET', '/api/auth/profile', { token })).status, 200);
  const page = await adminPage(browser, app);
  await openUser(page, 'demo4@example.com');
  await page.getByRole('button', { name: 'Disable…' }).click();
  const dialog = page.getByRole('dialog');
  assert.match(await dialog.getByTestId('effect').innerText(), /signed out of every session/);
  await dialog.getByLabel(/Reason/).fill('chargeback fraud');
  await dialog.getByRole('button', { name: 'Disable' }).click();
  await page.getByRole('button', { name: 'Enable…' }).waitFor();
  const refused = await app.api('GET', '/api/auth/profile', { token });
  assert.ok([401, 403].includes(refused.status), `${refused.status}`);
  page.check();
  await page.context().close();
});

test('approving a claim from the queue grants its reward', async () => {
  const page = await adminPage(browser, app);
  await nav(page, 'Social claims');
  const row = page.getByRole('row').filter({ hasText: 'demo2@example.com' });
  await row.getByRole('button', { name: 'Approve' }).click();
  await page.getByText('Approved: 50 tokens to demo2@example.com').waitFor();
  await eventually('the claim left the pending queue', async () => (await page.getByRole('row').filter({ hasText: 'demo2@example.com' }).count()) === 0);
  const approved = await app.api('GET', '/api/admin/claims?status=approved', { token: adminToken });
  assert.ok(approved.body.claims.some((c) => c.email === 'demo2@example.com'), JSON.stringify(approved.body));
  page.check();
  await page.context().close();
});

test('the claims queue works from the keyboard: r asks for a reason, then rejects', async () => {
  const page = await adminPage(browser, app);
  await nav(page, 'Social claims');
  const row = page.getByRole('row').filter({ hasText: 'demo3@example.com' });
  await row.waitFor();
  assert.match(await row.getAttribute('class'), /selected/);
  await page.keyboard.press('r');
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel(/Reason/).waitFor();
  await page.keyboard.type('the proof link shows no follow');
  await page.keyboard.press('Enter');
  // Enter in a textarea is a new line; the form submits with its button.
  await dialog.getByRole('button', { name: 'Reject' }).click();
  await page.getByText('No claims to review.').waitFor();
  const rejected = await app.api('GET', '/api/admin/claims?status=rejected', { token: adminToken });
  const claim = rejected.body.claims.find((c) => c.email === 'demo3@example.com');
  assert.match(claim && claim.reason, /the proof link shows no follow/);
  page.check();
  await page.context().close();
});

test('the failed webhook, replayed, is processed', async () => {
  stripe = await fakeStripe(app.stripePort);
  const page = await adminPage(browser, app);
  await nav(page, 'Webhooks');
  await page.getByRole('link', { name: EVENT_ID }).click();
  assert.equal(await page.getByTestId('event-status').innerText(), 'failed');
  assert.match(await page.getByTestId('payload').innerText(), new RegExp(FAILING_INTENT));
  await page.getByRole('button', { name: 'Replay…' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Replay' }).click();
  await eventually('the event is processed', async () => {
    await page.getByRole('button', { name: 'Refresh' }).click();
    return (await page.getByTestId('event-status').innerText()) === 'processed';
  });
  page.check();
  await page.context().close();
});

test('verifying the audit chain says intact and shows the head', async () => {
  const page = await adminPage(browser, app);
  await nav(page, 'Audit log');
  await page.getByRole('button', { name: 'Verify chain' }).click();
  const panel = page.getByTestId('verify');
  await panel.getByText('intact').waitFor();
  const head = await app.api('POST', '/api/admin/audit/verify', { token: adminToken, body: {} });
  assert.equal(head.body.intact, true);
  assert.ok(Number(await panel.getByTestId('head-id').innerText()) >= 1);
  assert.match(await panel.innerText(), /[0-9a-f]{64}/);
  page.check();
  await page.context().close();
});

test('analytics renders a chart', async () => {
  const page = await adminPage(browser, app);
  await nav(page, 'Analytics');
  await page.locator('[data-testid=chart] canvas').first().waitFor();
  const size = await page.locator('[data-testid=chart] canvas').first().boundingBox();
  assert.ok(size.width > 200 && size.height > 100, JSON.stringify(size));
  await page.getByRole('button', { name: 'Last 90 days' }).click();
  await page.waitForURL(/from=/);
  await page.locator('[data-testid=chart] canvas').first().waitFor();
  page.check();
  await page.context().close();
});

test('a page on another origin cannot act with the console cookie', async () => {
  const victim = (await app.api('GET', '/api/admin/users?q=demo6%40example.com', { token: adminToken })).body.users[0];
  const target = app.url(`/admin/api/users/${victim.id}/disable`);
  const evilPort = await freePort();
  // Same site as the console (127.0.0.1, another port), so SameSite=Strict still sends the
  // cookie: only the Origin / Sec-Fetch-Site and JSON checks stand in the way.
  const evil = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(`<!doctype html><body><form id="f" method="post" action="${target}" enctype="text/plain" target="sink">
      <input name='{"reason":"x","pad":"' value='"}'></form><iframe name="sink"></iframe>
      <script>
        fetch(${JSON.stringify(target)}, { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'Content-Type': 'text/plain' }, body: '{"reason":"csrf"}' }).catch(() => {});
        fetch(${JSON.stringify(target)}, { method: 'POST', credentials: 'include', headers: { 'Content-Type': 'application/json' }, body: '{"reason":"csrf"}' }).catch(() => {});
        document.getElementById('f').submit();
      </script></body>`);
  });
  await new Promise((ok) => evil.listen(evilPort, '127.0.0.1', ok));
  try {
    const page = await adminPage(browser, app);
    await page.getByRole('heading', { name: 'Needs attention' }).waitFor();
    const attacker = await page.context().newPage();
    const answers = [];
    attacker.on('response', (r) => { if (r.url() === target && r.request().method() === 'POST') answers.push(r.status()); });
    await attacker.goto(`http://127.0.0.1:${evilPort}/`);
    await eventually('the attacks were answered', () => answers.length >= 2);
    await attacker.waitForTimeout(300);
    assert.ok(answers.every((s) => s === 403), JSON.stringify(answers));
    const after = (await app.api('GET', `/api/admin/users/${victim.id}`, { token: adminToken })).body;
    assert.equal(after.status, 'active');
    const audit = (await app.api('GET', `/api/admin/audit?target=${victim.id}`, { token: adminToken })).body;
    assert.ok(!audit.entries.some((e) => /disable/.test(e.action)), JSON.stringify(audit.entries));
    await page.context().close();
  } finally {
    evil.close();
  }
});

/** Every screen, at a desktop and a phone size, light and dark: target/ui-screenshots/<screen>-<w>x<h>-<scheme>.png */
test('screenshots of every screen', async () => {
  const dir = shotsDir();
  const user = (await app.api('GET', '/api/admin/users?q=demo5%40example.com', { token: adminToken })).body.users[0];
  await app.login('demo5@example.com', DEMO_PASSWORD); // a session for the sessions tab
  const first = await adminPage(browser, app);
  await first.getByRole('heading', { name: 'Needs attention' }).waitFor();
  const storageState = await first.context().storageState();
  await first.context().close();
  const screens = [
    ['overview', '#/overview', 'Needs attention'],
    ['users', '#/users', 'Users'],
    ['user-tokens', `#/users/${user.id}?tab=tokens`, 'Ledger'],
    ['user-billing', `#/users/${user.id}?tab=billing`, 'Subscription'],
    ['user-sessions', `#/users/${user.id}?tab=sessions`, 'Sessions'],
    ['user-activity', `#/users/${user.id}?tab=activity`, /^Activity/],
    ['claims', '#/claims?status=', 'Social claims'],
    ['webhooks', '#/webhooks', 'Webhooks'],
    ['webhook-detail', `#/webhooks/${EVENT_ID}`, 'Payload'],
    ['audit', '#/audit', 'Audit log', 'Verify chain'],
    ['checks', '#/checks', 'Money checks', 'Run ledger check'],
    ['analytics', '#/analytics', 'Analytics'],
    ['system', '#/system', 'Effective configuration'],
    ['security', '#/security', 'Two-factor sign-in'],
  ];
  const taken = [];
  for (const [width, height] of [[1280, 800], [390, 844]]) {
    for (const colorScheme of ['light', 'dark']) {
      const suffix = `${width}x${height}-${colorScheme}`;
      const signin = await consolePage(browser, app, { viewport: { width, height }, colorScheme });
      await signin.goto(app.url('/admin/'));
      await signin.getByRole('heading', { name: 'Sign in' }).waitFor();
      await signin.screenshot({ path: join(dir, `signin-${suffix}.png`), fullPage: true });
      taken.push(`signin-${suffix}.png`);
      signin.check();
      await signin.context().close();
      const page = await consolePage(browser, app, { viewport: { width, height }, colorScheme, storageState });
      for (const [name, hash, heading, button] of screens) {
        await page.goto(app.url(`/admin/${hash}`));
        await page.getByRole('heading', { name: heading }).first().waitFor();
        if (button) {
          await page.getByRole('button', { name: button }).click();
          await page.getByText(/intact|clean|mismatch|broken/).first().waitFor();
        }
        await page.waitForLoadState('networkidle');
        await page.screenshot({ path: join(dir, `${name}-${suffix}.png`), fullPage: true });
        taken.push(`${name}-${suffix}.png`);
      }
      page.check();
      await page.context().close();
    }
  }
  assert.equal(taken.length, 4 * (screens.length + 1));
});
