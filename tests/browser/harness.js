// Test harness for the viewer's browser tests: a TLS upstream on loopback with its own CA, a
// mitmd process with the viewer on a free port, curl through the proxy, and headless Chromium
// driven by playwright-core. Everything listens on 127.0.0.1 only and is stopped at the end.
'use strict';
const {execFileSync, spawn, execFile} = require('child_process');
const fs = require('fs');
const https = require('https');
const os = require('os');
const path = require('path');
const zlib = require('zlib');

// Variables that would make a client trust something or go somewhere we did not choose.
const SCRUBBED = ['SSL_CERT_FILE', 'SSL_CERT_DIR', 'CURL_CA_BUNDLE', 'REQUESTS_CA_BUNDLE', 'NODE_EXTRA_CA_CERTS',
  'http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY', 'no_proxy', 'NO_PROXY'];
function cleanEnv(extra) {
  const env = {...process.env};
  for (const k of SCRUBBED) delete env[k];
  return {...env, ...extra};
}

function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

// A CA and a localhost leaf made with the openssl CLI.
function makePki(dir) {
  const run = (args) => execFileSync('openssl', args, {cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], env: cleanEnv()});
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key',
    '-out', 'ca.pem', '-days', '2', '-subj', '/CN=mitmd viewer test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key',
    '-out', 'leaf.csr', '-subj', '/CN=localhost']);
  fs.writeFileSync(path.join(dir, 'leaf.ext'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  run(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.pem',
    '-days', '2', '-extfile', 'leaf.ext']);
  return {ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'leaf.pem'), key: path.join(dir, 'leaf.key')};
}

// What the upstream serves: a gzip JSON API, an image, a page, a 404.
const UPSTREAM_JSON = {
  message: 'hello from upstream',
  items: [{id: 1, name: 'alpha'}, {id: 2, name: 'beta'}],
  secret: 'needle-42',
};

// A nested document for folding and search.
const NESTED_JSON = {
  service: 'inventory',
  warehouses: [
    {name: 'north', bins: [{sku: 'A-1', qty: 4}, {sku: 'A-2', qty: 0}], tags: ['cold', 'needle-in-north']},
    {name: 'south', bins: [{sku: 'B-1', qty: 9}], tags: ['dry']},
  ],
  meta: {generated: '2026-01-01T00:00:00Z', deep: {deeper: {deepest: 'needle-deep'}}},
};
const XML_DOC = '<?xml version="1.0"?><feed><title>Orders</title><entry id="1"><sku>A-1</sku><qty>4</qty></entry>' +
  '<entry id="2"><sku>needle-sku</sku><qty>0</qty></entry></feed>';

function startUpstream(pki, png) {
  const server = https.createServer({key: fs.readFileSync(pki.key), cert: fs.readFileSync(pki.cert)}, (req, res) => {
    const url = new URL(req.url, 'https://localhost');
    if (url.pathname === '/echo') {
      // Records what arrived, so a test can compare what a copied snippet sent.
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        server.requests.push({method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks)});
        const body = Buffer.from(JSON.stringify({received: Buffer.concat(chunks).length}));
        res.writeHead(200, {'Content-Type': 'application/json', 'Content-Length': body.length});
        res.end(body);
      });
    } else if (url.pathname === '/slow') {
      // The head at once, the body 2.5 s later: a flow that stays live for a while.
      res.writeHead(200, {'Content-Type': 'text/plain', 'Content-Length': 4});
      res.write('sl');
      setTimeout(() => res.end('ow'), 2500);
    } else if (url.pathname === '/api/nested.json') {
      const body = Buffer.from(JSON.stringify(NESTED_JSON));
      res.writeHead(200, {'Content-Type': 'application/json', 'Content-Length': body.length});
      res.end(body);
    } else if (url.pathname === '/feed.xml') {
      res.writeHead(200, {'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(XML_DOC)});
      res.end(XML_DOC);
    } else if (url.pathname === '/api/data.json') {
      const body = zlib.gzipSync(Buffer.from(JSON.stringify(UPSTREAM_JSON)));
      res.writeHead(200, {'Content-Type': 'application/json', 'Content-Encoding': 'gzip', 'Content-Length': body.length});
      res.end(body);
    } else if (url.pathname === '/img/logo.png') {
      res.writeHead(200, {'Content-Type': 'image/png', 'Content-Length': png.length});
      res.end(png);
    } else if (url.pathname === '/page.html') {
      const body = Buffer.from('<!doctype html><title>upstream page</title><h1>It works</h1>');
      res.writeHead(200, {'Content-Type': 'text/html; charset=utf-8', 'Content-Length': body.length});
      res.end(body);
    } else if (url.pathname === '/submit' && req.method === 'POST') {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.from(JSON.stringify({received: Buffer.concat(chunks).length}));
        res.writeHead(201, {'Content-Type': 'application/json', 'Content-Length': body.length});
        res.end(body);
      });
    } else {
      const body = Buffer.from(JSON.stringify({error: 'not found'}));
      res.writeHead(404, {'Content-Type': 'application/json', 'Content-Length': body.length});
      res.end(body);
    }
  });
  server.requests = [];
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// Starts mitmd and waits for its "proxy listening on" and "viewer listening on" lines.
function startMitmd(binary, dir, extraArgs, pki) {
  const conf = path.join(dir, 'conf');
  const args = ['--confdir', conf, '--listen', '127.0.0.1:0', '--web', '127.0.0.1:0',
    '--flows', path.join(dir, 'flows.jsonl'), '--upstream-allow', '127.0.0.0/8,::1'];
  if (pki) args.push('--upstream-ca', pki.ca);
  args.push(...extraArgs);
  const child = spawn(binary, args, {env: cleanEnv({HOME: dir}), stdio: ['ignore', 'pipe', 'pipe']});
  let out = '', err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`mitmd did not start within 60 s\nstdout:\n${out}\nstderr:\n${err.slice(-4000)}`));
    }, 60000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`mitmd exited with ${code}\nstdout:\n${out}\nstderr:\n${err.slice(-4000)}`));
    });
    const check = () => {
      const proxy = /proxy listening on (\S+)/.exec(out);
      const viewer = /viewer listening on (\S+)/.exec(out);
      if (proxy && viewer) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve({
          child, conf, proxy: proxy[1], viewer: viewer[1], root: path.join(conf, 'mitmd-ca.pem'),
          stderr: () => err,
          stop: () => new Promise((res) => {
            if (child.exitCode !== null) return res(child.exitCode);
            child.on('exit', (code) => res(code));
            child.kill('SIGTERM');
            setTimeout(() => child.kill('SIGKILL'), 10000);
          }),
        });
      }
    };
    child.stdout.on('data', check);
  });
}

// curl through the proxy, trusting only mitmd's root.
function curlThrough(mitmd, url, extra = []) {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-q', '--silent', '--show-error', '--max-time', '20', '--proxy', `http://${mitmd.proxy}`,
      '--cacert', mitmd.root, '-o', '/dev/null', '-w', '%{http_code}', ...extra, url],
    {env: cleanEnv()}, (error, stdout, stderr) => {
      if (error) reject(new Error(`curl ${url}: ${stderr || error.message}`));
      else resolve(Number(stdout));
    });
  });
}

async function launchBrowser() {
  const {chromium} = require('playwright-core');
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

// A page that records console errors, warnings and page errors for the final assertion.
async function openViewer(browser, url, opts = {}) {
  const context = await browser.newContext({acceptDownloads: true, viewport: opts.viewport || {width: 1440, height: 900},
    colorScheme: opts.colorScheme || 'light'});
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], {origin: new URL(url).origin});
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => {
    // Expected failures that the browser logs anyway: probing the session store's endpoint on a
    // server without it (404), and checking a filter with a mistake in it (400, shown to the user).
    const where = m.location().url || '';
    if (/\/api\/sessions$/.test(where) || (/\/api\/filter\?/.test(where) && /status of 400/.test(m.text()))) return;
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  let navigations = 0;
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations++; });
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById('live-text').textContent === 'live');
  return {page, context, problems, navigations: () => navigations};
}

// The viewer's page served from web/ by a scripted stand-in for mitmd's API, for orderings that
// real traffic cannot produce on demand (snapshots of a running flow arriving out of order).
// flows: the list; details: id -> full flow; push(event, data) sends on every event stream.
function startScriptedViewer(webDir) {
  const http = require('http');
  const streams = new Set();
  const api = {flows: [], details: new Map()};
  const types = {'.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml'};
  const json = (res, code, body) => {
    res.writeHead(code, {'Content-Type': 'application/json'});
    res.end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const p = url.pathname;
    if (p === '/api/info') return json(res, 200, {proxy: '127.0.0.1:8080', version: 'scripted'});
    if (p === '/api/filter') return json(res, 200, {ok: true, empty: !url.searchParams.get('q')});
    if (p === '/api/flows') return json(res, 200, {flows: api.flows, next_before: 0, total: api.flows.length});
    if (p.startsWith('/api/flows/')) {
      const d = api.details.get(p.slice('/api/flows/'.length));
      return d ? json(res, 200, d) : json(res, 404, {error: 'no such flow'});
    }
    if (p === '/api/events') {
      res.writeHead(200, {'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store'});
      res.write('event: hello\ndata: {}\n\n');
      streams.add(res);
      req.on('close', () => streams.delete(res));
      return undefined;
    }
    if (p.startsWith('/api/')) return json(res, 404, {error: 'unknown API path'});
    const file = path.join(webDir, p === '/' ? 'index.html' : path.basename(p));
    if (!fs.existsSync(file)) { res.writeHead(404); res.end(); return undefined; }
    res.writeHead(200, {'Content-Type': types[path.extname(file)] || 'application/octet-stream'});
    res.end(fs.readFileSync(file));
    return undefined;
  });
  api.push = (event, data) => {
    for (const res of streams) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  api.close = () => new Promise((resolve) => {
    for (const res of streams) res.end();
    server.close(resolve);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    api.url = `http://127.0.0.1:${server.address().port}/`;
    resolve(api);
  }));
}

module.exports = {startScriptedViewer, cleanEnv, tempDir, makePki, startUpstream, startMitmd, curlThrough, launchBrowser, openViewer, UPSTREAM_JSON,
  NESTED_JSON, XML_DOC};
