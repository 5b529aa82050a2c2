// End-to-end: `orderflow up` on the embedded broker, the web page in Debian's
// headless Chromium (driven by playwright-core). Places an order through the
// page and waits until its timeline shows it delivered; takes a screenshot.
// Then poisons a record through the harness (`orderflow stock add` for a SKU
// that the CLI's catalog has and up's does not), sees it in the page's
// dead-letter table, applies the fix (restart `up` with that SKU in its
// catalog, same data dir) and redrives it from the page: the stock arrives
// once; a second screenshot shows the operations panel.
// Environment: see harness.mjs.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  binary, checkPrograms, demoCatalog, fail, freePort, launchBrowser, outputDir, startUp, stopUp, until,
} from './harness.mjs';

// The demo catalog with one more SKU, which has no stock of its own.
const biggerCatalog = [...demoCatalog, 'SKU-TEAPOT,Cast iron teapot,4590,0'];

async function main() {
  checkPrograms();
  mkdirSync(outputDir, { recursive: true });
  const dataDir = mkdtempSync(path.join(tmpdir(), 'orderflow-browser-'));
  const catalogFile = path.join(dataDir, 'catalog.csv');
  const biggerCatalogFile = path.join(dataDir, 'catalog-with-teapot.csv');
  writeFileSync(catalogFile, `${demoCatalog.join('\n')}\n`);
  writeFileSync(biggerCatalogFile, `${biggerCatalog.join('\n')}\n`);
  const port = await freePort();
  let up = startUp(path.join(dataDir, 'data'), catalogFile, port);
  let browser;
  try {
    const { base, brokers } = await up.started;
    browser = await launchBrowser();
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const pageErrors = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    // GET /readyz answers 503 until every service has its partitions: the page
    // shows "starting" then, and Chromium logs the 503 as a console error.
    const notReadyYet = (msg) => (msg.location().url || '').endsWith('/readyz') && msg.text().includes('503');
    page.on('console', (msg) => { if (msg.type() === 'error' && !notReadyYet(msg)) pageErrors.push(msg.text()); });

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
    for (const service of ['projector', 'fulfillment', 'notification']) {
      await page.locator(`#health .badge.ready[data-service="${service}"]`).waitFor({ timeout: 10000 });
    }
    await page.locator('#lag-rows tr[data-consumer="fulfillment"]').waitFor();
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
    console.log(`order ${orderId} placed in the browser and followed to delivered (${types.length} events)`);

    // Poison through the harness: stock for a SKU the CLI's catalog has and
    // up's inventory service does not. The service fails it 3 times, parks it
    // on orders.dlq and moves on; the page lists it with what to do.
    const added = await promisify(execFile)(binary, ['stock', 'add', 'SKU-TEAPOT', '5', '--brokers', brokers,
      '--catalog', biggerCatalogFile], { cwd: dataDir, timeout: 60000 });
    if (!added.stdout.includes('added 5 x SKU-TEAPOT')) throw new Error(`stock add printed '${added.stdout}'`);
    const poisoned = page.locator('#dlq-rows tr[data-state="pending"]')
      .filter({ hasText: 'StockAdded for SKU-TEAPOT, which is not in the catalog' });
    await poisoned.waitFor({ timeout: 60000 });
    if (await poisoned.count() !== 1) throw new Error(`${await poisoned.count()} dead-letter rows for the stock`);
    const letterId = await poisoned.getAttribute('data-dlq');
    const row = await poisoned.locator('td').allTextContents();
    if (row[1] !== 'inventory' || !row[2].startsWith('inventory.events[')
      || !row[3].includes('add it to the catalog file (--catalog) and restart, then redrive this dead letter')) {
      throw new Error(`dead-letter row shows ${JSON.stringify(row)}`);
    }
    await page.getByTestId('dlq-count').filter({ hasText: /^1 pending$/ }).waitFor({ timeout: 10000 });
    const letter = (await (await fetch(`${base}/dlq`)).json()).dead_letters.find((d) => String(d.id) === letterId);
    if (!letter || letter.attempts !== 3 || letter.key !== 'SKU-TEAPOT' || letter.redriven_at_ms !== null) {
      throw new Error(`GET /dlq shows ${JSON.stringify(letter)}`);
    }
    // Everything else kept flowing: the inventory service is past the record.
    await page.getByTestId('total-lag').filter({ hasText: /^lag 0$/ }).waitFor({ timeout: 60000 });
    console.log(`dead letter ${letterId} parked by inventory: ${letter.error}`);

    // The fix: the SKU in up's catalog. Stop up (SIGTERM: a clean exit), start
    // it again on the same data dir (its archive keeps the log) and port.
    await page.goto('about:blank');  // no requests to a stopped server
    const stopped = await stopUp(up, 'SIGTERM', 45000);
    if (stopped.code !== 0) throw new Error(`orderflow up exited with ${JSON.stringify(stopped)} on SIGTERM`);
    up = startUp(path.join(dataDir, 'data'), biggerCatalogFile, port);
    const restarted = await up.started;
    if (restarted.base !== base) throw new Error(`restarted on ${restarted.base}, not ${base}`);
    const teapot = async () => {
      const res = await fetch(`${base}/stock`);
      if (!res.ok) return undefined;
      return (await res.json()).stock.find((x) => x.sku === 'SKU-TEAPOT')?.available;
    };
    await until('the restarted inventory service to serve stock', async () => (await teapot()) !== undefined, 90000);
    await page.goto(`${base}/`);
    await page.getByTestId('ready').filter({ hasText: 'ready' }).waitFor({ timeout: 30000 });
    const teapotCell = page.locator('#stock-rows tr[data-sku="SKU-TEAPOT"] td.num');
    await teapotCell.filter({ hasText: /^0$/ }).waitFor({ timeout: 10000 });  // parked, so not applied
    await page.getByTestId(`redrive-${letterId}`).click();
    await page.getByTestId('ops-message').filter({ hasText: `Redrove dead letter ${letterId}` })
      .waitFor({ timeout: 15000 });
    await teapotCell.filter({ hasText: /^5$/ }).waitFor({ timeout: 30000 });
    await page.locator(`#dlq-rows tr[data-dlq="${letterId}"][data-state="redriven"]`).waitFor({ timeout: 10000 });
    await page.getByTestId(`redriven-${letterId}`).filter({ hasText: /^redriven \S/ }).waitFor();
    if (await page.getByTestId(`redrive-${letterId}`).count() !== 0) throw new Error('the Redrive button stayed');
    await page.getByTestId('dlq-count').filter({ hasText: /^0 pending$/ }).waitFor({ timeout: 10000 });
    // Applied once: still 5 once every consumer is at the log's end.
    await page.getByTestId('total-lag').filter({ hasText: /^lag 0$/ }).waitFor({ timeout: 60000 });
    if (await teapot() !== 5) throw new Error(`GET /stock shows ${await teapot()} x SKU-TEAPOT, not 5`);
    await teapotCell.filter({ hasText: /^5$/ }).waitFor({ timeout: 10000 });
    const after = (await (await fetch(`${base}/dlq`)).json()).dead_letters;
    if (after.length !== 1 || after[0].redriven_at_ms === null) throw new Error(`GET /dlq shows ${JSON.stringify(after)}`);
    const opsShot = path.join(outputDir, 'browser-redrive.png');
    await page.locator('#operations').screenshot({ path: opsShot });
    console.log(`screenshot: ${opsShot}`);

    if (pageErrors.length) throw new Error(`the page logged errors: ${pageErrors.join('; ')}`);
    console.log(`PASS: order ${orderId} placed and followed to delivered; dead letter ${letterId} (stock for a SKU `
      + 'not in the catalog) redriven from the page after the fix, 5 x SKU-TEAPOT in stock');
  } finally {
    if (browser) await browser.close();
    await stopUp(up, 'SIGINT', 15000);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err) => fail(err.stack || err.message));
