// orderflow's web page: everything it shows comes from the HTTP API.
'use strict';

const $ = (id) => document.getElementById(id);
const state = { currency: 'EUR', selected: null, source: null, after: null };

function money(minor, currency = state.currency) {
  return (minor / 100).toLocaleString(undefined, { style: 'currency', currency });
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// fetch + JSON; throws Error(message from the API's {"error": ...}).
async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  const token = $('token').value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(path, { ...options, headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
  return body;
}

async function loadCatalog() {
  const catalog = await api('/catalog');
  state.currency = catalog.currency;
  const rows = $('catalog-rows');
  rows.replaceChildren();
  catalog.items.forEach((item, i) => {
    const qty = el('input', { type: 'number', min: '0', max: '1000', value: i === 0 ? '1' : '0',
      name: item.sku, 'aria-label': `quantity of ${item.name}`, 'data-testid': `qty-${item.sku}` });
    rows.append(el('tr', {}, el('td', {}, el('code', {}, item.sku)), el('td', {}, item.name),
      el('td', { class: 'num' }, money(item.price_minor)), el('td', { class: 'num' }, qty)));
  });
}

async function placeOrder(event) {
  event.preventDefault();
  const message = $('form-message');
  const lines = [...$('catalog-rows').querySelectorAll('input')]
    .filter((input) => Number(input.value) > 0)
    .map((input) => ({ sku: input.name, quantity: Number(input.value) }));
  if (lines.length === 0) {
    message.textContent = 'Choose a quantity for at least one item.';
    message.className = 'error';
    return;
  }
  const button = $('order-form').querySelector('button');
  button.disabled = true;
  try {
    const body = { customer_id: $('customer').value.trim(), lines };
    const address = $('address').value.trim();
    if (address) body.shipping_address = address;
    const placed = await api('/orders', { method: 'POST', body,
      headers: { 'Idempotency-Key': crypto.randomUUID ? crypto.randomUUID() : String(Math.random()) } });
    message.textContent = `Placed order …${placed.order_id.slice(-8)} at log position ${placed.position}.`;
    message.className = '';
    // Read your write: the list and timeline wait until the projection has it.
    await api(placed.status_url);
    select(placed.order_id);
    refreshOrders();
  } catch (err) {
    message.textContent = err.message;
    message.className = 'error';
  } finally {
    button.disabled = false;
  }
}

async function refreshOrders() {
  const params = new URLSearchParams({ limit: '50', sort: 'newest' });
  if ($('mine').checked && $('customer').value.trim()) params.set('customer', $('customer').value.trim());
  if ($('status-filter').value) params.set('status', $('status-filter').value);
  try {
    const page = await api(`/orders?${params}`);
    const rows = $('order-rows');
    rows.replaceChildren(...page.orders.map((o) => {
      const row = el('tr', { 'data-order': o.order_id },
        el('td', {}, el('code', {}, o.order_id.slice(-8))), el('td', {}, o.customer_id),
        el('td', {}, el('span', { class: `badge ${o.status}` }, o.status)),
        el('td', { class: 'num' }, money(o.total_minor, o.currency)),
        el('td', { class: 'muted' }, new Date(o.placed_at).toLocaleTimeString()));
      if (o.order_id === state.selected) row.classList.add('selected');
      row.addEventListener('click', () => select(o.order_id));
      return row;
    }));
  } catch (err) {
    console.warn('orders:', err.message);
  }
}

function setStatus(order) {
  const badge = $('timeline-status');
  badge.textContent = order.status;
  badge.className = `badge ${order.status}`;
  $('cancel').hidden = ['shipped', 'delivered', 'cancelled', 'payment_declined', 'inventory_rejected']
    .includes(order.status);
}

// Follows one order: its history as server-sent events, one per lifecycle event.
async function select(orderId) {
  if (state.source) state.source.close();
  state.selected = orderId;
  $('timeline-empty').hidden = true;
  $('timeline-body').hidden = false;
  $('timeline-id').textContent = orderId;
  const list = $('timeline-events');
  list.replaceChildren();
  for (const row of document.querySelectorAll('#order-rows tr')) {
    row.classList.toggle('selected', row.dataset.order === orderId);
  }
  try {
    setStatus(await api(`/orders/${orderId}`));
  } catch (err) {
    $('timeline-status').textContent = err.message;
  }
  const source = new EventSource(`/orders/${orderId}/events`);
  state.source = source;
  const onEvent = async (message) => {
    const e = JSON.parse(message.data);
    list.append(el('li', { 'data-type': e.type }, el('span', { class: 'type' }, e.type), ' ',
      el('time', { datetime: e.time || e.record_time }, new Date(e.time || e.record_time).toLocaleTimeString()),
      el('div', {}, e.summary || e.error || '')));
    if (state.selected === orderId) {
      try { setStatus(await api(`/orders/${orderId}`)); } catch (err) { /* keep the last status */ }
    }
  };
  // Every event type arrives as its own SSE event name; listen to all of them.
  for (const type of ['OrderPlaced', 'PaymentAuthorized', 'PaymentDeclined', 'InventoryReserved',
    'InventoryRejected', 'PaymentRefunded', 'OrderShipped', 'OrderDelivered', 'OrderCancelled',
    'NotificationSent', 'InventoryLineReserved', 'InventoryLineRejected', 'InventoryLineReleased',
    'NotificationRequested']) {
    source.addEventListener(type, onEvent);
  }
  source.onmessage = onEvent;
}

async function cancelSelected() {
  if (!state.selected) return;
  try {
    const r = await api(`/orders/${state.selected}/cancel`, { method: 'POST', body: { reason: 'cancelled on the web page' } });
    setStatus(await api(r.status_url));
  } catch (err) {
    $('timeline-status').textContent = err.message;
  }
}

function drawChart(perHour) {
  const chart = $('chart');
  chart.replaceChildren();
  const W = 600, H = 220, left = 40, right = 50, top = 10, bottom = 30;
  const rows = perHour.slice(-24);
  if (rows.length === 0) {
    chart.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'no orders yet'));
    return;
  }
  const maxOrders = Math.max(1, ...rows.map((r) => r.orders));
  const maxRevenue = Math.max(1, ...rows.map((r) => r.revenue_minor));
  const step = (W - left - right) / rows.length;
  const y = (v, max) => H - bottom - (v / max) * (H - top - bottom);
  const points = [];
  rows.forEach((r, i) => {
    const x = left + i * step;
    const width = Math.min(step * 0.7, 36);
    const bar = svg('rect', { class: 'bar', x: x + (step - width) / 2, width, y: y(r.orders, maxOrders),
      height: H - bottom - y(r.orders, maxOrders) });
    bar.append(svg('title', {}, `${r.hour}: ${r.orders} orders, ${money(r.revenue_minor)}`));
    chart.append(bar);
    points.push(`${x + step / 2},${y(r.revenue_minor, maxRevenue)}`);
    if (rows.length <= 12 || i % Math.ceil(rows.length / 12) === 0) {
      chart.append(svg('text', { x: x + step / 2, y: H - 12, 'text-anchor': 'middle' },
        new Date(r.hour).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })));
    }
  });
  chart.append(svg('polyline', { class: 'line', points: points.join(' ') }));
  for (const p of points) {
    const [cx, cy] = p.split(',');
    chart.append(svg('circle', { class: 'dot', cx, cy, r: 3 }));
  }
  chart.append(svg('text', { x: 4, y: top + 8 }, String(maxOrders)));
  chart.append(svg('text', { x: W - right + 4, y: top + 8 }, money(maxRevenue)));
}

async function refreshAnalytics() {
  try {
    const a = await api('/analytics');
    $('gross').textContent = money(a.revenue.gross_minor);
    $('refunded').textContent = money(a.revenue.refunded_minor);
    $('net').textContent = money(a.revenue.net_minor);
    $('delivered').textContent = a.delivered;
    $('lead-time').textContent = a.delivered ? `${(a.average_placed_to_delivered_ms / 1000).toFixed(1)} s` : '–';
    $('by-status').textContent = Object.entries(a.orders_by_status).map(([s, n]) => `${s} ${n}`).join(' · ');
    $('top-skus').textContent = a.top_skus_by_revenue.length
      ? `Top by revenue: ${a.top_skus_by_revenue.map((s) => `${s.sku} ${money(s.revenue_minor)}`).join(', ')}` : '';
    drawChart(a.orders_per_hour);
  } catch (err) {
    console.warn('analytics:', err.message);
  }
}

// The operator's view: services and their lag, throughput, stock, dead letters.
async function refreshOperations() {
  try {
    const lag = await api('/lag');
    $('total-lag').textContent = `lag ${lag.total_lag}`;
    $('total-lag').className = `badge ${lag.total_lag === 0 ? 'ready' : 'shipped'}`;
    $('health').replaceChildren(...lag.services.map((s) => el('span', {
      class: `badge ${s.running ? 'ready' : 'down'}`, title: s.detail || 'running', 'data-service': s.service,
    }, s.service), ' '));
    const byConsumer = new Map();
    for (const c of lag.consumers) {
      const row = byConsumer.get(c.consumer) || { partitions: 0, lag: 0 };
      row.partitions += 1;
      row.lag += c.lag;
      byConsumer.set(c.consumer, row);
    }
    $('lag-rows').replaceChildren(...[...byConsumer].map(([name, r]) => el('tr', { 'data-consumer': name },
      el('td', {}, name), el('td', { class: 'num' }, r.partitions), el('td', { class: 'num' }, r.lag))));
  } catch (err) {
    console.warn('lag:', err.message);
  }
  try {
    const stock = await api('/stock');
    $('stock-rows').replaceChildren(...stock.stock.map((s) => el('tr', { 'data-sku': s.sku },
      el('td', {}, el('code', {}, s.sku)), el('td', {}, s.name), el('td', { class: 'num' }, s.available))));
  } catch (err) {
    console.warn('stock:', err.message);
  }
  try {
    // Pending ones (with a Redrive button) above the redriven ones, newest first in each.
    const dlq = await api('/dlq');
    const letters = [...dlq.dead_letters].sort((a, b) =>
      (a.redriven_at_ms !== null) - (b.redriven_at_ms !== null) || b.id - a.id);
    const pending = letters.filter((d) => d.redriven_at_ms === null).length;
    $('dlq-empty').hidden = letters.length > 0;
    document.querySelector('table.dlq').hidden = letters.length === 0;
    $('dlq-count').textContent = letters.length ? `${pending} pending` : '';
    $('dlq-count').className = `badge ${pending ? 'down' : 'ready'}`;
    $('dlq-count').hidden = letters.length === 0;
    $('dlq-rows').replaceChildren(...letters.map((d) => {
      let action;
      if (d.redriven_at_ms === null) {
        action = el('button', { type: 'button', 'data-testid': `redrive-${d.id}` }, 'Redrive');
        action.addEventListener('click', () => redrive(d.id));
      } else {
        const at = new Date(d.redriven_at_ms);
        action = el('span', { class: 'redriven', 'data-testid': `redriven-${d.id}`, title: at.toLocaleString() },
          el('span', { class: 'badge ready' }, 'redriven'), ' ',
          el('time', { datetime: at.toISOString() }, at.toLocaleTimeString()));
      }
      return el('tr', { 'data-dlq': d.id, 'data-state': d.redriven_at_ms === null ? 'pending' : 'redriven' },
        el('td', {}, d.id), el('td', {}, d.service),
        el('td', {}, el('code', {}, d.source.topic), el('wbr'), el('code', {}, `[${d.source.partition}]@${d.source.offset}`)),
        el('td', { class: 'error' }, d.error), el('td', {}, action));
    }));
  } catch (err) {
    console.warn('dlq:', err.message);
  }
}

async function redrive(id) {
  const message = $('ops-message');
  try {
    const r = await api(`/dlq/${id}/redrive`, { method: 'POST' });
    message.textContent = `Redrove dead letter ${r.redriven.join(', ')} (${r.appended} record appended).`;
    message.className = '';
  } catch (err) {
    message.textContent = err.message;
    message.className = 'error';
  }
  refreshOperations();
}

// Events per second, one point per 10 s, with a label per minute.
async function refreshThroughput() {
  let points = [];
  try {
    points = (await api('/throughput')).points;
  } catch (err) {
    console.warn('throughput:', err.message);
    return;
  }
  const chart = $('throughput');
  chart.replaceChildren();
  const W = 600, H = 160, left = 40, right = 10, top = 10, bottom = 24;
  if (points.length < 2) {
    chart.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'measuring…'));
    return;
  }
  const t0 = points[0].time_ms, t1 = points[points.length - 1].time_ms;
  const max = Math.max(1, ...points.map((p) => p.events_per_second));
  const x = (t) => left + ((t - t0) / Math.max(1, t1 - t0)) * (W - left - right);
  const y = (v) => H - bottom - (v / max) * (H - top - bottom);
  chart.append(svg('polyline', { class: 'line',
    points: points.map((p) => `${x(p.time_ms)},${y(p.events_per_second)}`).join(' ') }));
  for (let m = Math.ceil(t0 / 60000) * 60000; m <= t1; m += 60000) {
    chart.append(svg('text', { x: x(m), y: H - 8, 'text-anchor': 'middle', 'data-minute': m },
      new Date(m).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })));
  }
  chart.append(svg('text', { x: 4, y: top + 8 }, `${Math.round(max)}/s`));
}

async function refreshReady() {
  const badge = $('ready');
  try {
    const res = await fetch('/readyz');
    const body = await res.json();
    badge.textContent = body.ready ? 'ready' : `not ready: ${body.reason}`;
    badge.className = `badge ${body.ready ? 'ready' : 'down'}`;
  } catch (err) {
    badge.textContent = 'unreachable';
    badge.className = 'badge down';
  }
}

// EventSource sends no Authorization header: with a token, the page trades it
// for a session cookie (HttpOnly, SameSite=Strict) that the streams carry.
async function login() {
  const token = $('token').value.trim();
  if (!token) return;
  try {
    await api('/session', { method: 'POST', body: { token } });
  } catch (err) {
    $('form-message').textContent = `token: ${err.message}`;
    $('form-message').className = 'error';
  }
}

async function main() {
  $('token').value = localStorage.getItem('orderflow-token') || '';
  $('token').addEventListener('change', async () => {
    localStorage.setItem('orderflow-token', $('token').value);
    await login();
    await loadCatalog().catch((err) => { $('form-message').textContent = `catalog: ${err.message}`; });
    refreshOrders();
    refreshAnalytics();
    if (state.selected) select(state.selected);
  });
  await login();
  $('order-form').addEventListener('submit', placeOrder);
  $('cancel').addEventListener('click', cancelSelected);
  $('mine').addEventListener('change', refreshOrders);
  $('status-filter').addEventListener('change', refreshOrders);
  $('customer').addEventListener('change', refreshOrders);
  try {
    await loadCatalog();
  } catch (err) {
    $('form-message').textContent = `catalog: ${err.message}`;
  }
  refreshReady();
  refreshOrders();
  refreshAnalytics();
  refreshOperations();
  refreshThroughput();
  setInterval(refreshOperations, 2000);
  setInterval(refreshThroughput, 10000);
  setInterval(refreshOrders, 1500);
  setInterval(refreshAnalytics, 5000);
  setInterval(refreshReady, 5000);
}

main();
