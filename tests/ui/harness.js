// The browser tests' fixture: the real binary on a temp data dir with its default settings
// (admins need two-factor sign-in), demo data, admins made with the CLI, a TOTP computed
// here (RFC 6238), Debian's chromium through playwright-core.
import { spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as netServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(here, '../..');
export const BIN = process.env.AUDIOSTUDIO_BIN || join(ROOT, 'target/debug/audiostudio');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const SHOTS = process.env.UI_SCREENSHOT_DIR || join(ROOT, 'target/ui-screenshots');
export const ADMIN = { email: 'admin@example.com', password: 'violet kettle 9 tambourine' };
/** An admin without two-factor sign-in, who enrols in the console. */
export const NEW_ADMIN = { email: 'new-admin@example.com', password: 'amber lantern 4 xylophone' };
/** An admin who starts enrolling for the screenshots and never finishes. */
export const FRESH_ADMIN = { email: 'fresh-admin@example.com', password: 'cobalt meadow 7 harmonica' };
export const DEMO_PASSWORD = 'demo password 2026';
const WEBHOOK_SECRET = 'whsec_console_tests';
export const FAILING_INTENT = 'pi_console_failed_1';
const TIMEOUT_MS = 30_000;

/** The flags that work on these machines (ADMIN_UI.md); never a browser download. */
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export async function freePort() {
  return new Promise((ok, fail) => {
    const s = netServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)); });
    s.on('error', fail);
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it yields a truthy value, failing with `what` after 30 s. */
export async function eventually(what, probe) {
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${TIMEOUT_MS} ms`);
    await sleep(150);
  }
}

function cli(env, dataDir, args, input) {
  const out = spawnSync(BIN, ['--data-dir', dataDir, ...args], { env, input, encoding: 'utf8', timeout: 120_000 });
  if (out.status !== 0) throw new Error(`audiostudio ${args.join(' ')}: ${out.status}\n${out.stdout}\n${out.stderr}`);
  return out.stdout;
}

/** A fake Stripe on `port` that knows one payment intent (a failed token-pack payment). */
export function fakeStripe(port) {
  const server = createServer((req, res) => {
    const ok = req.url.startsWith(`/v1/payment_intents/${FAILING_INTENT}`);
    res.writeHead(ok ? 200 : 404, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(ok
      ? { id: FAILING_INTENT, object: 'payment_intent', amount: 500, currency: 'usd', status: 'requires_payment_method', metadata: { pack_id: 'pack_small' } }
      : { error: { type: 'invalid_request_error', message: 'No such object' } }));
  });
  return new Promise((ok) => server.listen(port, '127.0.0.1', () => ok(server)));
}

/** The running binary and what the tests need to reach it. */
export class App {
  static async start() {
    if (!existsSync(BIN)) throw new Error(`no audiostudio binary at ${BIN}: build it or set AUDIOSTUDIO_BIN`);
    const dir = mkdtempSync(join(tmpdir(), 'audiostudio-ui-'));
    const dataDir = join(dir, 'data');
    const port = await freePort();
    const stripePort = await freePort();
    const env = {
      PATH: process.env.PATH, HOME: dir,
      ROCKET_PORT: String(port), ROCKET_ADDRESS: '127.0.0.1',
      ROCKET_ARGON2_MEMORY_KIB: '1024', ROCKET_ARGON2_ITERATIONS: '1',
      ROCKET_WEBHOOK_MAX_ATTEMPTS: '1',
      ROCKET_RATE_LIMIT_LOGIN_PER_MINUTE: '1000', ROCKET_RATE_LIMIT_GLOBAL_PER_MINUTE: '100000',
      ROCKET_RATE_LIMIT_TOKEN_MUTATIONS_PER_MINUTE: '10000', ROCKET_RATE_LIMIT_PUBLIC_PER_MINUTE: '10000',
      STRIPE_SECRET_KEY: 'sk_test_console_tests', STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      // Nobody listens here until the replay test starts the fake: the first attempt fails.
      STRIPE_API_BASE: `http://127.0.0.1:${stripePort}`,
    };
    cli(env, dataDir, ['seed', '--demo', '--demo-users', '12']);
    for (const admin of [ADMIN, NEW_ADMIN, FRESH_ADMIN]) {
      cli(env, dataDir, ['users', 'create', '--email', admin.email, '--admin'], `${admin.password}\n`);
    }
    const child = spawn(BIN, ['--data-dir', dataDir, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d) => { log += d; });
    child.stderr.on('data', (d) => { log += d; });
    const app = new App({ dir, port, stripePort, child, logText: () => log });
    await eventually(`the server on ${port} healthy\n${log}`, async () => {
      if (child.exitCode !== null) throw new Error(`the server exited: ${child.exitCode}\n${log}`);
      try { return (await fetch(app.url('/health'))).ok; } catch { return false; }
    });
    return app;
  }

  constructor(fields) { Object.assign(this, fields); this.base = `http://127.0.0.1:${fields.port}`; }

  url(path) { return `${this.base}${path}`; }

  async stop() {
    if (this.child.exitCode === null) {
      this.child.kill('SIGTERM');
      await eventually('the server stopped', () => this.child.exitCode !== null).catch(() => this.child.kill('SIGKILL'));
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A JSON call to the API with an optional Bearer token: `{ status, body }`. */
  async api(method, path, { token, body, headers = {} } = {}) {
    const res = await fetch(this.url(path), {
      method,
      headers: { ...(body ? { 'Content-Type': 'application/json' } : {}), ...(token ? { Authorization: `Bearer ${token}` } : {}), ...headers },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = text; }
    return { status: res.status, body: json };
  }

  async login(email, password) {
    const r = await this.api('POST', '/api/auth/login', { body: { email, password } });
    if (r.status !== 200) throw new Error(`login ${email}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.access_token;
  }

  /**
   * Turns on two-factor sign-in for `email` through the API (setup, then confirm with the
   * current code): `{ token, secret, step, recoveryCodes }`, where `token`'s session has
   * proved the code (so an admin's may use the admin API) and `step` is the code's step.
   */
  async enrol(email, password) {
    const token = await this.login(email, password);
    const setup = await this.api('POST', '/api/auth/mfa/totp/setup', { token, body: { password } });
    if (setup.status !== 200) throw new Error(`mfa setup ${email}: ${setup.status} ${JSON.stringify(setup.body)}`);
    const { secret } = setup.body;
    const at = Date.now();
    const confirm = await this.api('POST', '/api/auth/mfa/totp/confirm', { token, body: { code: totp(secret, at) } });
    if (confirm.status !== 200) throw new Error(`mfa confirm ${email}: ${confirm.status} ${JSON.stringify(confirm.body)}`);
    return { token, secret, step: totpStep(at), recoveryCodes: confirm.body.recovery_codes };
  }

  /** A demo user's claim of a seeded task, waiting for review. */
  async claim(email, task, handle) {
    const token = await this.login(email, DEMO_PASSWORD);
    const r = await this.api('POST', '/api/tokens/social', {
      token,
      headers: { 'Idempotency-Key': `claim-${email}-${task}` },
      body: { task_id: task, proof_url: `https://example.com/${handle}/proof`, handle },
    });
    if (r.status >= 300) throw new Error(`claim: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.claim;
  }

  /** A signed Stripe event, as Stripe would post it. */
  async postEvent(id, type, object) {
    const body = JSON.stringify({ id, object: 'event', type, livemode: false, created: Math.floor(Date.now() / 1000), api_version: '2024-06-20', data: { object } });
    const t = Math.floor(Date.now() / 1000);
    const v1 = createHmac('sha256', WEBHOOK_SECRET).update(`${t}.${body}`).digest('hex');
    const res = await fetch(this.url('/api/webhooks/stripe'), { method: 'POST', headers: { 'Content-Type': 'application/json', 'Stripe-Signature': `t=${t},v1=${v1}` }, body });
    if (!res.ok) throw new Error(`webhook intake: ${res.status} ${await res.text()}`);
  }

  async webhook(token, id) {
    const r = await this.api('GET', `/api/admin/webhooks/${id}`, { token });
    return r.status === 200 ? r.body : null;
  }
}

/** Chromium, headless, from Debian. */
export async function launch() {
  if (!existsSync(CHROMIUM)) throw new Error(`chromium is missing at ${CHROMIUM}: apt-get install -y chromium`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/**
 * A page of the console that records every console error, page error, CSP violation,
 * failed asset and request to another origin; `check()` fails the test on any of them.
 * An admin API answer of 4xx is part of the scenario (a wrong password, a 409) and the
 * browser logs it as "Failed to load resource"; those are allowed, listed in `refusals`.
 */
export async function consolePage(browser, app, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  const page = await context.newPage();
  const problems = [];
  const refusals = [];
  page.on('console', (m) => {
    if (m.type() !== 'error' && m.type() !== 'warning') return;
    const where = m.location() && m.location().url;
    if (m.type() === 'error' && /status of 4\d\d/.test(m.text()) && where && where.startsWith(app.url('/admin/api/'))) {
      refusals.push(where);
    } else if (m.type() === 'error' || /Content Security Policy/i.test(m.text())) {
      problems.push(`console ${m.type()}: ${m.text()} (${where || ''})`);
    }
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol !== 'data:' && u.origin !== app.base) problems.push(`request to another origin: ${r.url()}`);
  });
  page.on('response', (r) => {
    const api = r.url().startsWith(app.url('/admin/api/'));
    if (r.status() >= 500 || (!api && r.status() >= 400)) problems.push(`${r.status()} for ${r.url()}`);
  });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  page.check = () => {
    if (problems.length) throw new Error(`the console was not clean:\n${problems.join('\n')}`);
  };
  page.refusals = refusals;
  return page;
}

/** The password step of the console's sign-in. */
export async function signIn(page, app, email = ADMIN.email, password = ADMIN.password) {
  await page.goto(app.url('/admin/'));
  await page.getByLabel('Admin email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** The whole sign-in of an enrolled admin, the second step with one of `recoveryCodes` (spent). */
export async function signInWithRecoveryCode(page, app, recoveryCodes, email = ADMIN.email, password = ADMIN.password) {
  const code = recoveryCodes.shift();
  if (!code) throw new Error('no recovery codes left for the browser tests');
  await signIn(page, app, email, password);
  await page.getByRole('heading', { name: 'Two-factor sign-in', exact: true }).waitFor();
  await page.getByRole('button', { name: 'Use a recovery code' }).click();
  await page.getByLabel('Recovery code').fill(code);
  await page.getByRole('button', { name: 'Verify' }).click();
}

/**
 * A console page signed in as the enrolled ADMIN. Every call shares one console session
 * (signed in once with a recovery code): a TOTP code is accepted once, and a new one
 * comes only every 30 s.
 */
export async function adminPage(browser, app, options = {}) {
  if (!app.adminState) {
    const first = await consolePage(browser, app);
    await signInWithRecoveryCode(first, app, app.admin.recoveryCodes);
    await first.getByRole('heading', { name: 'Needs attention' }).waitFor();
    first.check();
    app.adminState = await first.context().storageState();
    await first.context().close();
  }
  const page = await consolePage(browser, app, { storageState: app.adminState, ...options });
  await page.goto(app.url('/admin/'));
  return page;
}

/** Follows a link of the side navigation. */
export const nav = (page, name) => page.getByRole('navigation', { name: 'Screens' }).getByRole('link', { name, exact: true }).click();

/** Finds the user with `email` on the Users screen and opens their page. */
export async function openUser(page, email) {
  await nav(page, 'Users');
  await page.getByLabel(/Search/).fill(email);
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('cell', { name: email, exact: true }).click();
  await page.getByRole('heading', { name: email }).waitFor();
}

/** The RFC 6238 step (30 s) holding `at` (ms). */
export const totpStep = (at = Date.now()) => Math.floor(at / 30_000);

/** RFC 4648 base32 (what authenticator apps take) to bytes. */
function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0; let value = 0; const out = [];
  for (const ch of text.replace(/[\s=]/g, '').toUpperCase()) {
    const index = alphabet.indexOf(ch);
    if (index < 0) throw new Error(`not base32: ${ch}`);
    value = ((value << 5) | index) & 0xffff; bits += 5;
    if (bits >= 8) { out.push((value >>> (bits - 8)) & 0xff); bits -= 8; }
  }
  return Buffer.from(out);
}

/** The 6-digit TOTP code (RFC 6238: HMAC-SHA1, 30 s steps) of a base32 secret at `at` (ms). */
export function totp(secret, at = Date.now()) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(totpStep(at)));
  const mac = createHmac('sha1', base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

/** Waits until the TOTP step after `step` has begun (a code is accepted once per step). */
export async function nextStepAfter(step) {
  while (totpStep() <= step) await sleep(250);
}

export function shotsDir() { mkdirSync(SHOTS, { recursive: true }); return SHOTS; }
