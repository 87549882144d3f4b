// Browser tests of the viewer with real traffic: curl goes through mitmd to a TLS upstream on
// loopback; headless Chromium watches the viewer. Run by run.sh (ctest label "browser"):
//   MITMD=path/to/mitmd ARTIFACTS=dir node --test viewer_test.js
// Screenshots land in ARTIFACTS for people to look at.
'use strict';
const {test, before, after} = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const harValidator = require('har-validator');
const h = require('./harness');
const {make, makePng} = require('./make_flows');

const MITMD = process.env.MITMD;
const ARTIFACTS = process.env.ARTIFACTS || path.join(__dirname, 'artifacts');
fs.mkdirSync(ARTIFACTS, {recursive: true});

let dir, pki, upstream, upstreamUrl, mitmd, browser, viewer;

async function shot(page, name) {
  await page.screenshot({path: path.join(ARTIFACTS, `${name}.png`)});
}

// The table's rows that are rendered and visible, as {path, status, host}.
async function visibleRows(page) {
  return page.$$eval('.row:not([hidden])', (rows) => rows.map((r) => ({
    seq: Number(r.querySelector('.seq').textContent),
    path: r.querySelector('.path').textContent,
    status: r.querySelector('.status').textContent,
    host: r.querySelector('.host').textContent,
  })));
}

async function rowWithPath(page, p) {
  const handle = await page.waitForFunction((want) => {
    for (const r of document.querySelectorAll('.row:not([hidden])')) {
      if (r.querySelector('.path').textContent === want) return r;
    }
    return null;
  }, p, {timeout: 15000});
  return handle.asElement();
}

async function setFilter(page, text) {
  await page.click('#filter');
  await page.fill('#filter', text);
  await page.press('#filter', 'Enter');
  await page.waitForFunction((t) => new URL(location.href).searchParams.get('filter') === (t || null) ||
    (!t && !new URL(location.href).searchParams.has('filter')), text);
  await page.waitForFunction(() => !document.getElementById('count').textContent.includes('…'));
}

before(async () => {
  assert.ok(MITMD && fs.existsSync(MITMD), 'set MITMD to the mitmd binary');
  dir = h.tempDir('mitmd-browser-');
  pki = h.makePki(dir);
  upstream = await h.startUpstream(pki, makePng(64, 64));
  upstreamUrl = `https://localhost:${upstream.address().port}`;
  mitmd = await h.startMitmd(MITMD, dir, [], pki);
  browser = await h.launchBrowser();
  viewer = await h.openViewer(browser, mitmd.viewer);
});

after(async () => {
  if (browser) await browser.close();
  if (mitmd) {
    const code = await mitmd.stop();
    assert.equal(code, 0, `mitmd exited with ${code}:\n${mitmd.stderr().slice(-3000)}`);
  }
  if (upstream) upstream.close();
  if (dir) fs.rmSync(dir, {recursive: true, force: true});
});

test('an empty viewer says how to send traffic', async () => {
  const {page} = viewer;
  await page.waitForSelector('#empty:not([hidden])');
  const text = await page.textContent('#empty');
  assert.match(text, /Waiting for traffic/);
  assert.ok(text.includes(mitmd.proxy), 'the hint names the proxy address');
  await shot(page, '01-empty');
});

test('a flow appears live in the table without a reload', async () => {
  const {page} = viewer;
  const navigations = viewer.navigations();
  assert.equal(await h.curlThrough(mitmd, `${upstreamUrl}/api/data.json`, ['--compressed']), 200);
  const row = await rowWithPath(page, '/api/data.json');
  assert.ok(row);
  assert.equal(viewer.navigations(), navigations, 'the page did not reload');
  const rows = await visibleRows(page);
  assert.equal(rows[0].path, '/api/data.json');
  assert.equal(rows[0].status, '200');
  assert.equal(rows[0].host, `localhost:${upstream.address().port}`);
});

test('the detail pane shows a decoded gzip JSON body', async () => {
  const {page} = viewer;
  const row = await rowWithPath(page, '/api/data.json');
  await row.click();
  await page.waitForSelector('.d-url');
  assert.equal(await page.textContent('.d-url'), `${upstreamUrl}/api/data.json`);
  await page.keyboard.press('3');  // Response tab
  const json = await page.waitForSelector('#response-json');
  const text = await json.textContent();
  assert.deepEqual(JSON.parse(text), h.UPSTREAM_JSON, 'the gzip body is shown decoded and pretty-printed');
  assert.ok(text.includes('\n  "message"'), 'pretty-printed with indentation');
  assert.ok(await page.$('#response-json .j-key'), 'keys are highlighted');
  const info = await page.textContent('#response-body .body-info');
  assert.match(info, /gzip/);
  await shot(page, '02-detail-gzip-json');

  await page.keyboard.press('1');  // Overview: timing waterfall
  await page.waitForSelector('#waterfall .bar.wait');
  await page.keyboard.press('4');  // TLS of both sides
  const tls = await page.textContent('#detail-content');
  assert.match(tls, /Client ↔ mitmd/);
  assert.match(tls, /mitmd ↔ server/);
  assert.match(tls, /TLSv1\.[23]/);
  assert.match(tls, /verified/);
  await shot(page, '03-detail-tls');
});

test('images are shown and copy as curl gives a runnable command', async () => {
  const {page} = viewer;
  assert.equal(await h.curlThrough(mitmd, `${upstreamUrl}/img/logo.png`), 200);
  const row = await rowWithPath(page, '/img/logo.png');
  await row.click();
  await page.keyboard.press('3');
  const img = await page.waitForSelector('#body-image');
  await page.waitForFunction(() => document.getElementById('body-image').naturalWidth === 64);
  assert.ok(img);
  await page.click('#btn-curl');
  const cmd = await page.waitForFunction(() => window.__mitmdLastCurl);
  const curl = await cmd.jsonValue();
  assert.ok(curl.startsWith('curl '), curl);
  assert.ok(curl.includes(`'${upstreamUrl}/img/logo.png'`), curl);
  assert.ok(curl.includes("-H 'User-Agent: curl/"), curl);
  await shot(page, '04-detail-image');
});

test('a filter narrows the table, on the server too', async () => {
  const {page} = viewer;
  assert.equal(await h.curlThrough(mitmd, `${upstreamUrl}/missing`), 404);
  assert.equal(await h.curlThrough(mitmd, `${upstreamUrl}/page.html`), 200);
  assert.equal(await h.curlThrough(mitmd, `${upstreamUrl}/submit`, ['--data-binary', 'token=abc&x=1']), 201);
  await rowWithPath(page, '/submit');
  const all = (await visibleRows(page)).length;
  assert.ok(all >= 5, `expected at least 5 rows, saw ${all}`);

  await setFilter(page, 'status:>=400');
  let rows = await visibleRows(page);
  assert.deepEqual(rows.map((r) => r.path), ['/missing']);
  assert.match(await page.textContent('#count'), /1 flow matching/);
  await shot(page, '05-filter-status');

  await setFilter(page, 'method:POST ~body:token');
  rows = await visibleRows(page);
  assert.deepEqual(rows.map((r) => r.path), ['/submit']);

  await setFilter(page, '-type:image -type:json');
  rows = await visibleRows(page);
  assert.deepEqual(rows.map((r) => r.path), ['/page.html']);

  // A live flow that matches the active filter appears; one that does not, does not.
  await setFilter(page, 'path:/missing');
  assert.equal(await h.curlThrough(mitmd, `${upstreamUrl}/page.html`), 200);
  assert.equal(await h.curlThrough(mitmd, `${upstreamUrl}/missing`), 404);
  await page.waitForFunction(() => document.querySelectorAll('.row:not([hidden])').length === 2);
  rows = await visibleRows(page);
  assert.deepEqual(rows.map((r) => r.path), ['/missing', '/missing']);

  // Mistakes are explained, and the table keeps the last good filter.
  await page.fill('#filter', 'stauts:200');
  await page.waitForSelector('#filter-error:not([hidden])');
  assert.match(await page.textContent('#filter-error'), /unknown field 'stauts'/);
  await shot(page, '06-filter-error');
  await setFilter(page, '');
  assert.ok((await visibleRows(page)).length >= all);
});

test('keyboard: / focuses the filter, j and k move, Esc closes', async () => {
  const {page} = viewer;
  await page.click('#scroller');
  await page.keyboard.press('Escape');
  await page.keyboard.press('/');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'filter');
  await page.keyboard.press('Escape');
  await page.evaluate(() => document.activeElement.blur());
  await page.keyboard.press('j');
  const first = await page.$eval('.row.sel .seq', (e) => Number(e.textContent));
  await page.keyboard.press('j');
  const second = await page.$eval('.row.sel .seq', (e) => Number(e.textContent));
  assert.ok(second < first, 'j moves to an older flow');
  await page.keyboard.press('k');
  assert.equal(await page.$eval('.row.sel .seq', (e) => Number(e.textContent)), first);
  await page.waitForSelector('#detail-body:not([hidden])');
  await page.keyboard.press('Escape');
  await page.waitForSelector('#detail-placeholder:not([hidden])');
  assert.equal(await page.$('.row.sel'), null);
});

test('HAR export downloads and validates against the HAR 1.2 schema', async () => {
  const {page} = viewer;
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#btn-har')]);
  assert.match(download.suggestedFilename(), /^mitmd-.*\.har$/);
  const file = path.join(ARTIFACTS, 'session.har');
  await download.saveAs(file);
  const har = JSON.parse(fs.readFileSync(file, 'utf8'));
  await harValidator.har(har);  // throws with the schema errors when invalid
  const entries = har.log.entries;
  assert.ok(entries.length >= 7, `entries: ${entries.length}`);
  const data = entries.find((e) => e.request.url.endsWith('/api/data.json'));
  assert.ok(data);
  assert.deepEqual(JSON.parse(data.response.content.text), h.UPSTREAM_JSON, 'HAR holds the decoded body');
  assert.ok(data.timings.wait >= 0 && data.timings.receive >= 0 && data.time > 0);

  // With a filter, the export follows it.
  await setFilter(page, 'status:404');
  const [filtered] = await Promise.all([page.waitForEvent('download'), page.click('#btn-har')]);
  const subset = JSON.parse(fs.readFileSync(await filtered.path(), 'utf8'));
  await harValidator.har(subset);
  assert.ok(subset.log.entries.length >= 2);
  assert.ok(subset.log.entries.every((e) => e.response.status === 404));
  await setFilter(page, '');
});

test('a session log picked in the viewer is imported and shown', async () => {
  const {page} = viewer;
  const file = path.join(dir, 'colleague.jsonl');
  fs.writeFileSync(file, make(25, false).map((f) => JSON.stringify(f)).join('\n') + '\n');
  const before = Number((await page.textContent('#count')).replace(/[^\d]/g, ''));
  await page.setInputFiles('#import-file', file);
  // An earlier test's toast may still be showing: wait for this one's text.
  await page.waitForFunction(() => /Imported 25 flows from colleague\.jsonl/.test(
      document.getElementById('toast').textContent), null, {timeout: 15000});
  assert.match(await page.textContent('#toast'), /Imported 25 flows from colleague\.jsonl/);
  await page.waitForFunction((n) => document.getElementById('count').textContent === `${n} flows`, before + 25);
  await shot(page, '07-imported');
});

test('the root certificate page explains every platform', async () => {
  const page = await viewer.context.newPage();
  await page.goto(new URL('/ca', mitmd.viewer).href);
  const text = await page.textContent('body');
  for (const platform of ['Linux', 'Firefox', 'macOS', 'Windows', 'Android', 'iOS']) {
    assert.ok(text.includes(platform), platform);
  }
  await page.screenshot({path: path.join(ARTIFACTS, '08-root-ca-page.png'), fullPage: true});
  const [pem] = await Promise.all([page.waitForEvent('download'), page.click('a[href="/ca/mitmd-ca.pem"]')]);
  assert.equal(fs.readFileSync(await pem.path(), 'utf8'), fs.readFileSync(mitmd.root, 'utf8'));
  await page.close();
});

test('dark theme and the connections view', async () => {
  const {page} = viewer;
  await page.click('#btn-theme');
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
  await setFilter(page, 'host:localhost');
  const row = await rowWithPath(page, '/api/data.json');
  await row.click();
  await page.keyboard.press('3');
  await page.waitForSelector('#response-json');
  await shot(page, '09-dark');
  await page.click('#tab-conns');
  await page.waitForSelector('#view-conns:not([hidden])');
  await page.waitForFunction(() => document.getElementById('conns-count').textContent !== '');
  // Every curl above was one client connection and one upstream connection, both closed now.
  const sides = await page.$$eval('#conns-body tr', (rows) => rows.map((r) => r.dataset.side));
  assert.ok(sides.filter((s) => s === 'client').length >= 7, `sides: ${sides}`);
  assert.ok(sides.filter((s) => s === 'upstream').length >= 7, `sides: ${sides}`);
  assert.match(await page.textContent('#conns-body'), /TLSv1\.3/);
  await shot(page, '10-connections');
  await page.click('#tab-flows');
  await page.click('#btn-theme');
  await setFilter(page, '');
});

test('50,000 flows: the table stays virtualised and fast', async () => {
  const bigDir = h.tempDir('mitmd-browser-big-');
  const log = path.join(bigDir, 'big.jsonl');
  fs.writeFileSync(log, make(50000, true).map((f) => JSON.stringify(f)).join('\n') + '\n');
  const big = await h.startMitmd(MITMD, bigDir, ['--load', log]);
  const v = await h.openViewer(browser, big.viewer);
  try {
    const {page} = v;
    const t0 = Date.now();
    await page.waitForFunction(() => document.getElementById('count').textContent === '50,000 flows',
      null, {timeout: 120000});
    const loadMs = Date.now() - t0;
    const rendered = await page.$$eval('.row', (r) => r.length);
    assert.ok(rendered < 150, `only visible rows are in the DOM (saw ${rendered})`);

    // Scroll through the whole table and time each step.
    const stepMs = await page.evaluate(async () => {
      const s = document.getElementById('scroller');
      const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
      const times = [];
      for (let i = 1; i <= 30; i++) {
        const start = performance.now();
        s.scrollTop = (s.scrollHeight - s.clientHeight) * i / 30;
        await frame();
        await frame();
        times.push(performance.now() - start);
      }
      times.sort((a, b) => a - b);
      return times[Math.floor(times.length * 0.9)];
    });
    const lastSeq = await page.$$eval('.row:not([hidden]) .seq', (e) => Math.min(...e.map((x) => Number(x.textContent))));
    assert.equal(lastSeq, 1, 'the oldest flow is reachable');
    assert.ok(stepMs < 120, `p90 scroll step ${stepMs.toFixed(1)} ms`);

    // Filtering 50,000 flows on the server.
    const f0 = Date.now();
    await setFilter(page, 'status:5xx host:api.example.com');
    const filterMs = Date.now() - f0;
    const count = await page.textContent('#count');
    assert.match(count, /^[\d,]+ flows? matching$/);
    await shot(page, '11-fifty-thousand-filtered');
    fs.writeFileSync(path.join(ARTIFACTS, 'fifty-thousand.json'),
      JSON.stringify({load_ms: loadMs, scroll_p90_ms: stepMs, filter_ms: filterMs, rendered_rows: rendered, filtered: count}, null, 2));
    console.log(`# 50k flows: loaded in ${loadMs} ms, p90 scroll step ${stepMs.toFixed(1)} ms, ` +
      `filter applied in ${filterMs} ms (${count}), ${rendered} rows in the DOM`);
    assert.deepEqual(v.problems, [], 'no console errors');
    await v.context.close();
  } finally {
    assert.equal(await big.stop(), 0);
    fs.rmSync(bigDir, {recursive: true, force: true});
  }
});

test('no console errors or warnings in the viewer', async () => {
  assert.deepEqual(viewer.problems, []);
});
