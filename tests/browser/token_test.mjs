// The web page against `orderflow up` with an API token ($ORDERFLOW_API_TOKEN,
// so it is not on the command line), in Debian's headless Chromium: without
// the token the page gets nothing but health; with it typed into the page's
// token field, the page logs in (a session cookie for its event streams),
// places an order and follows it to delivered. With --https the same runs
// over HTTPS: a certificate from scripts/https-cert.sh, its CA trusted by the
// browser's NSS database and by Node, and a Secure session cookie.
// Environment: see harness.mjs.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  checkPrograms, demoCatalog, fail, freePort, launchBrowser, makeHttps, outputDir, request, startUp, stopUp,
} from './harness.mjs';

const token = 'browser-test-token-4f1c';
const overHttps = process.argv.includes('--https');

async function main() {
  checkPrograms();
  mkdirSync(outputDir, { recursive: true });
  const dataDir = mkdtempSync(path.join(tmpdir(), 'orderflow-browser-token-'));
  const catalogFile = path.join(dataDir, 'catalog.csv');
  writeFileSync(catalogFile, `${demoCatalog.join('\n')}\n`);
  const tls = overHttps ? makeHttps(dataDir) : null;
  const up = startUp(path.join(dataDir, 'data'), catalogFile, await freePort(),
    { env: { ORDERFLOW_API_TOKEN: token }, extraArgs: tls ? tls.upArgs : [] });
  let browser;
  try {
    const { base } = await up.started;
    if (!base.startsWith(overHttps ? 'https://' : 'http://')) throw new Error(`up serves ${base}`);
    const ca = tls?.ca;
    if ((await request(`${base}/orders`, { ca })).status !== 401) {
      throw new Error('GET /orders without the token is not 401');
    }
    const withToken = await request(`${base}/orders`, { ca, headers: { Authorization: `Bearer ${token}` } });
    if (withToken.status !== 200) throw new Error(`GET /orders with the token gave ${withToken.status}`);

    browser = await launchBrowser({ home: tls?.home });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const pageErrors = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`${base}/`);
    await page.getByTestId('ready').filter({ hasText: 'ready' }).waitFor({ timeout: 30000 });
    // No token yet: the catalog is refused and the page says why.
    await page.getByTestId('form-message').filter({ hasText: /catalog: .*(token|Authorization)/ })
      .waitFor({ timeout: 15000 });
    if (await page.getByTestId('qty-SKU-KETTLE').count() !== 0) throw new Error('the catalog loaded without a token');

    // Log in: type the token, leave the field.
    await page.locator('#token').fill(token);
    await page.locator('#token').press('Tab');
    await page.getByTestId('qty-SKU-KETTLE').waitFor({ timeout: 15000 });
    const cookies = await page.context().cookies(base);
    const session = cookies.find((c) => c.name === 'orderflow_session');
    if (!session || !session.httpOnly) throw new Error(`no HttpOnly session cookie: ${JSON.stringify(cookies)}`);
    if (session.secure !== overHttps) throw new Error(`the session cookie's Secure is ${session.secure}`);

    await page.getByTestId('qty-SKU-ESPRESSO').fill('0');
    await page.getByTestId('qty-SKU-KETTLE').fill('1');
    await page.locator('#customer').fill('cust-token');
    await page.getByTestId('place-order').click();
    await page.getByTestId('form-message').filter({ hasText: 'Placed order' }).waitFor({ timeout: 15000 });
    await page.getByTestId('timeline-id').filter({ hasText: /^[0-9a-f-]{36}$/ }).waitFor({ timeout: 15000 });
    const orderId = (await page.getByTestId('timeline-id').textContent()).trim();
    // The timeline's event stream carries the cookie: it follows the order to the end.
    await page.locator('#timeline-events li[data-type="OrderDelivered"]').waitFor({ timeout: 60000 });
    await page.getByTestId('timeline-status').filter({ hasText: 'delivered' }).waitFor({ timeout: 10000 });
    const order = JSON.parse((await request(`${base}/orders/${orderId}`,
      { ca, headers: { Authorization: `Bearer ${token}` } })).text);
    if (order.status !== 'delivered' || order.customer_id !== 'cust-token') {
      throw new Error(`API shows ${JSON.stringify(order)}`);
    }
    const shot = path.join(outputDir, overHttps ? 'browser-token-https.png' : 'browser-token.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);
    if (pageErrors.length) throw new Error(`the page logged errors: ${pageErrors.join('; ')}`);
    console.log(`PASS: logged in with the API token in the page${overHttps ? ' over HTTPS' : ''}; order ${orderId} ` +
      'placed and followed to delivered');
  } finally {
    if (browser) await browser.close();
    await stopUp(up, 'SIGINT', 15000);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err) => fail(err.stack || err.message));
