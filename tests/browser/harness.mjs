// What the browser tests share: starting and stopping `orderflow up`, a free
// port, polling, and launching Debian's headless Chromium.
//
//   ORDERFLOW_BINARY   the orderflow binary (default ../../build/cli/orderflow)
//   TEST_OUTPUT_DIR    where the screenshots go (default ../../build/test-output)
//   CHROMIUM           the browser (default /usr/bin/chromium)
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const binary = process.env.ORDERFLOW_BINARY || path.join(here, '../../build/cli/orderflow');
export const outputDir = process.env.TEST_OUTPUT_DIR || path.join(here, '../../build/test-output');
export const browserPath = process.env.CHROMIUM || '/usr/bin/chromium';

export function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exitCode = 1;
}

export function checkPrograms() {
  for (const [what, p] of [['orderflow binary', binary], ['chromium', browserPath]]) {
    if (!existsSync(p)) throw new Error(`${what} not found at ${p} (run scripts/setup.sh and scripts/build.sh)`);
  }
}

// A free port on 127.0.0.1: `up` listens on the same one after its restart,
// so the page keeps its address.
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// Starts `orderflow up` with `extraArgs` and `env` (added to this process's);
// `started` resolves with its HTTP address and its embedded broker's address
// once it has logged both, `exited` with its exit.
export function startUp(dataDir, catalog, port, { extraArgs = [], env = {} } = {}) {
  const child = spawn(binary, ['up', '--http', `127.0.0.1:${port}`, '--data-dir', dataDir, '--catalog', catalog,
    '--transit-ms', '300', '--partitions', '3', '--log-level', 'info', ...extraArgs],
  { stdio: ['ignore', 'inherit', 'pipe'], env: { ...process.env, ...env } });
  let log = '';
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const started = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`orderflow up did not report its addresses:\n${log}`)), 90000);
    child.stderr.on('data', (chunk) => {
      log += chunk;
      process.stderr.write(chunk);
      const api = /HTTP API and web page on (https?:\/\/[^\s/]+)\//.exec(log);
      const kafka = /embedded Kafka broker at (\S+) /.exec(log);
      if (api && kafka) {
        clearTimeout(timer);
        resolve({ base: api[1], brokers: kafka[1] });
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`orderflow up exited (${code ?? signal}) before serving:\n${log}`));
    });
  });
  started.catch(() => {});  // awaited by the caller; a late exit must not count as unhandled
  return { child, started, exited };
}

// Sends `signal` and resolves with the exit ({code, signal}); SIGKILL after `ms`.
export async function stopUp(up, signal, ms) {
  if (up.child.exitCode === null && up.child.signalCode === null) up.child.kill(signal);
  const timer = setTimeout(() => up.child.kill('SIGKILL'), ms);
  const exit = await up.exited;
  clearTimeout(timer);
  return exit;
}

// Polls `probe` (async, returns truthy when done) until it is done or `ms` pass.
export async function until(what, probe, ms) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last) return last;
    } catch (err) {
      last = err.message;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

// HTTPS: a CA and a certificate for 127.0.0.1 from scripts/https-cert.sh in
// `dir`, and a browser home whose NSS database trusts that CA (Chromium on
// Linux trusts what $HOME/.pki/nssdb trusts). Returns up's flags, the CA and
// the home to launch the browser with.
export function makeHttps(dir) {
  execFileSync('bash', [path.join(here, '../../scripts/https-cert.sh'), path.join(dir, 'tls')], { stdio: 'ignore' });
  const home = path.join(dir, 'home');
  const nssdb = path.join(home, '.pki', 'nssdb');
  mkdirSync(nssdb, { recursive: true });
  execFileSync('certutil', ['-d', `sql:${nssdb}`, '-N', '--empty-password']);
  execFileSync('certutil', ['-d', `sql:${nssdb}`, '-A', '-t', 'C,,', '-n', 'orderflow test CA', '-i',
    path.join(dir, 'tls', 'ca.pem')]);
  return {
    upArgs: ['--tls-cert', path.join(dir, 'tls', 'server.pem'), '--tls-key', path.join(dir, 'tls', 'server.key')],
    ca: readFileSync(path.join(dir, 'tls', 'ca.pem')),
    home,
  };
}

// One request from Node (fetch cannot be given a CA): resolves with
// { status, headers, text }; over https it trusts `ca` alone.
export function request(url, { method = 'GET', headers = {}, body, ca } = {}) {
  return new Promise((resolve, reject) => {
    const client = url.startsWith('https:') ? https : http;
    const req = client.request(url, { method, headers, ca }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// Chromium; `home` (from makeHttps) gives it a CA to trust.
export function launchBrowser({ home } = {}) {
  return chromium.launch({
    executablePath: browserPath,
    headless: true,
    env: home ? { ...process.env, HOME: home } : process.env,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

// domain::Catalog::Demo() as a catalog file (commas dropped from the names).
export const demoCatalog = [
  'SKU-ESPRESSO,Espresso beans 1 kg,2490,50000',
  'SKU-GRINDER,Burr grinder,12900,4000',
  'SKU-KETTLE,Gooseneck kettle,5990,8000',
  'SKU-MUG,Stoneware mug,1450,100000',
  'SKU-FILTER,Paper filters 100 pack,690,200000',
  'SKU-SCALE,Brewing scale,3990,12000',
  'SKU-DRIPPER,Ceramic dripper,2790,15000',
  'SKU-TAMPER,Steel tamper,3490,6000',
];
