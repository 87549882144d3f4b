// Browser tests of changing traffic from the viewer (web/control.js): hold a request, edit a
// header, resume it and see that the server got it; edit a binary body as hex; edit and resend
// from the composer; add a rule in the Rules panel, see it applied and the original value next
// to the modified one in the detail pane; compare two flows. Screenshots go to ARTIFACTS.
'use strict';
const {test, before, after} = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const h = require('./harness');

const MITMD = process.env.MITMD;
const ARTIFACTS = process.env.ARTIFACTS || path.join(__dirname, 'artifacts');

let dir, pki, upstream, upstreamUrl, mitmd, browser, viewer;

const shot = (page, name) => page.screenshot({path: path.join(ARTIFACTS, `${name}.png`)});

async function api(method, p, body) {
  const r = await fetch(mitmd.viewer.replace(/\/$/, '') + p, {method, headers: {'X-Mitmd': '1', 'Content-Type': 'application/json'},
    body: body === undefined ? undefined : JSON.stringify(body)});
  return r.json();
}

// The requests /echo received with |header|, the last one first.
const echoed = (header) => upstream.requests.filter((r) => r.url.startsWith('/echo') && r.headers[header]).reverse();

async function waitFor(cond, what, ms = 15000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await cond();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

before(async () => {
  assert.ok(MITMD && fs.existsSync(MITMD), 'set MITMD to the mitmd binary');
  dir = h.tempDir('mitmd-control-');
  pki = h.makePki(dir);
  upstream = await h.startUpstream(pki, Buffer.alloc(0));
  upstreamUrl = `https://localhost:${upstream.address().port}`;
  mitmd = await h.startMitmd(MITMD, dir, [], pki);
  browser = await h.launchBrowser();
  viewer = await h.openViewer(browser, mitmd.viewer);
  await viewer.page.waitForSelector('#btn-rules');
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

test('a request held from the viewer is edited, resumed and reaches the server edited', async () => {
  const {page} = viewer;
  await page.click('#btn-rules');
  await page.fill('input[aria-label="Hold requests matching"]', 'path:/echo');
  await page.click('.ctl-dialog button.primary');
  await page.waitForSelector('.ctl-backdrop', {state: 'detached'});

  const curl = h.curlThrough(mitmd, `${upstreamUrl}/echo?held=1`, ['-H', 'X-Original: 1']);
  await page.waitForSelector('#held-bar:not([hidden]) .held-item');
  await shot(page, 'control-01-held-bar');
  assert.equal(upstream.requests.filter((r) => r.url === '/echo?held=1').length, 0, 'nothing went upstream yet');

  await page.click('#held-bar .held-item');
  await page.waitForSelector('.held-editor textarea.ctl-headers');
  const headers = await page.inputValue('.held-editor textarea.ctl-headers');
  assert.match(headers, /X-Original: 1/);
  await page.fill('.held-editor textarea.ctl-headers', headers + '\nX-Edited-In-Viewer: yes');
  await shot(page, 'control-02-held-editor');
  await page.click('.held-editor button.primary');
  assert.equal(await curl, 200);
  const got = echoed('x-edited-in-viewer')[0];
  assert.ok(got, 'the server got the edited request');
  assert.equal(got.headers['x-original'], '1');
  await page.waitForSelector('#held-bar', {state: 'hidden'});
  await api('PUT', '/api/hold', {request: [], response: []});
});

test('killing a held request answers the client with an error', async () => {
  const {page} = viewer;
  await api('PUT', '/api/hold', {request: ['path:/echo'], response: []});
  const curl = h.curlThrough(mitmd, `${upstreamUrl}/echo?kill=1`);
  await page.waitForSelector('#held-bar:not([hidden]) .held-item');
  await page.click('#held-bar .held-item');
  await page.click('.held-editor button.danger');
  assert.equal(await curl, 502);
  await api('PUT', '/api/hold', {request: [], response: []});
  assert.equal(upstream.requests.filter((r) => r.url === '/echo?kill=1').length, 0);
});

test('a binary body is edited as hex in the held editor', async () => {
  const {page} = viewer;
  await api('PUT', '/api/hold', {request: ['path:/echo'], response: []});
  const file = path.join(dir, 'binary.dat');
  fs.writeFileSync(file, Buffer.from([0x00, 0x01, 0x02, 0xff]));
  const curl = h.curlThrough(mitmd, `${upstreamUrl}/echo?bin=1`,
    ['--data-binary', '@' + file, '-H', 'Content-Type: application/octet-stream']);
  // Its own item: the bar can still list the request the test before killed, for a moment.
  await page.waitForSelector('#held-bar:not([hidden]) .held-item:has-text("bin=1")');
  await page.click('#held-bar .held-item:has-text("bin=1")');
  await page.waitForSelector('.held-editor textarea.ctl-bodytext');
  const hex = await page.inputValue('.held-editor textarea.ctl-bodytext');
  assert.match(hex, /^000000 {2}00 01 02 ff/);
  assert.equal(await page.getAttribute('.held-editor textarea.ctl-bodytext', 'readonly'), null, 'the hex is editable');
  await page.fill('.held-editor textarea.ctl-bodytext', hex.replace('00 01 02 ff', 'de ad be ef 00'));
  await shot(page, 'control-07-hex-editor');
  await page.click('.held-editor button.primary');
  assert.equal(await curl, 200);
  const got = upstream.requests.filter((r) => r.url === '/echo?bin=1')[0];
  assert.ok(got, 'the server got the request');
  assert.deepEqual([...got.body], [0xde, 0xad, 0xbe, 0xef, 0x00]);
  await api('PUT', '/api/hold', {request: [], response: []});
});

test('the composer edits and resends a recorded request', async () => {
  const {page} = viewer;
  assert.equal(await h.curlThrough(mitmd, `${upstreamUrl}/echo?compose=1`, ['-d', 'first body']), 200);
  const row = await page.waitForSelector('.row:has-text("/echo?compose=1")');
  await row.click();
  await page.keyboard.press('r');
  await page.waitForSelector('.composer textarea.ctl-bodytext');
  assert.equal(await page.inputValue('.composer textarea.ctl-bodytext'), 'first body');
  await page.fill('.composer textarea.ctl-bodytext', 'second body');
  const headers = await page.inputValue('.composer textarea.ctl-headers');
  await page.fill('.composer textarea.ctl-headers', headers + '\nX-Resent: 1');
  await shot(page, 'control-03-composer');
  await page.click('.composer button.primary');
  const got = await waitFor(() => echoed('x-resent')[0], 'the resent request');
  assert.equal(got.body.toString(), 'second body');
  await page.waitForSelector('.ctl-status:has-text("Sent")');
  await page.keyboard.press('Escape');
  const replays = await waitFor(async () => {
    const list = await api('GET', '/api/flows?filter=' + encodeURIComponent('path:/echo?compose=1'));
    return list.flows.length === 2 ? list.flows : null;
  }, 'the replayed flow');
  const detail = await api('GET', `/api/flows/${replays[0].id}`);
  assert.equal(detail.replay_of, replays[1].id);
});

test('a rule added in the Rules panel applies to the next request', async () => {
  const {page} = viewer;
  await page.click('#btn-rules');
  await page.click('.rules-panel button:has-text("Add rule")');
  await page.fill('.rules-panel .rule-spec >> nth=-1', '|path:/echo|X-Rule|from-the-panel');
  await shot(page, 'control-04-rules-panel');
  await page.click('.rules-panel button.primary');
  await page.waitForSelector('.ctl-backdrop', {state: 'detached'});
  const rules = await api('GET', '/api/rules');
  assert.equal(rules.rules.length, 1);
  assert.equal(await h.curlThrough(mitmd, `${upstreamUrl}/echo?rule=1`, ['-H', 'X-Rule: sent-by-curl']), 200);
  const got = echoed('x-rule')[0];
  assert.ok(got, 'the server got the header the rule sets');
  assert.equal(got.headers['x-rule'], 'from-the-panel');
  // The store writes in batches: wait for the flow rather than for a fixed time.
  const flows = await waitFor(async () => {
    const list = await api('GET', '/api/flows?filter=' + encodeURIComponent('url:rule=1'));
    return list.flows.length ? list.flows : null;
  }, 'the flow the rule changed');
  const flow = await api('GET', `/api/flows/${flows[0].id}`);
  assert.equal(flow.modified_by[0].rule, 'modify-headers |path:/echo|X-Rule|from-the-panel');
  await api('PUT', '/api/rules', {rules: []});

  // The detail pane shows the original value next to the modified one.
  const row = await page.waitForSelector('.row:has-text("/echo?rule=1")');
  await row.click();
  await page.waitForSelector('#flow-modified .cmp-del');
  assert.equal(await page.textContent('#flow-modified .cmp-del'), 'sent-by-curl');
  assert.equal(await page.textContent('#flow-modified .cmp-add'), 'from-the-panel');
  assert.match(await page.textContent('#flow-modified .mod-what'), /request header X-Rule by modify-headers \|path:\/echo\|X-Rule\|from-the-panel/);
  await shot(page, 'control-06-original-vs-modified');
});

test('two flows compare side by side with their differences marked', async () => {
  const {page} = viewer;
  assert.equal(await h.curlThrough(mitmd, `${upstreamUrl}/echo?cmp=a`, ['-H', 'X-Side: left']), 200);
  assert.equal(await h.curlThrough(mitmd, `${upstreamUrl}/echo?cmp=b`, ['-H', 'X-Side: right']), 200);
  // Both rows first: a row arriving while the two are picked re-renders the virtual table, and
  // a click aimed at one flow's row could land on the other's.
  for (const which of ['a', 'b']) await page.waitForSelector(`.row:has-text("/echo?cmp=${which}")`);
  for (const which of ['a', 'b']) {
    // A locator is resolved at the click, not before it (rows are reused as the table renders).
    await page.locator('.row', {hasText: `/echo?cmp=${which}`}).click({button: 'right'});
    await page.waitForSelector('#ctx-menu:not([hidden])');
    await page.click('#ctx-menu [data-action="compare"]');
    if (which === 'a') await page.waitForFunction(() => window.mitmdControl.comparePicked() !== null);
  }
  await page.waitForSelector('.compare .cmp-del');
  const removed = await page.$$eval('.compare .cmp-del', (els) => els.map((e) => e.textContent));
  const added = await page.$$eval('.compare .cmp-add', (els) => els.map((e) => e.textContent));
  assert.ok(removed.some((t) => t.includes('X-Side: left')), removed.join('|'));
  assert.ok(added.some((t) => t.includes('X-Side: right')), added.join('|'));
  assert.ok(removed.some((t) => t.includes('cmp=a')));
  await shot(page, 'control-05-compare');
  await page.keyboard.press('Escape');
  assert.deepEqual(viewer.problems, []);
});
