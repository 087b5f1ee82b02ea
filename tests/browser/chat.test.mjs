/**
 * The browser chat (clients/chat) in a real Chromium (Debian's, driven by
 * playwright-core) against the real host binary, each test with its own host
 * (temp config and SQLite, 127.0.0.1 port 0, dev tokens, the four features):
 * - two users sign in through the page and chat both ways (typing, presence,
 *   receipts, a reply, a pin, an edit); bob's browser goes offline while
 *   alice sends three messages and a reaction; back online, bob's page shows
 *   exactly those, once each, in order, with the reaction — delivered by the
 *   resume on a new connection, without a page reload. Over http, then over
 *   https with a self-signed certificate;
 * - history paging by scrolling up, and unread badges;
 * - the other message actions (direct conversation, reactions toggled,
 *   unpin from the pinned list, delete).
 * Screenshots go to the output directory.
 *
 * What Chromium's emulated offline (context.setOffline) does to an open
 * WebSocket, as checked here: it does not close it; nothing gets through
 * while offline, and the frames held meanwhile are delivered once the
 * network is back, late. So on `offline` the client pings, and drops a
 * socket that does not answer (offlineProbeMs, clients/js/src/client.js).
 * This test asserts the drop, that no
 * frame reached the first socket while offline, that a second socket was
 * opened once online, and that the missed events and a `recovered: true`
 * resume came on it (what the first socket gets late is ignored by the
 * client: it has moved on).
 *
 * usage: node chat.test.mjs <switchboard binary> <chat dir> <output dir>
 *   (or SWITCHBOARD_BIN, CHAT_DIR, BROWSER_OUTPUT_DIR)
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';

const [binArg, chatArg, outArg] = process.argv.slice(2);
const BIN = resolve(binArg ?? process.env.SWITCHBOARD_BIN ?? '');
const CHAT_DIR = resolve(chatArg ?? process.env.CHAT_DIR ?? '');
const OUT_DIR = resolve(outArg ?? process.env.BROWSER_OUTPUT_DIR ?? join(tmpdir(), 'switchboard-browser-output'));
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  // The machine's network is closed: without these Chromium stalls on its own traffic.
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const WAIT_MS = 15_000;

if (!binArg && !process.env.SWITCHBOARD_BIN) {
  console.error('usage: node chat.test.mjs <switchboard binary> <chat dir> <output dir>');
  process.exit(2);
}
for (const [what, path] of [['switchboard binary', BIN], ['chat dir index.html', join(CHAT_DIR, 'index.html')], ['chromium', CHROMIUM]]) {
  if (!existsSync(path)) {
    console.error(`chat.test.mjs: no ${what} at ${path}`);
    process.exit(2);
  }
}
mkdirSync(OUT_DIR, { recursive: true });
// Never hang a CI run: the whole file has a deadline.
setTimeout(() => {
  console.error('chat.test.mjs: deadline of 150 s passed');
  process.exit(1);
}, 150_000).unref();

// ------------------------------------------------------------------ host

/** The real binary with a temp config; its log kept for waits and failures. */
class Host {
  static async start({ tls }) {
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-browser-'));
    let tlsSection = '';
    if (tls) {
      const cert = join(dir, 'cert.pem');
      const key = join(dir, 'key.pem');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
        '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
      tlsSection = `[server.tls]\ncert = ${JSON.stringify(cert)}\nkey = ${JSON.stringify(key)}\n`;
    }
    const config = join(dir, 'switchboard.toml');
    writeFileSync(config, `[server]
listen = "127.0.0.1:0"
static_dir = ${JSON.stringify(CHAT_DIR)}
${tlsSection}
[auth]
algorithm = "HS256"
secret = "browser-test-secret-0123456789abcdef"
dev_tokens = true

[log]
level = "info"

[bus]
plugin = "bus-gochannel"

[storage]
plugin = "storage-sqlite"
[storage.config]
path = ${JSON.stringify(join(dir, 'switchboard.db'))}

[[features]]
plugin = "feature-reactions"
[[features]]
plugin = "feature-pins"
[[features]]
plugin = "feature-typing"
[[features]]
plugin = "feature-receipts"
`);
    const host = new Host(dir, spawn(BIN, ['serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] }));
    const line = await host.waitLine(/listening address=127\.0\.0\.1:(\d+)/);
    host.port = Number(/127\.0\.0\.1:(\d+)/.exec(line)[1]);
    host.url = `${tls ? 'https' : 'http'}://127.0.0.1:${host.port}/`;
    return host;
  }

  constructor(dir, proc) {
    this.dir = dir;
    this.proc = proc;
    this.log = '';
    this.exited = new Promise((res) => proc.on('exit', res));
    this.waiters = new Set();
    const take = (chunk) => {
      this.log += chunk;
      for (const w of this.waiters) w();
    };
    proc.stdout.setEncoding('utf8').on('data', take);
    proc.stderr.setEncoding('utf8').on('data', take);
    proc.on('exit', () => {
      for (const w of this.waiters) w();
    });
  }

  waitLine(re, timeoutMs = 20_000) {
    return new Promise((res, rej) => {
      const check = () => {
        const m = this.log.split('\n').find((l) => re.test(l));
        if (m) return done(null, m);
        if (this.proc.exitCode !== null) done(new Error(`the host exited (${this.proc.exitCode}) before /${re.source}/:\n${this.log}`));
      };
      const timer = setTimeout(() => done(new Error(`no log line /${re.source}/ in ${timeoutMs} ms:\n${this.log}`)), timeoutMs);
      const done = (err, line) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        err ? rej(err) : res(line);
      };
      this.waiters.add(check);
      check();
    });
  }

  async stop() {
    if (this.proc.exitCode === null) {
      this.proc.kill('SIGTERM');
      let timer;
      const killed = await Promise.race([this.exited.then(() => true), new Promise((r) => (timer = setTimeout(() => r(false), 5000)))]);
      clearTimeout(timer);
      if (!killed) {
        this.proc.kill('SIGKILL');
        await this.exited;
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// --------------------------------------------------------------- helpers

/** Waits for a condition in the page, with a message saying what did not happen. */
async function until(page, what, fn, arg, timeout = WAIT_MS) {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 50 });
  } catch (err) {
    throw new Error(`${page.__user}: ${what} (within ${timeout} ms): ${err.message.split('\n')[0]}`);
  }
}

/** The messages a page shows: [{seq, id, author, text, reactions: {emoji: count}, quote}], in DOM order. */
function shown(page) {
  return page.$$eval('[data-testid="message"]', (rows) =>
    rows.map((r) => ({
      seq: Number(r.dataset.seq),
      id: Number(r.dataset.id),
      author: r.dataset.author,
      text: r.querySelector('[data-testid="text"]')?.textContent ?? '',
      quote: r.querySelector('[data-testid="quote"]')?.textContent ?? null,
      reactions: Object.fromEntries(
        [...r.querySelectorAll('[data-testid="reaction"]')].map((b) => [b.dataset.emoji, Number(b.querySelector('[data-testid="reaction-count"]').textContent)]),
      ),
    })),
  );
}

/** The message row whose own text (not a quote of it) is `text`. */
function row(page, text) {
  return page.locator('[data-testid="message"]').filter({ has: page.getByTestId('text').getByText(text, { exact: true }) });
}

const hasMessage = ([text]) => [...document.querySelectorAll('[data-testid="message"] [data-testid="text"]')].some((t) => t.textContent === text);

async function signIn(browser, host, user) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const page = await context.newPage();
  page.__user = user;
  page.__errors = [];
  page.on('pageerror', (err) => page.__errors.push(err.message));
  // Every WebSocket of the page, watched from outside it; `phase` is the
  // test's (before, offline, back), stamped on each socket and frame.
  page.__phase = 'before';
  page.__sockets = [];
  page.on('websocket', (ws) => {
    const entry = { phase: page.__phase, frames: [], closed: false };
    ws.on('framereceived', (f) => entry.frames.push({ phase: page.__phase, payload: String(f.payload) }));
    ws.on('close', () => (entry.closed = true));
    page.__sockets.push(entry);
  });
  await page.goto(host.url);
  await page.getByTestId('login-name').fill(user);
  await page.getByTestId('login-submit').click();
  await until(page, 'the connection opens', () => document.querySelector('[data-testid="state"]').dataset.state === 'open');
  await until(page, 'the page knows who it is', ([u]) => document.querySelector('[data-testid="me"]').textContent === u, [user]);
  return { context, page };
}

async function send(page, text) {
  const box = page.getByTestId('composer');
  await box.fill(text);
  await box.press('Enter');
  await until(page, `“${text}” is shown, acknowledged`, ([t]) => {
    const rows = [...document.querySelectorAll('[data-testid="message"] [data-testid="text"]')];
    return rows.some((r) => r.textContent === t) && !document.querySelector('[data-testid="pending"]');
  }, [text]);
}

function assertOnceInOrder(list, who) {
  const seqs = list.map((m) => m.seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), `${who}: messages in seq order`);
  assert.equal(new Set(seqs).size, seqs.length, `${who}: no seq twice (${seqs})`);
  assert.equal(new Set(list.map((m) => m.id)).size, list.length, `${who}: no message twice`);
}

async function screenshot(page, file) {
  await page.screenshot({ path: file, animations: 'disabled' });
  const size = statSync(file).size;
  assert.ok(size > 10_000, `${file} is a real screenshot (${size} bytes)`);
  return size;
}

// -------------------------------------------------------------- scenario

async function scenario({ tls }) {
  const label = tls ? 'https' : 'http';
  const host = await Host.start({ tls });
  const args = tls ? [...CHROMIUM_ARGS, '--ignore-certificate-errors'] : CHROMIUM_ARGS;
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
  let alice;
  let bob;
  try {
    alice = await signIn(browser, host, 'alice');
    bob = await signIn(browser, host, 'bob');
    const loadedAt = await bob.page.evaluate(() => window.__loadedAt);

    // alice creates a group with bob; it shows on both sides.
    await alice.page.getByTestId('new-name').fill('team');
    await alice.page.getByTestId('new-members').fill('bob');
    await alice.page.getByTestId('create').click();
    for (const { page } of [alice, bob]) {
      await until(page, 'the conversation is listed and selected', () =>
        !!document.querySelector('[data-testid="conversation"][aria-current="true"][data-title="team"]'));
    }

    // Both ways.
    await send(alice.page, 'hello bob');
    await until(bob.page, 'bob sees alice’s message', hasMessage, ['hello bob']);
    await bob.page.getByTestId('composer').pressSequentially('hi al', { delay: 20 });
    await until(alice.page, 'alice sees bob typing', () => document.querySelector('[data-testid="typing"]').textContent === 'bob is typing…');
    await bob.page.getByTestId('composer').pressSequentially('ice!', { delay: 10 });
    await bob.page.getByTestId('composer').press('Enter');
    await until(alice.page, 'alice sees bob’s message', hasMessage, ['hi alice!']);
    await until(alice.page, 'the typing indicator ends with the send', () => document.querySelector('[data-testid="typing"]').textContent === '');
    await until(alice.page, 'bob shows online to alice', () =>
      document.querySelector('[data-testid="member"][data-user="bob"]')?.dataset.presence === 'online');
    await until(alice.page, 'alice sees that bob read her message', () =>
      [...document.querySelectorAll('[data-testid="seen"]')].some((s) => s.textContent === 'Seen by bob'));

    // A reply, quoted on the other side.
    const bobsRow = row(alice.page, 'hi alice!');
    await bobsRow.hover();
    await bobsRow.getByRole('button', { name: 'Reply' }).click();
    await send(alice.page, 'a reply');
    await until(bob.page, 'bob sees the reply with its quote', () =>
      [...document.querySelectorAll('[data-testid="message"]')].some((r) =>
        r.querySelector('[data-testid="text"]')?.textContent === 'a reply' && r.querySelector('[data-testid="quote"]')?.textContent === 'bob: hi alice!'));

    // A pin, and an edit: updated in place on the other side.
    const hello = row(alice.page, 'hello bob');
    await hello.hover();
    await hello.getByRole('button', { name: 'Pin' }).click();
    await until(bob.page, 'bob sees the pin', () =>
      !!document.querySelector('[data-testid="message"] [data-testid="pinned"]') && document.getElementById('pins-count').textContent === '1');
    await bob.page.getByTestId('pins-toggle').click();
    await until(bob.page, 'bob’s pinned list shows it', () => document.querySelector('[data-testid="pin"]')?.textContent.startsWith('alice: hello bob'));
    const mine = row(bob.page, 'hi alice!');
    await mine.hover();
    await mine.getByRole('button', { name: 'Edit' }).click();
    await bob.page.getByTestId('edit-text').fill('hi alice :)');
    await bob.page.getByTestId('edit-text').press('Enter');
    await until(alice.page, 'alice sees the edit, and the quote follows it', () =>
      [...document.querySelectorAll('[data-testid="message"]')].some((r) => r.querySelector('[data-testid="text"]')?.textContent === 'hi alice :)' && r.querySelector('[data-testid="edited"]')) &&
      [...document.querySelectorAll('[data-testid="quote"]')].some((q) => q.textContent === 'bob: hi alice :)'));

    await until(bob.page, 'bob sees his edit', hasMessage, ['hi alice :)']);
    const before = await shown(bob.page);
    assert.deepEqual(before.map((m) => m.text), ['hello bob', 'hi alice :)', 'a reply'], 'bob: three messages before going offline');

    // bob goes offline.
    const sockets = bob.page.__sockets;
    assert.equal(sockets.length, 1, 'bob has one socket before going offline');
    await bob.context.setOffline(true);
    bob.page.__phase = 'offline';
    await until(bob.page, 'bob’s page says offline', () => document.querySelector('[data-testid="state"]').dataset.state === 'offline');
    await until(bob.page, 'the stalled socket is dropped and the client waits for the network', () =>
      window.__chat.log.some((l) => l.type === 'disconnect' && /network is offline/.test(l.detail.reason)) &&
      window.__chat.client.state === 'offline');
    const cutAt = await bob.page.evaluate(() =>
      window.__chat.log.findLast((l) => l.type === 'disconnect' && /network is offline/.test(l.detail.reason)).at);
    await screenshot(bob.page, join(OUT_DIR, `${label}-bob-offline.png`));

    // alice sends three messages and a reaction meanwhile.
    const away = ['while you were away 1', 'while you were away 2', 'while you were away 3'];
    for (const text of away) await send(alice.page, text);
    const second = row(alice.page, away[1]);
    await second.hover();
    await second.getByRole('button', { name: 'React ❤️' }).click();
    await until(alice.page, 'alice sees her reaction', ([t]) =>
      [...document.querySelectorAll('[data-testid="message"]')].some((r) =>
        r.querySelector('[data-testid="text"]')?.textContent === t && r.querySelector('[data-testid="reaction"][data-emoji="❤️"]')), [away[1]]);
    const missed = await shown(bob.page);
    assert.deepEqual(missed.map((m) => m.text), before.map((m) => m.text), 'bob sees nothing new while offline');

    // Back online: the client reconnects and resumes.
    bob.page.__phase = 'back';
    await bob.context.setOffline(false);
    await until(bob.page, 'bob reconnects', () => document.querySelector('[data-testid="state"]').dataset.state === 'open');
    for (const text of away) await until(bob.page, `bob gets “${text}”`, hasMessage, [text]);
    await until(bob.page, 'bob gets the reaction', ([t]) =>
      [...document.querySelectorAll('[data-testid="message"]')].some((r) =>
        r.querySelector('[data-testid="text"]')?.textContent === t && r.querySelector('[data-testid="reaction"][data-emoji="❤️"]')), [away[1]]);
    await until(bob.page, 'a recovered resume after the drop', ([since]) =>
      window.__chat.log.some((l) => l.type === 'resume' && l.detail.recovered && l.at > since), [cutAt]);

    // The events came on the new socket, as the resume's replay.
    assert.ok(!sockets.some((x) => x.phase === 'offline'), 'no socket opened while offline');
    const fresh = sockets.filter((x) => x.phase === 'back');
    assert.ok(fresh.length >= 1, `bob opened a new socket after coming back (${sockets.length} seen)`);
    const replayed = fresh.flatMap((s) => s.frames).map((f) => JSON.parse(f.payload));
    for (const text of away) {
      assert.ok(replayed.some((f) => f.type === 'message.new' && f.message.text === text), `“${text}” came on the new connection`);
    }
    assert.ok(replayed.some((f) => f.type === 'reaction.add' && f.emoji === '❤️'), 'the reaction came on the new connection');
    assert.ok(replayed.some((f) => f.type === 'resume' && f.recovered === true), 'the new connection resumed (recovered: true)');
    const log = await bob.page.evaluate(() => window.__chat.log.map((l) => l.type));
    assert.ok(log.filter((t) => t === 'open').length >= 2, `bob’s client opened twice (${log.join(' ')})`);

    // Exactly those, once each, in order, with the reaction; no reload.
    const after = await shown(bob.page);
    assertOnceInOrder(after, 'bob');
    assert.deepEqual(after.map((m) => m.text), [...before.map((m) => m.text), ...away], 'bob: the three missed messages, in order, after the others');
    assert.deepEqual(after.find((m) => m.text === away[1]).reactions, { '❤️': 1 }, 'bob: the reaction, counted once');
    for (const m of after.filter((x) => x.text !== away[1])) assert.deepEqual(m.reactions, {}, `bob: no reaction on “${m.text}”`);
    assert.equal(await bob.page.evaluate(() => window.__loadedAt), loadedAt, 'bob’s page was not reloaded');
    assertOnceInOrder(await shown(alice.page), 'alice');

    // Receipts and unread counts follow: bob read them, alice sees it.
    await until(alice.page, 'alice sees that bob read the missed messages', ([t]) => {
      const rows = [...document.querySelectorAll('[data-testid="message"]')];
      return rows.at(-1)?.querySelector('[data-testid="text"]')?.textContent === t && rows.at(-1).querySelector('[data-testid="seen"]')?.textContent === 'Seen by bob';
    }, [away[2]]);
    await until(bob.page, 'bob has nothing unread', () => window.__chat.model.list().every((c) => c.unread === 0));

    // Screenshots: the DOM at that moment shows the messages.
    const out = {};
    for (const [who, { page }] of Object.entries({ alice, bob })) {
      await page.mouse.move(1, 1); // no hover toolbar in the picture
      const file = join(OUT_DIR, `${label}-${who}.png`);
      const texts = (await shown(page)).map((m) => m.text);
      for (const text of away) assert.ok(texts.includes(text), `${who}'s page shows “${text}” when the screenshot is taken`);
      out[who] = await screenshot(page, file);
    }
    assert.deepEqual((await shown(bob.page)).map((m) => m.text), after.map((m) => m.text), 'bob: unchanged at screenshot time');
    // What the emulated offline did to the first socket: it stayed open, and
    // got nothing while offline; what it held came late (the app had moved on).
    const first = sockets[0];
    const during = first.frames.filter((f) => f.phase === 'offline').length;
    const held = first.frames.filter((f) => f.phase === 'back').map((f) => JSON.parse(f.payload));
    assert.equal(during, 0, 'the first socket got no frame while offline');
    console.log(`# ${label}: screenshots ${out.alice} and ${out.bob} bytes in ${OUT_DIR}; bob's first socket: ` +
      `${during} frames while offline, ${held.length} delivered late after coming back ` +
      `(${[...new Set(held.map((f) => f.type))].join(', ') || 'none'}), closed: ${first.closed}; ` +
      `${fresh.length} new socket(s), ${fresh[0].frames.length} frames on it`);
    assert.deepEqual([...alice.page.__errors, ...bob.page.__errors], [], 'no uncaught errors in the pages');
  } catch (err) {
    for (const [who, side] of Object.entries({ alice, bob })) {
      if (side) await side.page.screenshot({ path: join(OUT_DIR, `${label}-${who}-failure.png`) }).catch(() => {});
      if (side) console.error(`# ${who}'s log:`, JSON.stringify(await side.page.evaluate(() => window.__chat?.log).catch(() => null)));
    }
    writeFileSync(join(OUT_DIR, `${label}-host.log`), host.log);
    throw err;
  } finally {
    await browser.close().catch(() => {});
    await host.stop();
  }
}

/** The other message actions: a direct conversation, reactions toggled, unpin from the list, delete. */
async function actions() {
  const host = await Host.start({ tls: false });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  let alice;
  let bob;
  // (runs in the page) the count on a message's reaction chip, and whether it is pressed (mine)
  const chip = ([text, emoji, count, pressed]) => {
    const r = [...document.querySelectorAll('[data-testid="message"]')].find((x) => x.querySelector('[data-testid="text"]')?.textContent === text);
    const b = r?.querySelector(`[data-testid="reaction"][data-emoji="${emoji}"]`);
    return Number(b?.querySelector('[data-testid="reaction-count"]').textContent ?? 0) === count && (!b || b.getAttribute('aria-pressed') === String(pressed));
  };
  try {
    alice = await signIn(browser, host, 'alice');
    bob = await signIn(browser, host, 'bob');
    await alice.page.getByTestId('new-kind').selectOption('direct');
    await alice.page.getByTestId('new-members').fill('bob');
    await alice.page.getByTestId('create').click();
    await until(alice.page, 'alice’s direct conversation is named bob', () => document.querySelector('[data-testid="conversation"][aria-current="true"]')?.dataset.title === 'bob');
    await until(bob.page, 'bob’s is named alice', () => document.querySelector('[data-testid="conversation"][aria-current="true"]')?.dataset.title === 'alice');
    await send(alice.page, 'first');
    await send(alice.page, 'second');
    await until(bob.page, 'bob has both', hasMessage, ['second']);

    // Reactions: bob adds one, alice joins through the chip, both take theirs back.
    const bobFirst = row(bob.page, 'first');
    await bobFirst.hover();
    await bobFirst.getByRole('button', { name: 'React 👍' }).click();
    await until(alice.page, 'alice sees 👍 1', chip, ['first', '👍', 1, false]);
    await row(alice.page, 'first').getByTestId('reaction').click();
    await until(bob.page, 'bob sees 👍 2, his among them', chip, ['first', '👍', 2, true]);
    await row(bob.page, 'first').getByTestId('reaction').click();
    await until(alice.page, 'alice sees 👍 1 again, hers', chip, ['first', '👍', 1, true]);
    await row(alice.page, 'first').getByTestId('reaction').click();
    await until(bob.page, 'the reaction is gone', () => !document.querySelector('[data-testid="reaction"]'));

    // Pin, then unpin from the pinned list.
    const second = row(alice.page, 'second');
    await second.hover();
    await second.getByRole('button', { name: 'Pin' }).click();
    await until(bob.page, 'bob sees the pin', () => !!document.querySelector('[data-testid="pinned"]'));
    await alice.page.getByTestId('pins-toggle').click();
    await alice.page.getByTestId('pin').getByRole('button', { name: 'Unpin' }).click();
    await until(bob.page, 'bob sees the unpin', () => !document.querySelector('[data-testid="pinned"]') && document.getElementById('pins-count').textContent === '');
    await until(alice.page, 'alice’s pinned list is empty', () => !document.querySelector('[data-testid="pin"]'));

    // Delete: a tombstone keeps its place.
    const first = row(alice.page, 'first');
    await first.hover();
    await first.getByRole('button', { name: 'Delete' }).click();
    await until(bob.page, 'bob sees the tombstone', () => {
      const rows = [...document.querySelectorAll('[data-testid="message"]')];
      return rows.length === 2 && rows[0].classList.contains('deleted') && rows[0].querySelector('[data-testid="text"]').textContent === 'message deleted';
    });
    await screenshot(bob.page, join(OUT_DIR, 'actions-bob.png'));
    assert.deepEqual([...alice.page.__errors, ...bob.page.__errors], [], 'no uncaught errors in the pages');
  } catch (err) {
    for (const [who, side] of Object.entries({ alice, bob })) {
      if (side) await side.page.screenshot({ path: join(OUT_DIR, `actions-${who}-failure.png`) }).catch(() => {});
    }
    writeFileSync(join(OUT_DIR, 'actions-host.log'), host.log);
    throw err;
  } finally {
    await browser.close().catch(() => {});
    await host.stop();
  }
}

/** History paging (scrolling up) and unread badges, on conversations filled over REST. */
async function paging() {
  const host = await Host.start({ tls: false });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  let bob;
  try {
    const { token } = await (await fetch(new URL('/dev/token', host.url), { method: 'POST', body: JSON.stringify({ user_id: 'alice' }) })).json();
    const rest = async (path, body) => {
      const r = await fetch(new URL(path, host.url), { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
      assert.ok(r.ok, `POST ${path}: ${r.status}`);
      return r.json();
    };
    const { conversation: busy } = await rest('/conversations', { kind: 'group', name: 'busy', members: ['bob'] });
    for (let i = 1; i <= 100; i++) await rest(`/conversations/${busy.id}/messages`, { text: `message ${i}` });
    const { conversation: quiet } = await rest('/conversations', { kind: 'direct', members: ['bob'] });
    for (let i = 1; i <= 3; i++) await rest(`/conversations/${quiet.id}/messages`, { text: `psst ${i}` });

    bob = await signIn(browser, host, 'bob');
    const { page } = bob;
    // The most recently active conversation opens; the other one shows its unread count.
    await until(page, 'the direct conversation (named after alice) opens', () =>
      document.querySelector('[data-testid="conversation"][aria-current="true"]')?.dataset.title === 'alice');
    await until(page, 'busy shows 100 unread', () =>
      document.querySelector('[data-testid="conversation"][data-title="busy"] [data-testid="unread"]')?.textContent === '100');
    await until(page, 'the open one is marked read', ([id]) => window.__chat.model.get(id).unread === 0, [quiet.id]);
    await page.locator('[data-testid="conversation"][data-title="busy"]').click();
    await until(page, 'busy is read once open', () => !document.querySelector('[data-testid="unread"]'));
    await until(page, 'the newest page shows', hasMessage, ['message 100']);
    assert.ok((await shown(page)).length < 100, 'not everything at once');
    // Scrolling up loads older pages until the first message.
    for (let n = 0; !(await page.evaluate(hasMessage, ['message 1'])); n++) {
      assert.ok(n < 20, 'paging ends');
      const count = (await shown(page)).length;
      await page.getByTestId('messages').evaluate((el) => el.scrollTo(0, 0));
      await until(page, 'an older page arrives', ([c]) => document.querySelectorAll('[data-testid="message"]').length > c, [count]);
    }
    await until(page, 'no more to load', () => document.querySelector('[data-testid="older"]').hidden);
    const all = await shown(page);
    assertOnceInOrder(all, 'bob');
    assert.deepEqual(all.map((m) => m.text), Array.from({ length: 100 }, (_, i) => `message ${i + 1}`), 'bob: all 100, in order, once each');
    await page.getByTestId('messages').evaluate((el) => el.scrollTo(0, 0));
    await screenshot(page, join(OUT_DIR, 'paging-bob.png'));
    assert.deepEqual(page.__errors, [], 'no uncaught errors in the page');
  } catch (err) {
    if (bob) await bob.page.screenshot({ path: join(OUT_DIR, 'paging-bob-failure.png') }).catch(() => {});
    writeFileSync(join(OUT_DIR, 'paging-host.log'), host.log);
    throw err;
  } finally {
    await browser.close().catch(() => {});
    await host.stop();
  }
}

test('chat over http: two users, offline, resume', { timeout: 60_000 }, () => scenario({ tls: false }));
test('chat over https (self-signed, --ignore-certificate-errors)', { timeout: 60_000 }, () => scenario({ tls: true }));
test('history paging and unread badges', { timeout: 60_000 }, paging);
test('message actions: direct conversation, reactions, unpin, delete', { timeout: 60_000 }, actions);
