// HTTP/2 and WebSocket through mitmd with real clients (issue 9). Headless Chromium trusts
// mitmd's root through an NSS database in its own HOME (no certificate errors ignored) and loads,
// through the proxy, a page with 30 subresources from an HTTP/2-only server (Node's http2): one
// client connection, one upstream connection, every flow HTTP/2. A page opens a WebSocket to an
// HTTP/1.1 server (Node `ws` on a port of its own: Chromium has no HTTP/2 connection to that
// origin to open it on with RFC 8441, so it uses HTTP/1.1): its
// messages are recorded and shown in the viewer's Messages tab. A page opens a WebSocket to its
// own h2 origin: Chromium sends it as an RFC 8441 extended CONNECT on that connection, and mitmd
// records it so (the server gets an HTTP/1.1 Upgrade). Node's `ws` client, through a
// CONNECT tunnel it opens itself: text, binary, a 1 MiB message, ping, and its close code.
// Run by run.sh (ctest label "browser"): MITMD=path/to/mitmd node --test h2_test.js
'use strict';
const {test, before, after} = require('node:test');
const assert = require('node:assert/strict');
const {execFileSync} = require('child_process');
const fs = require('fs');
const http = require('http');
const http2 = require('http2');
const https = require('https');
const path = require('path');
const tls = require('tls');
const {WebSocket, WebSocketServer} = require('ws');
const h = require('./harness');

const MITMD = process.env.MITMD;
const ARTIFACTS = process.env.ARTIFACTS || path.join(__dirname, 'artifacts');
fs.mkdirSync(ARTIFACTS, {recursive: true});
const SUBRESOURCES = 30;

let dir, pki, h2server, wsHttps, wss, mitmd, browser, context;

// The recorded flows (mitmd's --flows file), once at least |n| are there (bounded wait).
async function flowsWhen(pred, what) {
  const file = path.join(dir, 'flows.jsonl');
  for (let i = 0; i < 300; i++) {
    const flows = fs.existsSync(file) ?
      fs.readFileSync(file, 'utf8').split('\n').filter((l) => l).map((l) => JSON.parse(l)) : [];
    if (pred(flows)) return flows;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

function startH2Server() {
  const server = http2.createSecureServer({key: fs.readFileSync(pki.key), cert: fs.readFileSync(pki.cert)});
  server.sessions = 0;
  server.on('session', () => server.sessions++);
  server.on('stream', (stream, headers) => {
    const p = headers[':path'];
    if (p === '/page.html') {
      const items = [];
      for (let i = 0; i < SUBRESOURCES; i++) items.push(`<script src="/r/${i}.js"></script>`);
      stream.respond({':status': 200, 'content-type': 'text/html; charset=utf-8'});
      stream.end(`<!doctype html><title>h2 page</title><script>window.loaded = 0;</script>${items.join('')}`);
    } else if (/^\/r\/\d+\.js$/.test(p)) {
      stream.respond({':status': 200, 'content-type': 'text/javascript'});
      stream.end('window.loaded++;');
    } else if (p === '/ws.html') {
      const port = wsHttps.address().port;
      stream.respond({':status': 200, 'content-type': 'text/html; charset=utf-8'});
      stream.end(`<!doctype html><title>ws page</title><script>
        window.got = [];
        const ws = new WebSocket('wss://localhost:${port}/chat');
        ws.onopen = () => { ws.send('hello from chromium'); ws.send(new Uint8Array([1, 2, 3])); };
        ws.onmessage = async (m) => {
          window.got.push(typeof m.data === 'string' ? m.data : 'binary');
          if (window.got.length === 2) ws.close(4001, 'page done');
        };
      </script>`);
    } else {
      stream.respond({':status': 404});
      stream.end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// An HTTP/1.1 TLS server with a WebSocket echo on it.
function startWsServer() {
  const server = https.createServer({key: fs.readFileSync(pki.key), cert: fs.readFileSync(pki.cert)});
  wss = new WebSocketServer({server, perMessageDeflate: true});
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, {binary: isBinary}));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

before(async () => {
  assert.ok(MITMD && fs.existsSync(MITMD), 'set MITMD to the mitmd binary');
  dir = h.tempDir('mitmd-h2-browser-');
  pki = h.makePki(dir);
  h2server = await startH2Server();
  wsHttps = await startWsServer();
  mitmd = await h.startMitmd(MITMD, dir, [], pki);
  // Chromium trusts mitmd's root the way a user would set it up: in its NSS database.
  const home = path.join(dir, 'chromium-home');
  const nss = path.join(home, '.pki', 'nssdb');
  fs.mkdirSync(nss, {recursive: true});
  execFileSync('certutil', ['-N', '-d', `sql:${nss}`, '--empty-password']);
  execFileSync('certutil', ['-A', '-d', `sql:${nss}`, '-t', 'C,,', '-n', 'mitmd-root', '-i', mitmd.root]);
  const {chromium} = require('playwright-core');
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    proxy: {server: `http://${mitmd.proxy}`}, env: h.cleanEnv({HOME: home}),
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  context = await browser.newContext();
});

after(async () => {
  if (browser) await browser.close();
  if (mitmd) {
    const code = await mitmd.stop();
    assert.equal(code, 0, `mitmd exited with ${code}:\n${mitmd.stderr().slice(-3000)}`);
  }
  if (h2server) h2server.close();
  if (wss) wss.close();
  if (wsHttps) wsHttps.close();
  if (dir) fs.rmSync(dir, {recursive: true, force: true});
});

test('Chromium loads an h2 page with 30 subresources: one connection each side, every flow HTTP/2', async () => {
  const page = await context.newPage();
  const url = `https://localhost:${h2server.address().port}/page.html`;
  const response = await page.goto(url);
  assert.equal(response.status(), 200);
  await page.waitForFunction((n) => window.loaded === n, SUBRESOURCES, {timeout: 30000});
  await page.close();
  const flows = await flowsWhen((f) => f.filter((x) => x.request && /\/(page\.html|r\/\d+\.js)$/.test(x.request.path))
    .length >= SUBRESOURCES + 1, 'the page and its subresources');
  const mine = flows.filter((x) => x.request && /\/(page\.html|r\/\d+\.js)$/.test(x.request.path));
  assert.equal(mine.length, SUBRESOURCES + 1);
  for (const f of mine) {
    assert.equal(f.request.version, 'HTTP/2', JSON.stringify(f.request));
    assert.equal(f.response.version, 'HTTP/2');
    assert.equal(f.response.status, 200);
    assert.equal(f.client.tls.alpn, 'h2');
  }
  assert.equal(new Set(mine.map((f) => f.client.conn)).size, 1, 'Chromium multiplexes on one connection');
  assert.equal(new Set(mine.map((f) => f.server.conn)).size, 1, 'mitmd shares one upstream connection');
  assert.equal(h2server.sessions, 1, 'the server saw one connection');
});

test('a WebSocket opened by a page is recorded message by message and shown in the viewer', async () => {
  const page = await context.newPage();
  await page.goto(`https://localhost:${h2server.address().port}/ws.html`);
  await page.waitForFunction(() => window.got.length === 2, null, {timeout: 30000});
  assert.deepEqual(await page.evaluate(() => window.got), ['hello from chromium', 'binary']);
  await page.close();
  const flows = await flowsWhen((f) => f.some((x) => x.websocket && x.websocket.close), 'the WebSocket flow');
  const ws = flows.find((x) => x.websocket && x.websocket.close);
  const texts = ws.websocket.messages.filter((m) => m.opcode === 'text');
  assert.equal(texts.length, 2, JSON.stringify(ws.websocket));
  assert.equal(ws.websocket.close.code, 4001);

  // The viewer lists the messages (a browser without the proxy: mitmd refuses its own viewer
  // through the proxy).
  const viewer = await h.launchBrowser();
  try {
    const vp = await viewer.newPage();
    await vp.goto(mitmd.viewer);
    await vp.fill('#filter', 'is:ws');
    await vp.keyboard.press('Enter');
    // The first row once the filter has applied (before, it can be any flow, with no Messages tab).
    await vp.waitForFunction(() => new URL(location.href).searchParams.get('filter') === 'is:ws' &&
      !document.getElementById('count').textContent.includes('…'));
    await vp.click('.row:not([hidden]) >> nth=0');
    await vp.click('.d-tab[data-tab="messages"]');
    await vp.waitForFunction(() => (document.getElementById('ws-messages') || {}).textContent?.includes('hello from chromium'),
      null, {timeout: 15000});
    await vp.screenshot({path: path.join(ARTIFACTS, 'h2-websocket-messages.png')});
  } finally {
    await viewer.close();  // a browser left open keeps the test runner from ending
  }
});

// A CONNECT tunnel through mitmd, as a socket for the TLS of a client that has no proxy support.
function tunnel(host, port) {
  return new Promise((resolve, reject) => {
    const [phost, pport] = mitmd.proxy.split(':');
    const req = http.request({host: phost, port: Number(pport), method: 'CONNECT', path: `${host}:${port}`,
      headers: {Host: `${host}:${port}`}});
    req.on('connect', (res, socket) => res.statusCode === 200 ? resolve(socket) :
      reject(new Error(`CONNECT answered ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
}

test('Node ws: text, binary, 1 MiB, ping and a client close code, recorded in order', async () => {
  const port = wsHttps.address().port;
  const socket = await tunnel('localhost', port);
  const ws = new WebSocket(`wss://localhost:${port}/node`, {
    perMessageDeflate: true,
    createConnection: () => tls.connect({socket, servername: 'localhost', ca: fs.readFileSync(mitmd.root)}),
  });
  const big = Buffer.alloc(1024 * 1024, 7);
  const got = [];
  await new Promise((resolve, reject) => {
    ws.on('error', reject);
    ws.on('open', () => {
      ws.send('node text');
      ws.send(Buffer.from([9, 8, 7]));
      ws.send(big);
      ws.ping('are you there');
    });
    ws.on('message', (data, isBinary) => {
      got.push(isBinary ? data.length : data.toString());
      if (got.length === 3) ws.close(4000, 'node done');
    });
    ws.on('close', resolve);
  });
  assert.deepEqual(got, ['node text', 3, big.length]);
  const flows = await flowsWhen((f) => f.some((x) => x.request && x.request.path === '/node' && x.websocket &&
    x.websocket.close), 'the Node WebSocket flow');
  const flow = flows.find((x) => x.request && x.request.path === '/node');
  const messages = flow.websocket.messages;
  const data = (fromClient) => messages.filter((m) => m.from_client === fromClient &&
    (m.opcode === 'text' || m.opcode === 'binary')).map((m) => [m.opcode, m.size]);
  const sent = [['text', 9], ['binary', 3], ['binary', big.length]];
  assert.deepEqual(data(true), sent, 'what the client sent, in order');
  assert.deepEqual(data(false), sent, 'the echoes, in order');
  assert.ok(messages.some((m) => m.opcode === 'ping'), 'the ping is recorded');
  assert.equal(flow.websocket.close.code, 4000);
});

// An HTTPS server that serves a page over HTTP/2 and, on the same origin, a WebSocket echo over
// HTTP/1.1 Upgrade (allowHTTP1).
async function startSameOriginWsServer() {
  const server = http2.createSecureServer({key: fs.readFileSync(pki.key), cert: fs.readFileSync(pki.cert),
    allowHTTP1: true});
  const echo = new WebSocketServer({noServer: true});
  echo.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, {binary: isBinary})));
  server.on('upgrade', (req, socket, head) => echo.handleUpgrade(req, socket, head, (ws) => echo.emit('connection', ws)));
  server.on('stream', (stream, headers) => {
    if (headers[':path'] === '/same-origin-ws.html') {
      stream.respond({':status': 200, 'content-type': 'text/html; charset=utf-8'});
      stream.end(`<!doctype html><title>same-origin ws</title><script>
        window.got = [];
        const ws = new WebSocket('wss://localhost:${server.address().port}/same-origin');
        ws.onopen = () => ws.send('hello over h2');
        ws.onmessage = (m) => { window.got.push(m.data); ws.close(1000, 'bye'); };
        ws.onclose = (e) => window.got.push('close ' + e.code);
      </script>`);
    } else {
      stream.respond({':status': 404});
      stream.end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

// RFC 8441 from a real browser: the page came over HTTP/2 from mitmd (which announced
// SETTINGS_ENABLE_CONNECT_PROTOCOL), so Chromium opens the WebSocket to the same origin as an
// extended CONNECT stream on that connection, not as an HTTP/1.1 Upgrade on a new one. The flow
// shows the client's side as that CONNECT and records the messages both ways.
test('Chromium opens a same-origin WebSocket as an HTTP/2 extended CONNECT, recorded', async () => {
  const server = await startSameOriginWsServer();
  try {
    const page = await context.newPage();
    await page.goto(`https://localhost:${server.address().port}/same-origin-ws.html`);
    await page.waitForFunction(() => window.got.length === 2, null, {timeout: 30000});
    assert.deepEqual(await page.evaluate(() => window.got), ['hello over h2', 'close 1000']);
    await page.close();
    const flows = await flowsWhen((f) => f.some((x) => x.request && x.request.path === '/same-origin' &&
      x.websocket && x.websocket.close), 'the same-origin WebSocket flow');
    const flow = flows.find((x) => x.request && x.request.path === '/same-origin');
    assert.equal(flow.request.version, 'HTTP/2', JSON.stringify(flow.request));
    assert.equal(flow.request.method, 'CONNECT');
    assert.ok(flow.request.headers.some(([name, value]) => name === ':protocol' && value === 'websocket'),
      JSON.stringify(flow.request.headers));
    const pageFlow = flows.find((x) => x.request && x.request.path === '/same-origin-ws.html');
    assert.equal(flow.client.conn, pageFlow.client.conn, 'on the connection the page came on');
    // The server's side: an HTTP/1.1 Upgrade (this server's SETTINGS do not allow extended
    // CONNECT, so mitmd negotiates the socket down).
    assert.equal(flow.response.status, 101, JSON.stringify(flow.response));
    assert.match(flow.note, /SETTINGS do not allow extended CONNECT/);
    const messages = flow.websocket.messages.map((m) => [m.from_client, m.opcode]);
    assert.deepEqual(messages, [[true, 'text'], [false, 'text'], [true, 'close'], [false, 'close']]);
    assert.equal(flow.websocket.close.code, 1000);
  } finally {
    server.close();
  }
});
