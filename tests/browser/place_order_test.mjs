// End-to-end: `orderflow up` on the embedded broker, the web page in Debian's
// headless Chromium (driven by playwright-core). Places an order through the
// page and waits until its timeline shows it delivered; takes a screenshot.
//
//   ORDERFLOW_BINARY   the orderflow binary (default ../../build/cli/orderflow)
//   TEST_OUTPUT_DIR    where the screenshot goes (default ../../build/test-output)
//   CHROMIUM           the browser (default /usr/bin/chromium)
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const binary = process.env.ORDERFLOW_BINARY || path.join(here, '../../build/cli/orderflow');
const outputDir = process.env.TEST_OUTPUT_DIR || path.join(here, '../../build/test-output');
const browserPath = process.env.CHROMIUM || '/usr/bin/chromium';

function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exitCode = 1;
}

// Starts `orderflow up` and resolves with its HTTP address once it logs it.
function startUp(dataDir) {
  const child = spawn(binary, ['up', '--http', '127.0.0.1:0', '--data-dir', dataDir, '--transit-ms', '300',
    '--partitions', '3', '--log-level', 'info'], { stdio: ['ignore', 'inherit', 'pipe'] });
  let log = '';
  const address = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`orderflow up did not report its HTTP address:\n${log}`)), 60000);
    child.stderr.on('data', (chunk) => {
      log += chunk;
      process.stderr.write(chunk);
      const m = /HTTP API and web page on (http:\/\/[^\s/]+)\//.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`orderflow up exited (${code}) before serving:\n${log}`)));
  });
  return { child, address };
}

async function main() {
  for (const [what, p] of [['orderflow binary', binary], ['chromium', browserPath]]) {
    if (!existsSync(p)) throw new Error(`${what} not found at ${p} (run scripts/setup.sh and scripts/build.sh)`);
  }
  mkdirSync(outputDir, { recursive: true });
  const dataDir = mkdtempSync(path.join(tmpdir(), 'orderflow-browser-'));
  const up = startUp(path.join(dataDir, 'data'));
  let browser;
  try {
    const base = await up.address;
    browser = await chromium.launch({
      executablePath: browserPath,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const pageErrors = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => { if (msg.type() === 'error') pageErrors.push(msg.text()); });

    const kettle = async () => (await (await fetch(`${base}/stock`)).json()).stock
      .find((x) => x.sku === 'SKU-KETTLE').available;
    await page.goto(`${base}/`);
    await page.getByTestId('ready').filter({ hasText: 'ready' }).waitFor({ timeout: 30000 });
    // The catalog comes from GET /catalog.
    await page.getByTestId('qty-SKU-KETTLE').waitFor();
    await page.getByTestId('qty-SKU-ESPRESSO').fill('0');
    await page.getByTestId('qty-SKU-KETTLE').fill('2');
    await page.locator('#customer').fill('cust-browser');
    // The operations panel shows the stock the inventory service holds.
    await page.locator('#stock-rows tr[data-sku="SKU-KETTLE"]').waitFor({ timeout: 30000 });
    const before = await kettle();
    await page.locator('#stock-rows tr[data-sku="SKU-KETTLE"] td.num').filter({ hasText: String(before) })
      .waitFor({ timeout: 10000 });
    await page.getByTestId('place-order').click();

    // Placed: the form reports the log position and the timeline follows the order.
    await page.getByTestId('form-message').filter({ hasText: 'Placed order' }).waitFor({ timeout: 15000 });
    // The timeline follows once the projection has the order (read your write).
    await page.getByTestId('timeline-id').filter({ hasText: /^[0-9a-f-]{36}$/ }).waitFor({ timeout: 15000 });
    const orderId = (await page.getByTestId('timeline-id').textContent()).trim();
    if (!/^[0-9a-f-]{36}$/.test(orderId)) throw new Error(`timeline shows no order id: '${orderId}'`);

    // Delivered: the SSE timeline receives OrderDelivered and the status badge follows.
    await page.locator('#timeline-events li[data-type="OrderDelivered"]').waitFor({ timeout: 60000 });
    await page.getByTestId('timeline-status').filter({ hasText: 'delivered' }).waitFor({ timeout: 10000 });
    const types = await page.locator('#timeline-events li').evaluateAll((lis) => lis.map((li) => li.dataset.type));
    for (const t of ['OrderPlaced', 'PaymentAuthorized', 'InventoryReserved', 'OrderShipped', 'OrderDelivered']) {
      if (!types.includes(t)) throw new Error(`timeline lacks ${t}: ${types.join(', ')}`);
    }
    if (new Set(types).size !== types.length && types.filter((t) => t === 'OrderDelivered').length > 1) {
      throw new Error(`timeline shows an event twice: ${types.join(', ')}`);
    }
    // The live list shows the order; the analytics panel counts its revenue.
    await page.locator(`#order-rows tr[data-order="${orderId}"]`).filter({ hasText: 'delivered' })
      .waitFor({ timeout: 10000 });
    await page.getByTestId('gross').filter({ hasText: '119.80' }).waitFor({ timeout: 15000 });
    await page.locator('#chart rect.bar').first().waitFor();

    // Its two kettles left the stock, on the page as in the API, and every
    // consumer caught up: lag back to 0, every service running.
    if (await kettle() !== before - 2) throw new Error(`stock went from ${before} to ${await kettle()}, not down by 2`);
    await page.locator('#stock-rows tr[data-sku="SKU-KETTLE"] td.num').filter({ hasText: String(before - 2) })
      .waitFor({ timeout: 10000 });
    await page.getByTestId('total-lag').filter({ hasText: /^lag 0$/ }).waitFor({ timeout: 30000 });
    for (const service of ['projector', 'payment', 'inventory', 'shipping', 'delivery', 'notification']) {
      await page.locator(`#health .badge.ready[data-service="${service}"]`).waitFor({ timeout: 10000 });
    }
    await page.locator('#lag-rows tr[data-consumer="inventory"]').waitFor();
    // The orders panel shows every customer's orders by default.
    if (await page.locator('#mine').isChecked()) throw new Error('the orders panel starts filtered to one customer');

    // The page agrees with the API.
    const order = await (await fetch(`${base}/orders/${orderId}`)).json();
    if (order.status !== 'delivered' || order.customer_id !== 'cust-browser' || order.total_minor !== 11980) {
      throw new Error(`API shows ${JSON.stringify(order)}`);
    }
    const shot = path.join(outputDir, 'browser-place-order.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);
    if (pageErrors.length) throw new Error(`the page logged errors: ${pageErrors.join('; ')}`);
    console.log(`PASS: order ${orderId} placed in the browser and followed to delivered (${types.length} events)`);
  } finally {
    if (browser) await browser.close();
    up.child.kill('SIGINT');
    await new Promise((resolve) => {
      const t = setTimeout(() => { up.child.kill('SIGKILL'); resolve(); }, 15000);
      up.child.on('exit', () => { clearTimeout(t); resolve(); });
      if (up.child.exitCode !== null) { clearTimeout(t); resolve(); }
    });
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err) => fail(err.stack || err.message));
