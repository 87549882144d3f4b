// mitmd viewer: a recorded request as code (curl, Python requests, JavaScript fetch, HTTPie, raw
// HTTP). Pure functions of a plain request object, so the browser tests can also run the output.
// Every snippet sends the recorded body byte for byte, binary included: bytes that a shell or a
// clipboard cannot carry literally are escaped (printf %b octal escapes, Python \x, base64 in JS).
//
// Request: {method, url, version, host, port, scheme, target, headers: [[name, value]],
//           body: Uint8Array | null, truncated: bool}
(function (root) {
  'use strict';

  // Hop-by-hop and framing headers: the client computes them again; copying them breaks requests
  // (a stale Content-Length, "Expect: 100-continue" that curl manages itself, HTTP/2 pseudo-headers).
  const SKIP = new Set(['host', 'content-length', 'connection', 'proxy-connection', 'keep-alive',
    'transfer-encoding', 'te', 'upgrade', 'expect', 'proxy-authorization', 'http2-settings']);

  function copied(headers) {
    return (headers || []).filter(([k]) => !k.startsWith(':') && !SKIP.has(k.toLowerCase()));
  }
  function hasHeader(headers, name) {
    const n = name.toLowerCase();
    return (headers || []).some(([k]) => k.toLowerCase() === n);
  }

  // Text that survives a clipboard and a shell literally: valid UTF-8 without NUL or control
  // characters other than tab and newline (a CR would be turned into a newline by terminals).
  function asText(bytes) {
    if (!bytes) return '';
    for (const b of bytes) {
      if ((b < 0x20 && b !== 0x09 && b !== 0x0a) || b === 0x7f) return null;
    }
    try {
      return new TextDecoder('utf-8', {fatal: true}).decode(bytes);
    } catch (e) {
      return null;
    }
  }

  function shellQuote(s) {
    return `'${String(s).replace(/'/g, `'\\''`)}'`;
  }

  // A single-quoted argument for printf '%b' that yields exactly |bytes|: printable ASCII as is,
  // backslash doubled, everything else as \0ooo (octal; bash, dash and zsh agree on it).
  function printfEscaped(bytes) {
    let out = '';
    for (const b of bytes) {
      if (b === 0x5c) out += '\\\\';
      else if (b === 0x0a) out += '\\n';
      else if (b === 0x0d) out += '\\r';
      else if (b === 0x09) out += '\\t';
      else if (b === 0x27 || b < 0x20 || b >= 0x7f) out += '\\0' + b.toString(8).padStart(3, '0');
      else out += String.fromCharCode(b);
    }
    return `'${out}'`;
  }

  function printfPipe(bytes) {
    return `printf '%b' ${printfEscaped(bytes)} |`;
  }

  function truncationNote(r, prefix) {
    if (!r.truncated) return [];
    return [`${prefix} mitmd recorded only the first ${r.body ? r.body.length : 0} bytes of this body: ` +
      'that is what this sends'];
  }

  function hasBody(r) {
    return !!(r.body && r.body.length);
  }

  // ---- curl

  function curl(r) {
    const args = ['curl'];
    const method = r.method || 'GET';
    if (method === 'HEAD') args.push('--head');
    else if (!(method === 'GET' && !hasBody(r)) && !(method === 'POST' && hasBody(r))) {
      args.push('-X ' + shellQuote(method));
    }
    if (/[[\]{}]/.test(r.url)) args.push('--globoff');
    args.push(shellQuote(r.url));
    if (/^HTTP\/2/.test(r.version || '')) args.push('--http2');
    const headers = copied(r.headers);
    for (const [k, v] of headers) {
      // -H 'Name;' is curl's way to send a header with an empty value.
      args.push('-H ' + shellQuote(v === '' ? `${k};` : `${k}: ${v}`));
    }
    let pipe = null;
    if (hasBody(r)) {
      // Without a Content-Type of its own, curl would add "application/x-www-form-urlencoded".
      if (!hasHeader(headers, 'content-type')) args.push("-H 'Content-Type:'");
      const text = asText(r.body);
      if (text !== null) {
        args.push('--data-raw ' + shellQuote(text));
      } else {
        pipe = printfPipe(r.body);
        args.push('--data-binary @-');
      }
    }
    const lines = truncationNote(r, '#');
    if (pipe) lines.push(pipe + ' \\');
    lines.push(args.join(' \\\n  '));
    return lines.join('\n');
  }

  // ---- HTTPie

  function httpie(r) {
    const args = ['http'];
    const piped = hasBody(r) && asText(r.body) === null;
    if (!piped) args.push('--ignore-stdin');
    const text = hasBody(r) && !piped ? asText(r.body) : null;
    if (text !== null) args.push('--raw ' + shellQuote(text));
    args.push(shellQuote(r.method || 'GET'), shellQuote(r.url));
    const headers = copied(r.headers);
    for (const [k, v] of headers) {
      // "Name;" sends an empty value ("Name:" would remove the header); a value starting with a
      // separator character is escaped so HTTPie does not read it as a JSON or file field.
      const value = /^[=@]/.test(v) ? '\\' + v : v;
      args.push(shellQuote(v === '' ? `${k};` : `${k}:${value}`));
    }
    // With a body and no Content-Type, HTTPie would send "application/json": "Name:" unsets it.
    if (hasBody(r) && !hasHeader(headers, 'content-type')) args.push(shellQuote('Content-Type:'));
    const lines = truncationNote(r, '#');
    if (piped) lines.push(printfPipe(r.body) + ' \\');
    lines.push(args.join(' \\\n  '));
    return lines.join('\n');
  }

  // ---- Python requests

  function pyStr(s) {
    let out = "'";
    for (const ch of String(s)) {
      const c = ch.codePointAt(0);
      if (ch === '\\') out += '\\\\';
      else if (ch === "'") out += "\\'";
      else if (ch === '\n') out += '\\n';
      else if (ch === '\r') out += '\\r';
      else if (ch === '\t') out += '\\t';
      else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
      else if (c >= 0xd800 && c <= 0xdfff) out += '\\ufffd';
      else out += ch;
    }
    return out + "'";
  }

  function pyBytes(bytes) {
    let out = "b'";
    for (const b of bytes) {
      if (b === 0x5c) out += '\\\\';
      else if (b === 0x27) out += "\\'";
      else if (b === 0x0a) out += '\\n';
      else if (b === 0x0d) out += '\\r';
      else if (b === 0x09) out += '\\t';
      else if (b < 0x20 || b >= 0x7f) out += '\\x' + b.toString(16).padStart(2, '0');
      else out += String.fromCharCode(b);
    }
    return out + "'";
  }

  // Header lists may repeat a name; a dict cannot. Repeats are joined as HTTP allows (RFC 9110
  // 5.3), cookies with "; ".
  function mergedHeaders(headers) {
    const merged = new Map();
    for (const [k, v] of headers) {
      const key = k.toLowerCase();
      if (merged.has(key)) {
        const e = merged.get(key);
        e.v += (key === 'cookie' ? '; ' : ', ') + v;
      } else {
        merged.set(key, {k, v});
      }
    }
    return [...merged.values()];
  }

  function python(r) {
    const lines = truncationNote(r, '#');
    lines.push('import requests', '');
    lines.push(`url = ${pyStr(r.url)}`);
    const headers = mergedHeaders(copied(r.headers));
    lines.push('headers = {');
    for (const {k, v} of headers) lines.push(`    ${pyStr(k)}: ${pyStr(v)},`);
    // requests would add its own Accept-Encoding and Accept; None leaves a header out.
    for (const name of ['Accept-Encoding', 'Accept', 'User-Agent']) {
      if (!hasHeader(r.headers, name)) lines.push(`    ${pyStr(name)}: None,`);
    }
    lines.push('}');
    let dataArg = '';
    if (hasBody(r)) {
      const text = asText(r.body);
      // Bytes, never str: requests would encode a str body as Latin-1.
      lines.push(text !== null ? `data = ${pyStr(text)}.encode('utf-8')` : `data = ${pyBytes(r.body)}`);
      dataArg = ', data=data';
    }
    lines.push('', `response = requests.request(${pyStr(r.method || 'GET')}, url, headers=headers${dataArg})`);
    lines.push('print(response.status_code, response.reason)', 'print(response.text)');
    return lines.join('\n');
  }

  // ---- JavaScript fetch

  function base64(bytes) {
    let bin = '';
    for (let i = 0; i < bytes.length; i += 0x8000) {
      bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return typeof btoa === 'function' ? btoa(bin) : Buffer.from(bin, 'binary').toString('base64');
  }

  function fetchJs(r) {
    const lines = truncationNote(r, '//');
    const opts = [`  method: ${JSON.stringify(r.method || 'GET')},`];
    const headers = mergedHeaders(copied(r.headers));
    if (headers.length) {
      opts.push('  headers: {');
      for (const {k, v} of headers) opts.push(`    ${JSON.stringify(k)}: ${JSON.stringify(v)},`);
      opts.push('  },');
    }
    if (hasBody(r)) {
      const text = asText(r.body);
      if (text !== null) {
        opts.push(`  body: ${JSON.stringify(text)},`);
      } else {
        opts.push(`  body: Uint8Array.from(atob(${JSON.stringify(base64(r.body))}), (c) => c.charCodeAt(0)),`);
      }
    }
    lines.push(`const response = await fetch(${JSON.stringify(r.url)}, {`, ...opts, '});');
    lines.push('console.log(response.status, response.statusText);', 'console.log(await response.text());');
    return lines.join('\n');
  }

  // ---- raw HTTP

  // The request as HTTP/1.1 bytes. A text body is appended as is; a binary one turns the whole
  // message into a printf command that writes it exactly (pipe it to `openssl s_client` or `nc`).
  function raw(r) {
    const head = [`${r.method || 'GET'} ${r.target || '/'} HTTP/1.1`];
    const headers = (r.headers || []).filter(([k]) => !k.startsWith(':'));
    if (!hasHeader(headers, 'host')) head.push(`Host: ${r.authority || r.host}`);
    for (const [k, v] of headers) head.push(`${k}: ${v}`);
    const headText = head.join('\r\n') + '\r\n\r\n';
    if (!hasBody(r)) return headText;
    const text = asText(r.body);
    if (text !== null && !text.includes('\r')) return headText + text;
    const headBytes = new TextEncoder().encode(headText);
    const bytes = new Uint8Array(headBytes.length + r.body.length);
    bytes.set(headBytes, 0);
    bytes.set(r.body, headBytes.length);
    return `# ${r.method} ${r.url}: the binary body makes this a command that writes the exact bytes\n` +
      `printf '%b' ${printfEscaped(bytes)}`;
  }

  const api = {curl, httpie, python, fetch: fetchJs, raw};
  if (typeof module !== 'undefined' && module.exports) module.exports = api;
  else root.mitmdSnippets = api;
})(this);
