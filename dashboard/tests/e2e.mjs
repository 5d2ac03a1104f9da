// The dashboard in a real browser: Debian's Chromium driven by playwright-core against a daemon
// that tests/dashboard.rs started with its test workflows. Every page is visited and acted on;
// screenshots go to $ATLAS_DASH_SHOTS; every response the browser received (pages, scripts,
// JSON) is checked for the secrets in $ATLAS_DASH_SECRETS (comma-separated). Prints one
// `ok - what` line per check and a final JSON line `{"result": ...}`; exits 1 on the first failure.
//
// Environment: ATLAS_DASH_BODIES (a file that receives every body, for the caller's own checks),
// ATLAS_DASH_LINK (the one-time login link), ATLAS_DASH_SHOTS (a folder),
// ATLAS_DASH_SECRETS, ATLAS_CHROMIUM (default /usr/bin/chromium), ATLAS_DASH_VOICE (1 when
// the daemon has a voice loop), ATLAS_DASH_OAUTH (an integration whose OAuth sign-in works).
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const link = process.env.ATLAS_DASH_LINK;
const shots = process.env.ATLAS_DASH_SHOTS;
const secrets = (process.env.ATLAS_DASH_SECRETS || '').split(',').filter(Boolean);
const voice = process.env.ATLAS_DASH_VOICE === '1';
const oauth = process.env.ATLAS_DASH_OAUTH || '';
if (!link || !shots) {
  console.error('ATLAS_DASH_LINK and ATLAS_DASH_SHOTS are required');
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const base = new URL(link).origin;
const WAIT = 15000;
const result = { shots: [], runs: {} };

function ok(what) {
  console.log(`ok - ${what}`);
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  ok(what);
}

const profile = mkdtempSync(join(tmpdir(), 'atlas-chromium-'));
// A fresh profile (Playwright passes it as --user-data-dir).
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.ATLAS_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  timeout: 30000,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'],
  viewport: { width: 1360, height: 900 },
  colorScheme: 'light',
});
const page = context.pages()[0] || (await context.newPage());
page.setDefaultTimeout(WAIT);

// Every body the browser received from the daemon, checked for secrets at the end.
const bodies = [];
page.on('response', async (r) => {
  if (!r.url().startsWith(base)) return;
  const type = r.headers()['content-type'] || '';
  if (type.includes('text/event-stream')) return;
  try {
    bodies.push({ url: r.url(), text: await r.text() });
  } catch {
    // A navigation away may drop a body; the page's own HTML is checked separately below.
  }
});
const consoleErrors = [];
page.on('pageerror', (e) => consoleErrors.push(String(e)));

/** The form controls on the page that have no accessible name (label, aria-label, text). */
async function unlabelled() {
  return page.$$eval('input, select, textarea, button, [role="button"], [role="switch"], a[href]', (els) => ({
    total: els.length,
    missing: els
      .filter((e) => {
        const label = (e.labels && [...e.labels].some((l) => l.textContent.trim()))
          || (e.getAttribute('aria-label') || '').trim()
          || (e.tagName !== 'INPUT' && e.tagName !== 'SELECT' && e.textContent.trim());
        return !label && e.offsetParent !== null;
      })
      .map((e) => e.outerHTML.slice(0, 80)),
  }));
}

async function shot(name) {
  const { total, missing } = await unlabelled();
  check(total > 0 && missing.length === 0, `each of the ${total} controls on ${name} has a name (${missing.join(' | ')})`);
  const file = join(shots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  bodies.push({ url: `${page.url()} (DOM)`, text: await page.content() });
  result.shots.push(file);
}

async function go(hash) {
  await page.goto(`${base}/dashboard/${hash}`);
  await page.waitForSelector('main h1');
}

/** Replaces the editor's text, as typing would (CodeMirror sees a user edit). */
async function setEditor(text) {
  await page.click('.cm-content');
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
}

async function runFrom(workflow, vars = {}) {
  await go(`#/workflows/${workflow}`);
  for (const [k, v] of Object.entries(vars)) await page.fill(`input[name="${k}"]`, v);
  await page.click(`form[aria-label="Run with variables"] button[type="submit"]`);
  await page.waitForURL(/#\/runs\//);
  const id = decodeURIComponent(page.url().split('#/runs/')[1]);
  result.runs[workflow] = id;
  return id;
}

try {
  // Login: the one-time link sets an HttpOnly cookie and lands on the dashboard.
  await page.goto(link);
  await page.waitForSelector('table[aria-label="Workflows"]');
  check(new URL(page.url()).pathname === '/dashboard/' && !page.url().includes('code='), 'the login link redirects to the dashboard without its code');
  const cookies = await context.cookies(base);
  const session = cookies.find((c) => c.name === 'atlas_session');
  check(session && session.httpOnly && session.sameSite === 'Strict', 'the session cookie is HttpOnly and SameSite=Strict');
  check(!(await page.evaluate(() => document.cookie)).includes('atlas_session'), 'scripts cannot read the session cookie');
  const row = page.locator('tr[data-workflow="hello"]');
  await row.waitFor();
  check((await row.textContent()).includes('manual'), 'the workflow list shows triggers');
  check((await row.locator('[role="switch"]').getAttribute('aria-checked')) === 'true', 'the enabled switch is on');
  await shot('01-workflows');

  // The enabled switch writes the file and the list follows.
  await page.click('tr[data-workflow="nightly"] [role="switch"]');
  await page.waitForSelector('tr[data-workflow="nightly"] [role="switch"][aria-checked="false"]');
  ok('the enabled switch disables a workflow');
  await page.click('tr[data-workflow="nightly"] [role="switch"]');
  await page.waitForSelector('tr[data-workflow="nightly"] [role="switch"][aria-checked="true"]');
  ok('and enables it again');

  // A workflow's graph, laid out, with its on_failure edge; keyboard selects a node.
  await go('#/workflows/hello');
  await page.waitForSelector('[data-testid="graph"] [data-action="greet"]');
  for (const a of ['greet', 'pause', 'finish', 'report']) {
    check(await page.locator(`[data-testid="graph"] [data-action="${a}"]`).count() === 1, `the graph has the action ${a}`);
  }
  check(await page.locator('[data-edge="pause->report"][data-kind="on_failure"]').count() === 1, 'the graph draws the on_failure edge');
  const ys = await page.$$eval('[data-testid="graph"] [data-action]', (els) =>
    els.map((e) => e.getAttribute('transform')));
  check(new Set(ys).size === ys.length, 'no two nodes share a position (laid out by dagre)');
  await page.focus('[data-action="pause"]');
  await page.keyboard.press('Enter');
  check((await page.getAttribute('[data-action="pause"]', 'aria-pressed')) === 'true', 'Enter on a focused node selects it');
  await shot('02-workflow-graph');

  // Builder: validation as you type, at the right line; the graph follows; add an action; save.
  await go('#/builder/hello');
  await page.waitForSelector('[data-testid="validation"] .ok-text');
  ok('the builder validates the loaded YAML');
  const bad = 'id: built\nname: Built here\ntriggers: [{type: manual}]\nactions:\n  - id: one\n    type: log\n    config: {message: first}\n  - id: two\n    type: no_such_kind\n';
  await setEditor(bad);
  const err = page.locator('[data-testid="validation"] li[data-line]');
  await err.first().waitFor();
  const line = await err.first().getAttribute('data-line');
  check(line === '9', `the validation error is at line 9 (got ${line})`);
  check((await err.first().textContent()).includes('no_such_kind'), 'the error names the unknown kind');
  await page.waitForSelector('.cm-lint-marker-error');
  const markerLine = await page.evaluate(() => {
    const gutter = document.querySelector('.cm-gutter-lint');
    const marker = gutter && gutter.querySelector('.cm-lint-marker-error');
    const el = marker && marker.closest('.cm-gutterElement');
    const rows = gutter ? [...gutter.querySelectorAll('.cm-gutterElement')] : [];
    // The gutter's first element is a spacer; the others are lines 1, 2, ... in order.
    const lines = document.querySelectorAll('.cm-gutter.cm-lineNumbers .cm-gutterElement');
    const top = el ? el.getBoundingClientRect().top : -1;
    const hit = [...lines].find((l) => Math.abs(l.getBoundingClientRect().top - top) < 2);
    return hit ? hit.textContent : `none of ${rows.length}`;
  });
  check(markerLine === '9', `the editor marks line 9 (got ${markerLine})`);
  await shot('03-builder-error');
  await setEditor(bad.replace('no_such_kind', 'log\n    config: {message: second}'));
  await page.waitForSelector('[data-testid="validation"] .ok-text');
  await page.waitForSelector('[aria-label="Live graph"] [data-action="two"]');
  ok('the live graph follows the text once it validates');
  // A service kind offers its operations, each with the fields it needs.
  await page.selectOption('fieldset select', 'github');
  check(await page.isDisabled('fieldset button'), 'a service kind needs an operation first');
  await page.selectOption('fieldset label:has-text("Operation") select', 'create_issue');
  check((await page.textContent('fieldset')).includes('repo (required)'), 'an operation lists the fields it needs');
  await page.selectOption('fieldset select', 'notify');
  check((await page.textContent('fieldset')).includes('title (required)'), 'the kind\'s fields are listed, required ones marked');
  await page.click('fieldset button');
  await page.waitForFunction(() => document.querySelector('.cm-content').textContent.includes('type: notify'));
  const text = await page.evaluate(() => [...document.querySelectorAll('.cm-line')].map((l) => l.textContent).join('\n'));
  check(text.includes('id: notify_1') && text.includes('title: ""'), 'Add action inserts the kind with its required field');
  await page.waitForSelector('[aria-label="Live graph"] [data-action="notify_1"]');
  ok('the added action appears in the live graph');
  await setEditor(text.replace('title: ""', 'title: Built'));
  await page.waitForSelector('[data-testid="validation"] .ok-text');
  await page.click('button.primary');
  await page.waitForSelector('[role="status"].ok-text');
  check((await page.textContent('[role="status"]')).includes('Saved built'), 'Save writes the new workflow');
  await shot('04-builder-saved');

  // A run, watched live: an action running, then every action done, without a reload.
  const runId = await runFrom('hello', { who: 'dashboard' });
  await page.waitForSelector('[data-action="pause"][data-status="running"]');
  ok('the run page shows the running action live');
  await shot('05-run-live');
  await page.waitForSelector('[data-testid="run-status"]:has-text("succeeded")');
  for (const a of ['greet', 'pause', 'finish']) {
    check((await page.getAttribute(`[data-action="${a}"]`, 'data-status')) === 'succeeded', `${a} completed live`);
  }
  check(await page.locator('.timeline li').count() >= 3, 'the timeline shows each action');
  await page.click('tr[data-record="greet"]');
  const out = await page.textContent('pre[aria-label="Output of greet"]');
  check(out.includes('hello dashboard'), 'the output shows the variables given');
  check(!page.url().includes('code='), `run ${runId} page has no login code`);
  await shot('06-run-done');

  // Pause takes effect at the next action boundary; Resume carries on to the end.
  await runFrom('steps');
  await page.waitForSelector('[data-action="one"][data-status="running"]');
  await page.click('[aria-label="Run controls"] button:has-text("Pause")');
  await page.waitForSelector('[data-testid="run-status"]:text-is("paused")');
  check((await page.getAttribute('[data-action="two"]', 'data-status')) === 'idle', 'a paused run stops before its next action');
  await shot('07-run-paused');
  await page.click('[aria-label="Run controls"] button:has-text("Resume")');
  await page.waitForSelector('[data-testid="run-status"]:text-is("succeeded")');
  check((await page.getAttribute('[data-action="three"]', 'data-status')) === 'succeeded', 'Resume runs the rest');

  // Cancel a long run from its page.
  await runFrom('slow');
  await page.waitForSelector('[data-action="wait"][data-status="running"]');
  await page.click('[aria-label="Run controls"] button:has-text("Cancel")');
  await page.waitForSelector('[data-testid="run-status"]:has-text("cancelled")');
  ok('Cancel ends a long run');
  await shot('08-run-cancelled');

  // A failed run opens at its failed action.
  const failedId = await runFrom('broken');
  await page.waitForSelector('[data-testid="run-status"]:has-text("failed")');
  await go(`#/runs/${failedId}`);
  await page.reload();
  await page.waitForSelector('[data-testid="action-error"]');
  check((await page.getAttribute('tr.selected', 'data-record')) === 'fetch', 'a failed run opens at its failed action');
  await shot('09-run-failed');

  // The history with a filter.
  await go('#/runs');
  await page.waitForSelector('table[aria-label="Run history"] tbody tr');
  await page.selectOption('form[aria-label="Filters"] label:has-text("Status") select', 'cancelled');
  await page.waitForFunction(() => [...document.querySelectorAll('table[aria-label="Run history"] tbody tr')].every((r) => r.textContent.includes('cancelled')));
  check(await page.locator('table[aria-label="Run history"] tbody tr').count() === 1, 'the status filter leaves the one cancelled run');
  await shot('10-runs');

  // Voice: a typed command, its match and candidates.
  await go('#/voice');
  await page.waitForSelector('[data-testid="stage"]');
  if (voice) {
    await page.fill('#command', 'run the hello workflow');
    await page.click('form[aria-label="Typed command"] button');
    const u = page.locator('[data-testid="utterance"]').first();
    await u.waitFor();
    await page.waitForSelector('[data-testid="utterance"] table[aria-label="Match candidates"]');
    check((await u.textContent()).includes('Matched hello'), 'a typed command matches its workflow');
    check((await u.locator('tbody tr').count()) >= 1, 'the candidates and scores are listed');
  } else {
    ok('voice is off in this daemon: the typed command is not tried');
  }
  await shot('11-voice');

  // Integrations: their states; connect asks the daemon and shows what it says.
  await go('#/integrations');
  await page.waitForSelector('tr[data-integration="gmail"]');
  check(await page.locator('table[aria-label="Integrations"] tbody tr').count() >= 2, 'the integrations are listed with their state');
  // A token integration cannot start a browser sign-in: the daemon's reason is shown.
  await page.click('tr[data-integration="github"] button:has-text("Connect")');
  await page.waitForSelector('main [role="alert"]');
  check((await page.textContent('main [role="alert"]')).includes('token'), 'Connect on a token integration shows why not');
  if (oauth) {
    // An OAuth integration: the provider's page opens, the daemon finishes the sign-in when
    // the browser comes back, and the page follows.
    const row = `tr[data-integration="${oauth}"]`;
    const popup = context.waitForEvent('page', { timeout: WAIT });
    await page.click(`${row} button:has-text("Connect")`);
    const opened = await popup;
    await opened.waitForLoadState();
    await page.waitForSelector(`${row} .badge:text-is("connected")`, { timeout: 60000 });
    result.connect_landed = opened.url().replace(/code=[^&]*/, 'code=…');
    await opened.close();
    ok(`Connect signs ${oauth} in through the provider's page`);
    await shot('12-integrations');
    await page.click(`${row} button:has-text("Disconnect")`);
    await page.waitForSelector(`${row} .badge:text-is("disconnected")`);
    ok(`Disconnect signs ${oauth} out`);
  } else {
    await shot('12-integrations');
  }

  // Schedules: the next runs on the timeline.
  await go('#/schedules');
  await page.waitForSelector('.sched-dot');
  ok('the schedules page draws the next runs');
  await page.waitForSelector('table:has-text("missed, caught up")');
  ok('the missed run the daemon caught up at start is shown as such');
  await shot('13-schedules');

  // Dark theme.
  await go('#/workflows');
  await page.selectOption('label.theme select', 'dark');
  await page.waitForFunction(() => getComputedStyle(document.body).backgroundColor === 'rgb(18, 19, 23)', null, { timeout: 5000 })
    .catch(() => {});
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  check(bg === 'rgb(18, 19, 23)', `the dark theme applies (${bg})`);
  await shot('14-workflows-dark');

  // The link is spent.
  const again = await context.newPage();
  const resp = await again.goto(link);
  check(resp.status() === 401, 'a login link works only once');
  await again.close();

  // No secret in anything the browser received.
  for (const s of secrets) {
    const leaked = bodies.filter((b) => b.text.includes(s)).map((b) => b.url);
    check(leaked.length === 0, `no secret in ${bodies.length} responses and pages (${leaked.join(', ')})`);
  }
  check(consoleErrors.length === 0, `no script errors (${consoleErrors.join('; ')})`);
  // For secrets only the caller knows afterwards (tokens a fake provider issued).
  if (process.env.ATLAS_DASH_BODIES) {
    writeFileSync(process.env.ATLAS_DASH_BODIES, bodies.map((b) => `== ${b.url}\n${b.text}`).join('\n'));
  }
  console.log(JSON.stringify({ result }));
} catch (e) {
  console.error(`FAILED: ${e.message}`);
  try {
    await page.screenshot({ path: join(shots, 'failure.png'), fullPage: true });
  } catch {}
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
