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
// Two animation frames: the table renders in one, so what a test reads is what it shows.
async function rendered(page) {
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

async function visibleRows(page) {
  await rendered(page);
  return page.$$eval('.row:not([hidden])', (rows) => rows.map((r) => ({
    seq: Number(r.querySelector('.seq').textContent),
    path: r.querySelector('.path').textContent,
    status: r.querySelector('.status').textContent,
    host: r.querySelector('.host').textContent,
  })));
}

// The row of the flow with path |p|, once that flow is done (|live|: as soon as it shows). The
// live stream delivers a flow's snapshots in batches, and each re-renders the table, which reuses
// row elements for other flows: a row found while its flow is still live can show another flow
// by the time it is clicked.
async function rowWithPath(page, p, {live = false} = {}) {
  await page.waitForFunction(({want, live}) => {
    for (const r of document.querySelectorAll('.row:not([hidden])')) {
      if (r.querySelector('.path').textContent === want) return live || r.querySelector('.status').textContent !== '…';
    }
    return false;
  }, {want: p, live}, {timeout: 15000});
  await rendered(page);
  const handle = await page.waitForFunction((want) => {
    for (const r of document.querySelectorAll('.row:not([hidden])')) {
      if (r.querySelector('.path').textContent === want) return r;
    }
    return null;
  }, p, {timeout: 15000});
  return handle.asElement();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Visible cells of |selector| (header cells or one row's cells) with their boxes.
async function cellBoxes(page, selector) {
  return page.$$eval(selector, (els) => els.filter((e) => getComputedStyle(e).display !== 'none').map((e) => {
    const r = e.getBoundingClientRect();
    return {cls: e.className, left: r.left, right: r.right, width: r.width, scroll: e.scrollWidth, client: e.clientWidth,
      text: e.textContent};
  }));
}

// No two columns overlap, none is too narrow to read, the header lines up with the rows, and
// nothing runs past the table's right edge.
async function assertColumnsReadable(page, label) {
  const pane = await page.$eval('#table-pane', (e) => e.getBoundingClientRect().right);
  const head = await cellBoxes(page, '#thead > .c');
  const row = await cellBoxes(page, '.row:not([hidden]) >> nth=0 >> .c');
  assert.ok(head.length >= 6, `${label}: ${head.length} columns`);
  for (let i = 0; i < head.length; i++) {
    assert.ok(head[i].width >= 30, `${label}: ${head[i].cls} is ${head[i].width}px wide`);
    if (i > 0) assert.ok(head[i - 1].right <= head[i].left + 0.5, `${label}: ${head[i - 1].cls} overlaps ${head[i].cls}`);
  }
  // Every row, whatever its state (selected, failed, live, marked), lines up with the header.
  const rows = await page.$$eval('.row:not([hidden])', (rs) => rs.map((r) => [...r.children]
    .filter((e) => getComputedStyle(e).display !== 'none')
    .map((e) => { const b = e.getBoundingClientRect(); return {left: b.left, right: b.right, cls: r.className}; })));
  for (const cells of rows) {
    assert.equal(cells.length, head.length, `${label}: a row has the header's columns`);
    for (let i = 0; i < head.length; i++) {
      assert.ok(Math.abs(head[i].left - cells[i].left) < 1 && Math.abs(head[i].right - cells[i].right) < 1,
        `${label}: ${head[i].cls} header and cell of a "${cells[i].cls}" line up`);
    }
  }
  assert.ok(head[head.length - 1].right <= pane + 0.5, `${label}: the last column ends inside the table`);
  return {head, row};
}

// The top bar's controls (and the session switcher when there is one) never cover each other.
async function assertTopbarClear(page, label) {
  const boxes = await page.$$eval('.topbar > :not(.actions), .actions > *', (els) => els
    .filter((e) => !e.hidden && getComputedStyle(e).display !== 'none' && e.getBoundingClientRect().width > 0)
    .map((e) => { const r = e.getBoundingClientRect(); return {id: e.id || e.className, l: r.left, r: r.right, t: r.top, b: r.bottom}; }));
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j];
      const overlap = Math.min(a.r, b.r) - Math.max(a.l, b.l) > 1 && Math.min(a.b, b.b) - Math.max(a.t, b.t) > 1;
      assert.ok(!overlap, `${label}: "${a.id}" and "${b.id}" overlap in the top bar`);
    }
  }
}

async function readClipboardAfter(page, action) {
  await page.evaluate(() => navigator.clipboard.writeText(''));
  await action();
  for (let i = 0; i < 100; i++) {
    const text = await page.evaluate(() => navigator.clipboard.readText());
    if (text) return text;
    await sleep(100);
  }
  throw new Error('nothing reached the clipboard');
}

async function menuAction(page, rowPath, action) {
  const row = await rowWithPath(page, rowPath);
  await row.click({button: 'right'});
  await page.waitForSelector('#ctx-menu:not([hidden])');
  await page.click(`#ctx-menu [data-action="${action}"]`);
}

function run(cmd, args, env, opts = {}) {
  return new Promise((resolve) => {
    const child = require('child_process').execFile(cmd, args, {env: h.cleanEnv(env), timeout: 30000,
      encoding: 'buffer', maxBuffer: 16 << 20}, (error, stdout, stderr) => {
      resolve({code: error ? (error.code ?? 1) : 0, stdout, stderr: stderr.toString()});
    });
    if (opts.input !== undefined) child.stdin.end(opts.input); else child.stdin.end();
  });
}

async function waitLoaded(page) {
  await page.waitForFunction(() => !document.getElementById('count').textContent.includes('…'));
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
  // Sizes: what crossed the wire (gzip) and what it decodes to.
  assert.match(info, /^\d+ B on the wire \(gzip\) · (\d+) B decoded/);
  assert.equal(Number(/· (\d+) B decoded/.exec(info)[1]), Buffer.byteLength(JSON.stringify(h.UPSTREAM_JSON)));
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
  const curl = await readClipboardAfter(page, () => page.click('#btn-curl'));
  assert.ok(curl.startsWith('curl '), curl);
  assert.ok(!curl.includes('--compressed'), curl);
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
  // End, Home, PageDown and PageUp move by the table's ends and by a page.
  const seqs = (await visibleRows(page)).map((r) => r.seq);
  await page.keyboard.press('End');
  assert.equal(await page.$eval('.row.sel .seq', (e) => Number(e.textContent)), Math.min(...seqs));
  await page.keyboard.press('Home');
  assert.equal(await page.$eval('.row.sel .seq', (e) => Number(e.textContent)), Math.max(...seqs));
  await page.keyboard.press('PageDown');
  assert.equal(await page.$eval('.row.sel .seq', (e) => Number(e.textContent)), Math.min(...seqs),
    'a page down from the first row of a short table is its last row');
  await page.keyboard.press('PageUp');
  assert.equal(await page.$eval('.row.sel .seq', (e) => Number(e.textContent)), Math.max(...seqs));
  await page.keyboard.press('Escape');
  await page.waitForSelector('#detail', {state: 'hidden'});
  assert.equal(await page.$('.row.sel'), null);
});

test('layout at 1440 px: the detail pane opens on selection, closes, resizes; columns stay readable', async () => {
  const {page} = viewer;
  assert.equal(await page.isVisible('#detail'), false, 'no detail pane before a selection');
  let {row} = await assertColumnsReadable(page, '1440, no selection');
  const host = row.find((c) => c.cls.includes('host'));
  assert.match(host.text, /^localhost:\d+$/);
  assert.ok(host.scroll <= host.client, `Host with its port is readable (${host.scroll} > ${host.client})`);
  const pathCell = row.find((c) => c.cls.includes('path'));
  assert.ok(pathCell.width >= 400, `Path has room: ${pathCell.width}px`);
  await shot(page, '12-layout-1440');

  await (await rowWithPath(page, '/page.html')).click();
  await page.waitForSelector('#detail:not([hidden]) .d-url');
  ({row} = await assertColumnsReadable(page, '1440, detail open'));
  const open = row.find((c) => c.cls.includes('path'));
  assert.ok(open.width >= 150, `Path still readable beside the detail pane: ${open.width}px`);
  const hostOpen = row.find((c) => c.cls.includes('host'));
  assert.ok(hostOpen.scroll <= hostOpen.client, 'Host readable beside the detail pane');
  await shot(page, '13-layout-1440-detail');

  // Drag the splitter 200 px to the left: the pane grows by as much, and keeps it after a reload.
  const before = await page.$eval('#detail', (e) => e.getBoundingClientRect().width);
  const s = await page.$eval('#splitter', (e) => { const r = e.getBoundingClientRect(); return {x: r.left + r.width / 2, y: r.top + 200}; });
  await page.mouse.move(s.x, s.y);
  await page.mouse.down();
  await page.mouse.move(s.x - 100, s.y, {steps: 4});
  await page.mouse.move(s.x - 200, s.y, {steps: 4});
  await page.mouse.up();
  const after = await page.$eval('#detail', (e) => e.getBoundingClientRect().width);
  assert.ok(Math.abs(after - before - 200) <= 3, `detail pane ${before} → ${after}`);
  await assertColumnsReadable(page, '1440, wide detail');
  await page.click('#btn-close-detail');
  await page.waitForSelector('#detail', {state: 'hidden'});
  await (await rowWithPath(page, '/page.html')).click();
  await page.waitForSelector('#detail:not([hidden]) .d-url');
  assert.ok(Math.abs(await page.$eval('#detail', (e) => e.getBoundingClientRect().width) - after) <= 1, 'width kept');
  await page.dblclick('#splitter');  // back to the default width
  await page.keyboard.press('Escape');
  await page.waitForSelector('#detail', {state: 'hidden'});
});

test('layout at 1024 px: no overlapping columns, with and without the detail pane', async () => {
  const v = await h.openViewer(browser, mitmd.viewer, {viewport: {width: 1024, height: 720}});
  try {
    const {page} = v;
    await rowWithPath(page, '/page.html');
    const {row} = await assertColumnsReadable(page, '1024, no selection');
    const host = row.find((c) => c.cls.includes('host'));
    assert.ok(host.scroll <= host.client, 'Host with its port is readable at 1024 px');
    const topbar = await page.$eval('.topbar', (e) => ({scroll: e.scrollWidth, client: e.clientWidth}));
    assert.ok(topbar.scroll <= topbar.client, 'the top bar fits');
    await assertTopbarClear(page, '1024');
    await shot(page, '14-layout-1024');
    await (await rowWithPath(page, '/page.html')).click();
    await page.waitForSelector('#detail:not([hidden]) .d-url');
    const open = await assertColumnsReadable(page, '1024, detail open');
    const names = open.head.map((c) => c.cls.split(' ')[1]);
    for (const must of ['method', 'host', 'path', 'status']) assert.ok(names.includes(must), `${must} stays: ${names}`);
    await shot(page, '15-layout-1024-detail');
    assert.deepEqual(v.problems, []);
  } finally {
    await v.context.close();
  }
});

test('sorting by a column asks the server and is remembered', async () => {
  const {page} = viewer;
  const statuses = async () => (await visibleRows(page)).map((r) => (r.status === 'ERR' ? -1 : Number(r.status)));
  const [req] = await Promise.all([
    page.waitForRequest((r) => /\/api\/flows\?.*sort=status&order=desc/.test(r.url())),
    page.click('#thead .c.status .lbl')]);
  assert.ok(req);
  await waitLoaded(page);
  let got = await statuses();
  assert.deepEqual(got, [...got].sort((a, b) => b - a), `descending: ${got}`);
  assert.ok(new Set(got).size >= 3, `several statuses to sort: ${got}`);
  assert.equal(await page.getAttribute('#thead .c.status', 'aria-sort'), 'descending');
  await page.click('#thead .c.status .lbl');
  await waitLoaded(page);
  got = await statuses();
  assert.deepEqual(got, [...got].sort((a, b) => a - b), `ascending: ${got}`);
  await shot(page, '16-sorted-status');

  // Remembered across a reload, from localStorage.
  assert.deepEqual(JSON.parse(await page.evaluate(() => localStorage.getItem('mitmd-sort'))), {key: 'status', order: 'asc'});
  await page.reload();
  await page.waitForFunction(() => document.getElementById('live-text').textContent === 'live');
  await waitLoaded(page);
  assert.equal(await page.getAttribute('#thead .c.status', 'aria-sort'), 'ascending');
  got = await statuses();
  assert.deepEqual(got, [...got].sort((a, b) => a - b));

  // Host sorts A to Z on the first click; Time brings back newest first.
  await page.click('#thead .c.time .lbl');
  await waitLoaded(page);
  const seqs = (await visibleRows(page)).map((r) => r.seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => b - a), 'time, newest first');
});

test('columns resize by dragging, are remembered, and reset on double-click', async () => {
  const {page} = viewer;
  const width = () => page.$eval('#thead .c.host', (e) => e.getBoundingClientRect().width);
  const w0 = await width();
  const rz = await page.$eval('#thead .c.host .rz', (e) => { const r = e.getBoundingClientRect(); return {x: r.left + r.width / 2, y: r.top + r.height / 2}; });
  await page.mouse.move(rz.x, rz.y);
  await page.mouse.down();
  await page.mouse.move(rz.x + 40, rz.y, {steps: 3});
  await page.mouse.move(rz.x + 80, rz.y, {steps: 3});
  await page.mouse.up();
  const w1 = await width();
  assert.ok(Math.abs(w1 - w0 - 80) <= 2, `Host ${w0} → ${w1}`);
  const cell = await page.$eval('.row:not([hidden]) .c.host', (e) => e.getBoundingClientRect().width);
  assert.ok(Math.abs(cell - w1) < 1, 'the rows follow the header');
  await assertColumnsReadable(page, 'after resize');
  await page.reload();
  await page.waitForFunction(() => document.getElementById('live-text').textContent === 'live');
  assert.ok(Math.abs(await width() - w1) < 1, 'remembered after a reload');
  await page.dblclick('#thead .c.host .rz');
  assert.ok(Math.abs(await width() - w0) < 1, 'double-click restores the default');
});

test('JSON and XML bodies fold, and a search inside a body finds and highlights', async () => {
  const {page} = viewer;
  assert.equal(await h.curlThrough(mitmd, `${upstreamUrl}/api/nested.json`), 200);
  await (await rowWithPath(page, '/api/nested.json')).click();
  await page.waitForSelector('.d-url');
  await page.keyboard.press('3');
  const json = await page.waitForSelector('#response-json.foldable');
  assert.deepEqual(JSON.parse(await json.textContent()), h.NESTED_JSON, 'the folded view is the document, text for text');
  const height = async () => (await json.boundingBox()).height;
  const full = await height();

  // Fold all: the top level stays open and shows what is folded inside.
  await page.click('#response-fold-all');
  assert.ok(await height() < full / 2, 'folding all collapses the view');
  const summaries = await page.$$eval('#response-json .fold:not(.open) > .fold-ell',
    (els) => els.filter((e) => e.offsetParent).map((e) => e.dataset.summary));
  assert.deepEqual(summaries, ['2 items', '2 keys'], 'warehouses and meta are folded with their sizes');
  assert.deepEqual(JSON.parse(await json.textContent()), h.NESTED_JSON, 'folding does not change the text');
  await shot(page, '17-json-folded');

  // Open "warehouses" by its toggle.
  await page.evaluate(() => {
    const key = [...document.querySelectorAll('#response-json .j-key')].find((k) => k.textContent === '"warehouses"');
    key.nextElementSibling.querySelector('.fold-toggle').dispatchEvent(new MouseEvent('click', {bubbles: true}));
  });
  assert.equal(await page.$eval('#response-json', (pre) => [...pre.querySelectorAll('.j-key')]
    .find((k) => k.textContent === '"warehouses"').nextElementSibling.classList.contains('open')), true);

  // Search: every match highlighted; Enter and Shift+Enter move; a match in a fold opens it.
  await page.fill('#response-search', 'needle');
  await page.waitForFunction(() => document.getElementById('response-search-count').textContent === '1/2');
  assert.equal(await page.evaluate(() => CSS.highlights.get('mitmd-search').size), 2);
  await page.press('#response-search', 'Enter');
  await page.waitForFunction(() => document.getElementById('response-search-count').textContent === '2/2');
  const deepVisible = await page.evaluate(() => {
    const range = [...CSS.highlights.get('mitmd-search-current')][0];
    return range.toString() === 'needle' && range.startContainer.parentElement.checkVisibility();
  });
  assert.ok(deepVisible, 'the match inside folded "meta" is opened and current');
  await page.press('#response-search', 'Shift+Enter');
  await page.waitForFunction(() => document.getElementById('response-search-count').textContent === '1/2');
  await page.fill('#response-search', 'no such text');
  await page.waitForFunction(() => document.getElementById('response-search-count').textContent === 'no match');
  await page.fill('#response-search', 'needle');
  await page.waitForFunction(() => document.getElementById('response-search-count').textContent === '1/2');
  await shot(page, '18-json-search');
  await page.click('#response-unfold-all');
  assert.ok(Math.abs(await height() - full) < 2, 'unfold all restores the view');

  assert.equal(await h.curlThrough(mitmd, `${upstreamUrl}/feed.xml`), 200);
  await (await rowWithPath(page, '/feed.xml')).click();
  const xml = await page.waitForSelector('#response-xml.foldable');
  const text = await xml.textContent();
  assert.ok(text.includes('<sku>needle-sku</sku>'), text);
  assert.ok(text.includes('<entry id="2">'), text);
  assert.equal(await page.$$eval('#response-xml .fold', (f) => f.length), 3, 'feed and two entries fold');
  await page.click('#response-fold-all');
  assert.equal(await page.$$eval('#response-xml .fold:not(.open)', (f) => f.length), 2);
  assert.equal(await page.inputValue('#response-search'), 'needle', 'the search is kept for the next body');
  await page.waitForFunction(() => document.getElementById('response-search-count').textContent === '1/1');
  await shot(page, '19-xml-search');
  await page.fill('#response-search', '');
});

test('context menu: copy as curl, Python, fetch, HTTPie and raw HTTP send the same binary body', async () => {
  const {page} = viewer;
  // Every byte value, and the characters shells and string literals care about.
  const body = Buffer.concat([Buffer.from(Array.from({length: 256}, (_, i) => i)),
    Buffer.from(`'"\\ $HOME \`id\` %s %% \r\n\0 \u00e9 end`)]);
  const file = path.join(dir, 'binary.bin');
  fs.writeFileSync(file, body);
  assert.equal(await h.curlThrough(mitmd, `${upstreamUrl}/echo?x=[1]&y=a%20b`, ['--globoff', '--data-binary', `@${file}`,
    '-H', 'Content-Type: application/octet-stream', '-H', `X-Quote: it's "quoted"`, '-H', 'Accept-Encoding: gzip, br']), 200);
  const rowPath = '/echo?x=[1]&y=a%20b';
  await rowWithPath(page, rowPath);

  const row = await rowWithPath(page, rowPath);
  await row.click({button: 'right'});
  await page.waitForSelector('#ctx-menu:not([hidden])');
  const actions = await page.$$eval('#ctx-menu .ctx-item', (els) => els.map((e) => e.dataset.action));
  for (const a of ['copy-url', 'copy-curl', 'copy-python', 'copy-fetch', 'copy-httpie', 'copy-raw', 'filter-host']) {
    assert.ok(actions.includes(a), `${a} in ${actions}`);
  }
  await shot(page, '20-context-menu');
  await page.keyboard.press('Escape');
  await page.waitForSelector('#ctx-menu', {state: 'hidden'});

  const url = await readClipboardAfter(page, () => menuAction(page, rowPath, 'copy-url'));
  assert.equal(url, `${upstreamUrl}${rowPath}`);

  const runners = {
    curl: (text) => run('bash', ['-c', text], {CURL_CA_BUNDLE: pki.ca}),
    python: (text) => run('/usr/bin/python3', ['-c', text], {REQUESTS_CA_BUNDLE: pki.ca}),
    fetch: (text) => run(process.execPath, ['--input-type=module', '-e', text], {NODE_EXTRA_CA_CERTS: pki.ca}),
    httpie: (text) => run('bash', ['-c', text], {REQUESTS_CA_BUNDLE: pki.ca, HOME: dir}),
  };
  for (const [kind, runner] of Object.entries(runners)) {
    const text = await readClipboardAfter(page, () => menuAction(page, rowPath, `copy-${kind}`));
    fs.writeFileSync(path.join(ARTIFACTS, `snippet.${kind}.txt`), text);
    assert.ok(!text.includes('--compressed'), `${kind}: no --compressed`);
    const n = upstream.requests.length;
    const res = await runner(text);
    assert.equal(res.code, 0, `${kind} failed:\n${res.stderr}\n${text.slice(0, 2000)}`);
    assert.equal(upstream.requests.length, n + 1, `${kind} reached the upstream`);
    const got = upstream.requests[n];
    assert.equal(got.method, 'POST', kind);
    // Clients differ in which query characters they percent-encode; the URL is the same.
    assert.equal(decodeURI(got.url), decodeURI(rowPath), kind);
    assert.ok(got.body.equals(body), `${kind} sent the body byte for byte (${got.body.length} of ${body.length} bytes)`);
    assert.equal(got.headers['content-type'], 'application/octet-stream', kind);
    assert.equal(got.headers['x-quote'], `it's "quoted"`, kind);
  }

  const raw = await readClipboardAfter(page, () => menuAction(page, rowPath, 'copy-raw'));
  const bytes = (await run('bash', ['-c', raw], {})).stdout;
  const head = `POST ${rowPath} HTTP/1.1\r\n`;
  assert.equal(bytes.subarray(0, head.length).toString(), head);
  assert.ok(bytes.subarray(bytes.length - body.length).equals(body), 'raw HTTP ends with the exact body');
  assert.ok(bytes.includes(Buffer.from('\r\n\r\n')));

  await menuAction(page, rowPath, 'filter-host');
  await page.waitForFunction(() => document.getElementById('filter').value === 'host:localhost');
  await setFilter(page, '');
});

test('marks, comments and delete from the context menu (hidden without the session store)', async () => {
  const {page} = viewer;
  const store = await page.evaluate(async () => (await fetch('/api/sessions')).ok);
  const row = await rowWithPath(page, '/page.html');
  await row.click({button: 'right'});
  await page.waitForSelector('#ctx-menu:not([hidden])');
  const actions = await page.$$eval('#ctx-menu .ctx-item', (els) => els.map((e) => e.dataset.action));
  await page.keyboard.press('Escape');
  if (!store) {
    for (const a of ['mark', 'comment', 'delete']) assert.ok(!actions.includes(a), `${a} is hidden: ${actions}`);
    assert.equal(await page.isVisible('#session-wrap'), false, 'no session switcher');
    return;
  }
  for (const a of ['mark', 'comment', 'delete']) assert.ok(actions.includes(a), `${a} in ${actions}`);
  await menuAction(page, '/page.html', 'mark');
  await page.waitForSelector('.row.marked');
  await menuAction(page, '/page.html', 'comment');
  await page.fill('#comment-text', 'checked by the browser test');
  await page.click('#comment-save');
  await page.waitForSelector('.row.marked .flag.comment[title="checked by the browser test"]');
  await page.reload();
  await page.waitForFunction(() => document.getElementById('live-text').textContent === 'live');
  await page.waitForSelector('.row.marked .flag.comment', {timeout: 15000});
  await shot(page, '21-marked-commented');
  const id = await page.$eval('.row.marked', (r) => r.dataset.id);
  await menuAction(page, '/page.html', 'delete');
  await page.waitForFunction((i) => !document.querySelector(`.row[data-id="${i}"]`), id);
  const left = await page.evaluate(async (i) => (await (await fetch(`/api/flows?filter=id:${i}`)).json()).flows.length, id);
  assert.equal(left, 0, 'the flow is gone on the server');
});

test('sessions: another session can be looked at while recording goes on (hidden without the store)', async () => {
  const store = await viewer.page.evaluate(async () => (await fetch('/api/sessions')).ok);
  if (!store) {
    assert.equal(await viewer.page.isVisible('#session-wrap'), false, 'no session switcher without the store');
    return;
  }
  // Yesterday's session: recorded by one run, then renamed, as a kept session would be.
  const sdir = h.tempDir('mitmd-browser-sessions-');
  let m = await h.startMitmd(MITMD, sdir, [], pki);
  let v = null;
  try {
    assert.equal(await h.curlThrough(m, `${upstreamUrl}/page.html?day=1`), 200);
    v = await h.openViewer(browser, m.viewer);
    await rowWithPath(v.page, '/page.html?day=1');
    await v.context.close();
    assert.equal(await m.stop(), 0);
    const sessions = path.join(m.conf, 'sessions');
    for (const suffix of ['', '-wal', '-shm']) {
      const from = path.join(sessions, `default.sqlite${suffix}`);
      if (fs.existsSync(from)) fs.renameSync(from, path.join(sessions, `yesterday.sqlite${suffix}`));
    }
    // The JSONL stream goes too: a new session would import it.
    fs.rmSync(path.join(sdir, 'flows.jsonl'), {force: true});
    m = await h.startMitmd(MITMD, sdir, [], pki);
    assert.equal(await h.curlThrough(m, `${upstreamUrl}/page.html?day=2`), 200);
    v = await h.openViewer(browser, m.viewer);
    const {page} = v;
    await rowWithPath(page, '/page.html?day=2');
    await page.waitForSelector('#session-wrap:not([hidden])');
    const options = await page.$$eval('#session option', (o) => o.map((x) => ({value: x.value, text: x.textContent})));
    assert.deepEqual(options.map((o) => o.value).sort(), ['default', 'yesterday']);
    assert.match(options.find((o) => o.value === 'default').text, /^● default · 1 flow · \d{4}-\d\d-\d\d/);
    assert.match(options.find((o) => o.value === 'yesterday').text, /^yesterday · 1 flow · \d{4}-\d\d-\d\d/);

    await page.selectOption('#session', 'yesterday');
    await rowWithPath(page, '/page.html?day=1');
    await page.waitForSelector('#session-banner:not([hidden])');
    assert.match(await page.textContent('#session-banner'), /Viewing session "yesterday".*recorded in "default"/);
    assert.match(page.url(), /[?&]session=yesterday/);
    assert.match(await page.getAttribute('#btn-har', 'href'), /session=yesterday/);
    assert.equal(await page.isDisabled('#btn-clear'), true, 'another session is read-only here');
    // Traffic goes on in "default" and does not show up here.
    assert.equal(await h.curlThrough(m, `${upstreamUrl}/page.html?day=3`), 200);
    await sleep(800);
    assert.deepEqual((await visibleRows(page)).map((r) => r.path), ['/page.html?day=1']);
    await (await rowWithPath(page, '/page.html?day=1')).click();
    await page.waitForFunction(() => document.querySelector('.d-url')?.textContent.endsWith('day=1'));
    await shot(page, '26-other-session');
    await assertTopbarClear(page, 'session switcher, 1440');
    await page.setViewportSize({width: 1024, height: 720});
    await assertTopbarClear(page, 'session switcher, 1024');
    await assertColumnsReadable(page, 'session switcher, 1024');
    await shot(page, '27-other-session-1024');
    await page.setViewportSize({width: 1440, height: 900});

    await page.click('#session-back');
    await rowWithPath(page, '/page.html?day=3');
    assert.deepEqual((await visibleRows(page)).map((r) => r.path), ['/page.html?day=3', '/page.html?day=2']);
    assert.equal(await page.isVisible('#session-banner'), false);
    assert.deepEqual(v.problems, []);
  } finally {
    if (v) await v.context.close();
    assert.equal(await m.stop(), 0);
    fs.rmSync(sdir, {recursive: true, force: true});
  }
});

test('the waterfall of a request on a reused connection has no connect or TLS phase', async () => {
  const {page} = viewer;
  // The upstream by its address, a name no other test uses: mitmd's pool holds idle connections
  // to localhost from the tests before, and the first request must make a new one.
  const wfUrl = `https://127.0.0.1:${upstream.address().port}`;
  const res = await run('curl', ['-q', '--silent', '--proxy', `http://${mitmd.proxy}`, '--cacert', mitmd.root,
    '-o', '/dev/null', '-o', '/dev/null', `${wfUrl}/page.html?wf=1`, `${wfUrl}/page.html?wf=2`], {});
  assert.equal(res.code, 0, res.stderr);
  // Both rows first: a row element is reused for another flow when rows arrive.
  await rowWithPath(page, '/page.html?wf=2');
  await (await rowWithPath(page, '/page.html?wf=1')).click();
  await page.keyboard.press('1');
  await page.waitForFunction(() => document.querySelector('.d-url')?.textContent.endsWith('wf=1') &&
    document.querySelector('#waterfall .bar'));
  const first = await page.evaluate(async (id) => (await (await fetch(`/api/flows/${id}`)).json()),
    await page.$eval('.row.sel', (r) => r.dataset.id));
  const why = JSON.stringify({server: first.server, timings: first.timings});
  assert.ok(await page.$('#waterfall .bar.connect'), `the first request connected: ${why}`);
  assert.ok(await page.$('#waterfall .bar.tls'), `the first request set up TLS: ${why}`);
  await (await rowWithPath(page, '/page.html?wf=2')).click();
  await page.waitForFunction(() => document.querySelector('.d-url')?.textContent.endsWith('wf=2'));
  await page.waitForSelector('#waterfall .bar.wait');
  const second = await page.evaluate(async (id) => (await (await fetch(`/api/flows/${id}`)).json()),
    await page.$eval('.row.sel', (r) => r.dataset.id));
  assert.equal(second.server.reused, true, 'the second request reused the upstream connection');
  // The pane may still be drawing the first request's waterfall for a frame or two: each phase
  // must be gone within a few seconds (a bar that stays fails the test).
  const gone = (bar) => page.waitForSelector(`#waterfall .bar.${bar}`, {state: 'detached', timeout: 5000});
  await gone('connect');
  await gone('tls');
  // Whether curl sends its second URL through the same tunnel is curl's choice (it differs
  // between machines): only on the same client connection is there no client handshake to draw.
  if (second.client.conn === first.client.conn) {
    await gone('client-tls');
  } else {
    assert.ok(await page.$('#waterfall .bar.client-tls'), `a new client connection shows its handshake: ${JSON.stringify(second.client)}`);
  }
  assert.match(await page.textContent('.wf-total'), /reused/);
  await shot(page, '22-waterfall-reused');
  await page.keyboard.press('Escape');
});

test('a live flow ticks while it runs, keeps its newest snapshot, and becomes a normal row when done', async () => {
  // A scripted event stream: snapshots of a running flow, one of them late, as the proxy's
  // publishing can deliver them.
  const fake = await h.startScriptedViewer(path.join(__dirname, '..', '..', 'web'));
  const v = await h.openViewer(browser, fake.url);
  try {
    const {page} = v;
    const now = Date.now() / 1000;
    const id = 'c0ffee00-0000-4000-a000-000000000001';
    const summary = (over) => ({seq: 1, id, t: now - 3, kind: 'http', method: 'GET', scheme: 'https', host: 'api.example.com',
      port: 443, path: '/live/long-poll', status: 0, type: '', size: 0, dur: null, tls: 'TLSv1.3', alpn: 'h2',
      state: 'live', revision: 1, ...over});
    const detail = (over) => ({id, kind: 'http', state: 'live', client: {conn: 1, addr: '127.0.0.1:50000'},
      server: {host: 'api.example.com', port: 443, conn: 2, reused: false},
      request: {method: 'GET', url: 'https://api.example.com/live/long-poll', version: 'HTTP/2', scheme: 'https',
        host: 'api.example.com', port: 443, path: '/live/long-poll', target: '/live/long-poll',
        headers: [['user-agent', 'browser-test']], body: {size: 0, truncated: false}},
      timings: {request_start: now - 3, request_end: now - 2.99}, duration_ms: null, ...over});
    fake.details.set(id, detail());
    fake.push('flow', summary());
    const row = await rowWithPath(page, '/live/long-poll', {live: true});
    assert.match(await row.getAttribute('class'), /\blive-flow\b/);
    assert.equal(await (await row.$('.status')).textContent(), '…');
    const elapsed = async () => parseFloat(await (await row.$('.dur')).textContent());
    const e1 = await elapsed();
    assert.ok(e1 >= 2.5 && e1 < 30, `elapsed ${e1} s`);
    await sleep(700);
    const e2 = await elapsed();
    assert.ok(e2 > e1, `the elapsed time ticks: ${e1} → ${e2}`);
    await assertColumnsReadable(page, 'with a live row');
    await row.click();
    const running = await page.waitForSelector('#detail-running');
    const r1 = await running.textContent();
    assert.match(r1, /^running for \d+\.\d s$/);
    await page.waitForFunction((t) => document.getElementById('detail-running').textContent !== t, r1);
    assert.equal(await page.textContent('#detail .pill'), 'waiting');
    await shot(page, '23-live-flow');

    // Revision 3 (response head) overtakes a late revision 2: the row keeps revision 3.
    fake.push('update', summary({revision: 3, status: 200, type: 'text/event-stream'}));
    fake.push('update', summary({revision: 2}));
    await page.waitForFunction(() => document.querySelector('.row .status')?.textContent === '200');
    await sleep(300);
    assert.equal(await page.textContent('.row .status'), '200', 'a late snapshot does not go back');
    assert.match(await page.getAttribute('.row', 'class'), /\blive-flow\b/, 'still running');

    // The record: a normal row, in place, that no longer ticks; a live snapshot after it is ignored.
    fake.details.set(id, detail({state: 'done', duration_ms: 3000,
      response: {status: 200, reason: 'OK', version: 'HTTP/2', headers: [['content-type', 'text/event-stream']],
        body: {size: 42, truncated: false}},
      timings: {request_start: now - 3, request_end: now - 2.99, response_start: now - 2.5, response_end: now}}));
    fake.push('update', summary({state: 'done', revision: 4, status: 200, size: 42, dur: 3000, type: 'text/event-stream'}));
    fake.push('update', summary({revision: 3, status: 200}));
    await page.waitForFunction(() => !document.querySelector('.row').classList.contains('live-flow'));
    await page.waitForFunction(() => !document.getElementById('detail-running'));
    assert.equal(await page.textContent('#detail .pill'), '200 OK');
    const rows = await page.$$eval('.row:not([hidden])', (rs) => rs.map((r) => ({
      status: r.querySelector('.status').textContent, dur: r.querySelector('.dur').textContent, cls: r.className})));
    assert.equal(rows.length, 1, 'one row, updated in place');
    assert.deepEqual(rows[0], {status: '200', dur: '3.00 s', cls: 'row sel'});
    await sleep(400);
    assert.equal(await page.textContent('.row .dur'), '3.00 s', 'a finished flow no longer ticks');
    assert.deepEqual(v.problems, []);
  } finally {
    await v.context.close();
    await fake.close();
  }
});

test('a request in flight through mitmd shows as a live row that ticks, then completes in place', async () => {
  const {page} = viewer;
  const done = h.curlThrough(mitmd, `${upstreamUrl}/slow`);
  const row = await rowWithPath(page, '/slow', {live: true});
  await page.waitForFunction(() => [...document.querySelectorAll('.row.live-flow .path')].some((p) => p.textContent === '/slow'));
  const dur = () => page.evaluate(() => [...document.querySelectorAll('.row')]
    .find((r) => r.querySelector('.path').textContent === '/slow').querySelector('.dur').textContent);
  const d1 = await dur();
  assert.match(d1, /^\d+\.\d s$/);
  await page.waitForFunction((t) => [...document.querySelectorAll('.row')]
    .find((r) => r.querySelector('.path').textContent === '/slow').querySelector('.dur').textContent !== t, d1);
  assert.ok(row);
  assert.equal(await done, 200);
  await page.waitForFunction(() => {
    const r = [...document.querySelectorAll('.row')].find((x) => x.querySelector('.path').textContent === '/slow');
    return r && !r.classList.contains('live-flow') && r.querySelector('.status').textContent === '200';
  });
  assert.equal(await page.$$eval('.row:not([hidden])', (rs) => rs.filter((r) => r.querySelector('.path').textContent === '/slow').length), 1,
    'one row, updated in place');
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

  // Imported flows from another day show their date; a tunnel says why; a failure says why.
  const time = await page.$eval('.row:not([hidden]) .time', (e) => e.textContent);
  assert.ok(time, 'a time is shown');
  await setFilter(page, 'is:tunnel host:pinned.example.com');
  const tunnel = await page.waitForSelector('.row:not([hidden])');
  assert.match(await (await tunnel.$('.time')).textContent(), /^06-1\d \d\d:\d\d:\d\d$/, 'the date of an old flow');
  await tunnel.click();
  await page.waitForSelector('#flow-note');
  assert.match(await page.textContent('#flow-note'), /auto-passthrough/);
  await shot(page, '24-tunnel-note');
  await setFilter(page, 'error:expired');
  await (await page.waitForSelector('.row:not([hidden])')).click();
  await page.waitForSelector('#flow-error');
  assert.match(await page.textContent('#flow-error'), /upstream certificate has expired/);
  await page.keyboard.press('2');
  assert.ok(await page.isVisible('#flow-error'), 'the error stays visible on every tab');
  await page.keyboard.press('Escape');
  await setFilter(page, '');
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
  // Every curl above was one client connection; upstream connections are pooled, so fewer.
  const sides = await page.$$eval('#conns-body tr', (rows) => rows.map((r) => r.dataset.side));
  const clients = sides.filter((s) => s === 'client').length;
  const upstreams = sides.filter((s) => s === 'upstream').length;
  assert.ok(clients >= 7, `sides: ${sides}`);
  assert.ok(upstreams >= 1 && upstreams <= clients, `sides: ${sides}`);
  assert.match(await page.textContent('#conns-body'), /TLSv1\.3/);
  await shot(page, '10-connections');
  await page.click('#tab-flows');
  await page.click('#btn-theme');
  await setFilter(page, '');
});

test('Clear empties the table; with the session store it can be undone for a moment', async () => {
  const {page} = viewer;
  await waitLoaded(page);
  const before = await page.$$eval('.row:not([hidden])', (r) => r.length);
  assert.ok(before > 5);
  await page.click('#btn-clear');
  await page.waitForSelector('#empty:not([hidden])');
  const store = await page.evaluate(async () => (await fetch('/api/sessions')).ok);
  if (!store) {
    assert.match(await page.textContent('#toast'), /Cleared \d+ flows from the viewer/);
    return;
  }
  await page.waitForSelector('#toast-action');
  assert.equal(await page.textContent('#toast-action'), 'Undo');
  await shot(page, '25-clear-undo');
  await page.click('#toast-action');
  await page.waitForFunction((n) => document.querySelectorAll('.row:not([hidden])').length === n, before);
});

// 50,000 flows; fewer in the sanitizer build (MITMD_BROWSER_BIG_FLOWS), where importing them
// alone takes minutes: still more than the first page of 10,000, so paging is exercised.
const BIG = Number(process.env.MITMD_BROWSER_BIG_FLOWS || 50000);
const BIG_TEXT = BIG.toLocaleString('en-US');

// --load imports in the background once mitmd listens: waits until the session holds |n| flows.
async function waitForTotal(viewerUrl, n) {
  const u = new URL(viewerUrl);
  u.pathname = '/api/flows';
  u.searchParams.set('limit', '1');
  for (let i = 0; i < 600; i++) {
    const r = await fetch(u);
    if (r.ok && (await r.json()).total === n) return;
    await new Promise((res) => setTimeout(res, 500));
  }
  throw new Error(`the session never held ${n} flows`);
}

test(`${BIG_TEXT} flows: the table stays virtualised and fast`, async () => {
  const bigDir = h.tempDir('mitmd-browser-big-');
  const log = path.join(bigDir, 'big.jsonl');
  fs.writeFileSync(log, make(BIG, true).map((f) => JSON.stringify(f)).join('\n') + '\n');
  const big = await h.startMitmd(MITMD, bigDir, ['--load', log]);
  await waitForTotal(big.viewer, BIG);
  const v = await h.openViewer(browser, big.viewer);
  try {
    const {page} = v;
    const t0 = Date.now();
    // The first 10,000 load at once; the rest page in as the table is scrolled to its end.
    await page.waitForFunction((t) => document.getElementById('count').textContent === `10,000 of ${t} flows`,
      BIG_TEXT, {timeout: 120000});
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
    const m0 = Date.now();
    const reached = await page.evaluate(async (t) => {
      const s = document.getElementById('scroller');
      const count = () => document.getElementById('count').textContent;
      for (let i = 0; i < 400 && count() !== `${t} flows`; i++) {
        s.scrollTop = s.scrollHeight;
        await new Promise((r) => setTimeout(r, 60));
      }
      s.scrollTop = s.scrollHeight;
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      return count();
    }, BIG_TEXT);
    const moreMs = Date.now() - m0;
    assert.equal(reached, `${BIG_TEXT} flows`, 'scrolling to the end loads the rest');
    const rows = await page.$$eval('.row', (r) => r.length);
    assert.ok(rows < 150, `still only visible rows in the DOM (saw ${rows})`);
    const lastSeq = await page.$$eval('.row:not([hidden]) .seq', (e) => Math.min(...e.map((x) => Number(x.textContent))));
    assert.equal(lastSeq, 1, 'the oldest flow is reachable');

    // Filtering them on the server.
    const f0 = Date.now();
    await setFilter(page, 'status:5xx host:api.example.com');
    const filterMs = Date.now() - f0;
    const count = await page.textContent('#count');
    assert.match(count, /^[\d,]+ flows? matching$/);
    await shot(page, '11-fifty-thousand-filtered');
    fs.writeFileSync(path.join(ARTIFACTS, 'fifty-thousand.json'),
      JSON.stringify({first_10k_ms: loadMs, rest_by_scrolling_ms: moreMs, scroll_p90_ms: stepMs, filter_ms: filterMs,
        rendered_rows: rendered, filtered: count}, null, 2));
    console.log(`# ${BIG_TEXT} flows: first 10,000 in ${loadMs} ms, the rest by scrolling in ${moreMs} ms, p90 scroll step ${stepMs.toFixed(1)} ms, ` +
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
