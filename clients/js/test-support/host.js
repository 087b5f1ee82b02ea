// Test helpers: start the real switchboard host (temp config, temp SQLite
// data dir, 127.0.0.1), mint HS256 tokens with the config's secret, and wait
// on conditions with deadlines.
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';

import { SwitchboardClient } from '../index.js';

export { WebSocket };
export const SECRET = 'js-client-test-secret-0123456789';

export const BIN = process.env.SWITCHBOARD_BIN;
if (!BIN) {
  throw new Error('set SWITCHBOARD_BIN to the switchboard binary (scripts/test.sh does)');
}

const running = new Set();
process.on('exit', () => {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** A port that was free a moment ago (the host is then started on it, and restarted on it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `cond` until it returns a truthy value (returned), or fails after `timeout` ms. */
export async function waitFor(cond, { timeout = 10000, interval = 10, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${message}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Resolves with the first emission of `type` on `emitter` (optionally matching `pred`), within `timeout`. */
export function nextEvent(emitter, type, { pred = () => true, timeout = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeout} ms waiting for event ${type}`));
    }, timeout);
    const off = emitter.on(type, (...args) => {
      if (!pred(...args)) return;
      clearTimeout(timer);
      off();
      resolve(args[0]);
    });
  });
}

function b64url(data) {
  return Buffer.from(data).toString('base64url');
}

/** An HS256 JWT for `user`. `exp` defaults to an hour from now. */
export function mintToken(user, { secret = SECRET, exp, nbf } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const claims = { sub: user, iat: now, exp: exp ?? now + 3600 };
  if (nbf !== undefined) claims.nbf = nbf;
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', secret).update(`${header}.${body}`).digest('base64url');
  return `${header}.${body}.${sig}`;
}

/** A gate a token callback can wait on: keeps a client away until opened. */
export class Gate {
  constructor() {
    this.reset();
  }
  reset() {
    this.isOpen = false;
    this.promise = new Promise((r) => (this._open = r));
  }
  open() {
    this.isOpen = true;
    this._open();
  }
}

export class Host {
  /**
   * @param {object} [options]
   * @param {number} [options.port]  0: pick a free one now (kept across restarts)
   * @param {object} [options.server]  extra [server] keys
   * @param {object} [options.chat]    [chat] keys
   * @param {string[]} [options.features]
   */
  constructor({ port = 0, server = {}, chat = {}, features = ['feature-reactions', 'feature-pins', 'feature-typing', 'feature-receipts'], typing = {} } = {}) {
    this.dir = mkdtempSync(path.join(tmpdir(), 'sbjs-'));
    this.port = port;
    this.options = { server, chat, features, typing };
    this.child = null;
    this.log = [];
    this.configPath = path.join(this.dir, 'switchboard.toml');
  }

  static async start(options) {
    const host = new Host(options);
    if (!host.port) host.port = await freePort();
    host.writeConfig();
    await host.start();
    return host;
  }

  get url() {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  writeConfig() {
    const { server, chat, features, typing } = this.options;
    const toml = (obj) =>
      Object.entries(obj)
        .map(([k, v]) => `${k} = ${typeof v === 'string' ? JSON.stringify(v) : v}`)
        .join('\n');
    const featureBlocks = features
      .map((f) => {
        let block = `[[features]]\nplugin = "${f}"\n`;
        if (f === 'feature-typing' && Object.keys(typing).length) block += `[features.config]\n${toml(typing)}\n`;
        return block;
      })
      .join('\n');
    writeFileSync(
      this.configPath,
      `[server]
listen = "127.0.0.1:${this.port}"
threads = 2
${toml(server)}

[auth]
algorithm = "HS256"
secret = "${SECRET}"

[chat]
presence_grace_seconds = 1
${toml(chat)}

[log]
level = "info"

[bus]
plugin = "bus-gochannel"

[storage]
plugin = "storage-sqlite"
[storage.config]
path = "${this.dir}/switchboard.db"

${featureBlocks}
`,
    );
  }

  /** Starts the host and waits for its `listening address=` line. */
  start() {
    if (this.child) throw new Error('host already running');
    const child = spawn(BIN, ['serve', '--config', this.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    running.add(child);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        running.delete(child);
        if (this.child === child) this.child = null;
        resolve({ code, signal });
      });
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`host did not start within 20 s:\n${this.log.slice(-30).join('\n')}`));
      }, 20000);
      let buffered = '';
      const onData = (chunk) => {
        buffered += chunk.toString();
        let nl;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          this.log.push(line);
          if (this.log.length > 500) this.log.shift();
          const m = /listening address=127\.0\.0\.1:(\d+)/.exec(line);
          if (m) {
            clearTimeout(timer);
            this.port = Number(m[1]);
            resolve(this);
          }
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`host exited (${code ?? signal}) before listening:\n${this.log.slice(-30).join('\n')}`));
      });
    });
  }

  get pid() {
    return this.child?.pid;
  }

  /** SIGKILL, and wait until the process is gone. */
  async kill() {
    if (!this.child) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** Starts again on the same port with the same data dir. */
  restart() {
    return this.start();
  }

  /** SIGTERM (SIGKILL after 15 s), wait, and remove the data dir. */
  async stop() {
    if (this.child) {
      const child = this.child;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15000);
      await this.exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A client for `user` on `host`, with quick test-sized backoff. `options`
 * override anything (getToken, WebSocket, positions, …).
 */
export function makeClient(host, user, options = {}) {
  return new SwitchboardClient({
    url: host.url,
    token: mintToken(user),
    WebSocket,
    backoff: { initialMs: 50, maxMs: 400 },
    stableAfterMs: 1000,
    commandTimeoutMs: 10000,
    ...options,
  });
}

/** Texts of the message.new events in a list of events. */
export function texts(events) {
  return events.filter((e) => e.type === 'message.new').map((e) => e.message.text);
}

/**
 * Records what a client went through (states, resume frames, resyncs,
 * persistent events, errors) so a failing test can say what happened.
 * @returns {{lines: string[], dump: () => string}}
 */
export function trace(client, name) {
  const lines = [];
  const at = () => new Date().toISOString().slice(17, 23);
  const add = (s) => {
    lines.push(`${at()} ${name} ${s}`);
    if (lines.length > 400) lines.shift();
  };
  client.on('state', (s) => add(`state ${s}`));
  client.on('synced', (s) => add(`synced added=${JSON.stringify(s.added)} resumed=${s.resumed}`));
  client.on('resume', (f) => add(`resume ${JSON.stringify(f)}`));
  client.on('resync', (r) => add(`resync ${r.conversation_id} ${r.reason} last_seq=${r.last_seq} events=${r.events.length}`));
  client.on('error', (e) => add(`error ${e?.code} ${e?.message}`));
  client.on('event', (e) => {
    if (Number.isInteger(e.seq)) add(`event ${e.type} c=${e.conversation_id} seq=${e.seq}${e.message ? ` "${e.message.text}"` : ''}`);
  });
  return { lines, dump: () => lines.join('\n') };
}
