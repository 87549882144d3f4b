// Writes a synthetic mitmd session log (JSONL, flow schema 1) for viewer tests and screenshots:
//   node make_flows.js OUT.jsonl [COUNT] [light]
// A mix of APIs, pages, images, scripts, redirects, client and server errors, failed TLS, a
// tunnel; gzip and brotli bodies; realistic timings. Deterministic for a given COUNT.
'use strict';
const fs = require('fs');
const zlib = require('zlib');

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

// A small PNG (a gradient badge), built with zlib so the bytes are a real image.
function makePng(w, h) {
  const crcTable = new Uint32Array(256).map((_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      const inCircle = (x - w / 2) ** 2 + (y - h / 2) ** 2 < (w / 3) ** 2;
      raw[o] = inCircle ? 255 : 37 + x;
      raw[o + 1] = inCircle ? 200 : 99 + y;
      raw[o + 2] = inCircle ? 60 : 235;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; ihdr[9] = 2; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

function body(buf) {
  const text = buf.toString('utf8');
  const isText = Buffer.from(text, 'utf8').equals(buf);
  return isText
    ? {size: buf.length, truncated: false, encoding: 'text', content: text}
    : {size: buf.length, truncated: false, encoding: 'base64', content: buf.toString('base64')};
}

let counter = 0;
function uuid(r) {
  const hex = (n) => Math.floor(r() * 16 ** n).toString(16).padStart(n, '0');
  counter++;
  return `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${counter.toString(16).padStart(12, '0')}`;
}

// light: small bodies (for the 50,000-flow test, where the log's size is not the point).
function make(count, light) {
  const r = rng(count * 7919 + 17);
  const png = makePng(48, 48);
  const hosts = ['api.example.com', 'www.example.com', 'cdn.example.net', 'auth.example.com',
    'telemetry.example.org', 'static.example.net', 'pay.example.com'];
  const out = [];
  let t = 1718000000.0;
  let conn = 1;
  for (let i = 0; i < count; i++) {
    t += 0.05 + r() * 0.9;
    const kindRoll = r();
    const host = hosts[Math.floor(r() * hosts.length)];
    const clientConn = conn++;
    const upConn = conn++;
    const reused = r() < 0.45;
    const flow = {
      schema: 1, id: uuid(r), kind: 'http',
      client: {conn: clientConn, addr: `127.0.0.1:${40000 + (i % 20000)}`,
        tls: {version: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', alpn: 'http/1.1', sni: host, alpn_offered: ['h2', 'http/1.1']}},
      server: {host, port: 443, addr: `127.0.0.1:443`, conn: upConn, reused,
        tls: {version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', alpn: 'http/1.1', sni: host},
        cert: {subject: `CN=${host}`, issuer: 'CN=Example Test CA, O=Example', sans: [`DNS:${host}`, 'DNS:*.example.com'],
          sha256: 'ab'.repeat(32), not_before: '2024-01-01T00:00:00Z', not_after: '2026-01-01T00:00:00Z', verified: true, verify_error: ''}},
      insecure: false, bytes: {up: 0, down: 0}, body_record_cap: 1048576,
    };
    let method = 'GET', path = '/', status = 200, reason = 'OK', type = 'application/json';
    let respBody = Buffer.from('{}'), coding = '', reqBody = null, reqType = '';
    if (kindRoll < 0.35) {
      const id = Math.floor(r() * 9000) + 100;
      path = `/v1/orders/${id}?expand=items&currency=EUR`;
      const doc = {id, status: r() < 0.8 ? 'shipped' : 'pending', total: Math.round(r() * 50000) / 100, currency: 'EUR',
        items: [{sku: 'SKU-' + id, qty: 1 + Math.floor(r() * 3), price: 19.99}, {sku: 'GIFT', qty: 1, price: 0}],
        customer: {name: 'Ada Lovelace', email: 'ada@example.com', vip: r() < 0.2}, token: 'tok_' + id.toString(36)};
      respBody = light ? Buffer.from(JSON.stringify({id})) : zlib.gzipSync(Buffer.from(JSON.stringify(doc)));
      coding = light ? '' : 'gzip';
    } else if (kindRoll < 0.45) {
      method = 'POST';
      path = '/v1/login';
      reqType = 'application/x-www-form-urlencoded';
      reqBody = Buffer.from('user=ada%40example.com&password=hunter2&remember=1');
      status = r() < 0.7 ? 200 : 401;
      reason = status === 200 ? 'OK' : 'Unauthorized';
      respBody = Buffer.from(JSON.stringify(status === 200 ? {session: 's_' + i, expires_in: 3600} : {error: 'invalid_credentials'}));
    } else if (kindRoll < 0.55) {
      path = `/assets/img/badge-${i % 12}.png`;
      type = 'image/png';
      respBody = light ? png.subarray(0, 64) : png;
    } else if (kindRoll < 0.63) {
      path = '/';
      type = 'text/html; charset=utf-8';
      respBody = zlib.brotliCompressSync(Buffer.from('<!doctype html><html><head><title>Example shop</title></head><body><h1>Welcome</h1><p>Fresh offers every day.</p></body></html>'));
      coding = 'br';
    } else if (kindRoll < 0.7) {
      path = `/static/app.${(i % 97).toString(16)}.js`;
      type = 'application/javascript';
      respBody = zlib.gzipSync(Buffer.from('export function greet(name){return `Hello, ${name}!`;}\n'.repeat(light ? 1 : 40)));
      coding = 'gzip';
    } else if (kindRoll < 0.76) {
      method = 'PUT';
      path = `/v1/carts/${i}`;
      reqType = 'application/json';
      reqBody = Buffer.from(JSON.stringify({items: [{sku: 'SKU-1', qty: 2}]}));
      status = 204; reason = 'No Content'; respBody = Buffer.alloc(0); type = '';
    } else if (kindRoll < 0.82) {
      path = '/old-page';
      status = 301; reason = 'Moved Permanently'; type = 'text/html'; respBody = Buffer.from('<a href="/new-page">moved</a>');
    } else if (kindRoll < 0.88) {
      path = '/v1/report?from=2024-01-01&to=2024-06-30';
      status = 500; reason = 'Internal Server Error';
      respBody = Buffer.from(JSON.stringify({error: 'upstream timeout', request_id: 'req-' + i}));
    } else if (kindRoll < 0.93) {
      path = '/v1/missing';
      status = 404; reason = 'Not Found';
      respBody = Buffer.from(JSON.stringify({error: 'not found'}));
    } else if (kindRoll < 0.965) {
      // Upstream TLS failure: the client got a 502 from mitmd, recorded as a failed flow.
      flow.server.host = 'expired.example.com';
      flow.server.tls = undefined;
      flow.server.cert = {subject: 'CN=expired.example.com', issuer: 'CN=Example Test CA', sans: ['DNS:expired.example.com'],
        sha256: 'cd'.repeat(32), not_before: '2019-01-01T00:00:00Z', not_after: '2020-01-01T00:00:00Z', verified: false,
        verify_error: 'certificate has expired'};
      flow.error = {phase: 'upstream_tls', message: 'upstream certificate has expired (notAfter 2020-01-01T00:00:00Z)'};
      path = '/';
      status = 0;
    } else if (kindRoll < 0.98) {
      flow.server.host = 'down.example.com';
      flow.server.tls = undefined;
      flow.server.cert = undefined;
      flow.error = {phase: 'connect', message: 'connection refused by 127.0.0.1:443'};
      status = 0;
    } else {
      flow.kind = 'tunnel';
      flow.server.host = 'pinned.example.com';
      flow.client.tls = undefined;
      flow.server.tls = undefined;
      flow.server.cert = undefined;
      flow.bytes = {up: 5120 + Math.floor(r() * 9000), down: 20000 + Math.floor(r() * 90000)};
      flow.note = 'pinned.example.com:443 tunnelled untouched: the client rejected mitmd\'s certificate earlier (auto-passthrough)';
    }
    if (light) flow.server.cert = undefined;
    for (const k of Object.keys(flow.server)) if (flow.server[k] === undefined) delete flow.server[k];
    if (flow.client.tls === undefined) delete flow.client.tls;
    const dur = 0.008 + r() * r() * 1.6;
    const start = t;
    flow.timings = {
      accepted: start - 0.004, upstream_connect_start: reused ? 0 : start - 0.0035, upstream_connect_end: reused ? 0 : start - 0.0025,
      upstream_tls_end: reused ? 0 : start - 0.0012, client_tls_end: start - 0.0004,
      request_start: start, request_end: start + 0.0006, response_start: start + dur * 0.75, response_end: start + dur,
    };
    if (flow.kind !== 'tunnel') {
      const reqHeaders = [['Host', flow.server.host], ['User-Agent', 'Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0'],
        ['Accept', type.startsWith('image') ? 'image/avif,image/webp,*/*' : 'application/json, text/plain, */*'],
        ['Accept-Encoding', 'gzip, deflate, br, zstd'], ['Cookie', 'sid=abc123; theme=dark']];
      if (light) reqHeaders.splice(1, 4);
      if (reqBody) {
        reqHeaders.push(['Content-Type', reqType], ['Content-Length', String(reqBody.length)]);
      }
      flow.request = {method, scheme: 'https', host: flow.server.host, port: 443, target: path, path,
        url: `https://${flow.server.host}${path}`, version: 'HTTP/1.1', headers: reqHeaders, body: body(reqBody || Buffer.alloc(0))};
      if (status) {
        const respHeaders = light ? [] : [['Date', new Date(start * 1000).toUTCString()], ['Server', 'nginx/1.22.1']];
        if (type) respHeaders.push(['Content-Type', type]);
        if (coding) respHeaders.push(['Content-Encoding', coding]);
        respHeaders.push(['Content-Length', String(respBody.length)]);
        if (status === 301) respHeaders.push(['Location', '/new-page']);
        if (path === '/v1/login' && status === 200) respHeaders.push(['Set-Cookie', `session=s_${i}; Path=/; HttpOnly; Secure`]);
        flow.response = {status, reason, version: 'HTTP/1.1', headers: respHeaders, body: body(respBody)};
      } else {
        flow.timings.response_start = 0;
        flow.timings.response_end = 0;
        flow.timings.request_end = 0;
        if (flow.error.phase !== 'connect' && flow.error.phase !== 'upstream_tls') flow.timings.request_start = start;
      }
    }
    out.push(flow);
  }
  return out;
}

if (require.main === module) {
  const [outPath, countText, mode] = process.argv.slice(2);
  if (!outPath) {
    console.error('usage: node make_flows.js OUT.jsonl [COUNT] [light]');
    process.exit(2);
  }
  const flows = make(Number(countText || 200), mode === 'light');
  fs.writeFileSync(outPath, flows.map((f) => JSON.stringify(f)).join('\n') + '\n');
}

module.exports = {make, makePng};
