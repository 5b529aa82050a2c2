// What the browser tests share: starting and stopping `orderflow up`, a free
// port, polling, and launching Debian's headless Chromium.
//
//   ORDERFLOW_BINARY   the orderflow binary (default ../../build/cli/orderflow)
//   TEST_OUTPUT_DIR    where the screenshots go (default ../../build/test-output)
//   CHROMIUM           the browser (default /usr/bin/chromium)
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
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
      const http = /HTTP API and web page on (http:\/\/[^\s/]+)\//.exec(log);
      const kafka = /embedded Kafka broker at (\S+) /.exec(log);
      if (http && kafka) {
        clearTimeout(timer);
        resolve({ base: http[1], brokers: kafka[1] });
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

export function launchBrowser() {
  return chromium.launch({
    executablePath: browserPath,
    headless: true,
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
