// mitmd viewer: a virtualised flow table fed by the server's JSON API and event stream, a detail
// pane, and the Connections view. Plain JS, no build step. Untrusted data (anything recorded from
// traffic) only ever reaches the DOM through textContent or attribute setters, never innerHTML.
(() => {
  'use strict';

  const ROW_H = 26;
  const PAGE = 2000;
  const OVERSCAN = 12;
  const SLOW_MS = 1000;
  const MAX_PRETTY = 400 * 1024;   // highlight JSON up to this size; plain text beyond
  const MAX_HEX = 64 * 1024;

  const $ = (id) => document.getElementById(id);

  // h('div', {class: 'x', text: 'hi', onclick: fn}, child, 'text', ...)
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
        else if (k === 'dataset') Object.assign(el.dataset, v);
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  // ---------------------------------------------------------------- formatting

  const nf = new Intl.NumberFormat();
  function fmtSize(n) {
    if (n === undefined || n === null) return '';
    if (n < 1024) return n + ' B';
    if (n < 1024 * 1024) return (n / 1024).toFixed(n < 10240 ? 1 : 0) + ' KiB';
    if (n < 1024 * 1024 * 1024) return (n / 1048576).toFixed(1) + ' MiB';
    return (n / 1073741824).toFixed(2) + ' GiB';
  }
  function fmtMs(ms) {
    if (ms === undefined || ms === null || ms < 0) return '';
    if (ms < 1) return ms.toFixed(2) + ' ms';
    if (ms < 10) return ms.toFixed(1) + ' ms';
    if (ms < 1000) return Math.round(ms) + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(2) + ' s';
    return (ms / 60000).toFixed(1) + ' min';
  }
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  function fmtTime(t) {
    if (!t) return '';
    const d = new Date(t * 1000);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }
  function fmtDateTime(t) {
    if (!t) return '';
    const d = new Date(t * 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtTime(t)}`;
  }
  function fmtAge(s) {
    if (s === undefined || s === null || s < 0) return '';
    if (s < 1) return Math.round(s * 1000) + ' ms';
    if (s < 60) return s.toFixed(1) + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' m ' + Math.round(s % 60) + ' s';
    return Math.floor(s / 3600) + ' h ' + Math.round((s % 3600) / 60) + ' m';
  }
  function shortType(t) {
    if (!t) return '';
    const slash = t.indexOf('/');
    let sub = slash >= 0 ? t.slice(slash + 1) : t;
    sub = sub.replace(/^x-/, '').replace(/^vnd\./, '');
    if (sub.endsWith('+json')) return 'json';
    if (sub.endsWith('+xml') && !sub.startsWith('svg')) return 'xml';
    if (sub === 'javascript' || sub === 'ecmascript') return 'js';
    if (sub === 'svg+xml') return 'svg';
    if (sub === 'octet-stream') return 'binary';
    if (sub === 'www-form-urlencoded') return 'form';
    return sub;
  }
  function statusClass(s) { return 's' + (s ? Math.floor(s / 100) : 0); }
  function headerValue(headers, name) {
    if (!headers) return undefined;
    const n = name.toLowerCase();
    for (const [k, v] of headers) if (k.toLowerCase() === n) return v;
    return undefined;
  }
  function hostPort(host, port, scheme) {
    const h6 = host && host.includes(':') ? `[${host}]` : host;
    const dflt = (scheme === 'https' && port === 443) || (scheme === 'http' && port === 80);
    return port && !dflt ? `${h6}:${port}` : h6;
  }

  // ---------------------------------------------------------------- state

  const state = {
    flows: [],              // summaries, newest first
    bySeq: new Map(),
    filter: '',
    selected: null,         // seq
    detail: null,           // full flow of the selection
    detailTab: 'overview',
    paused: false,
    held: [],               // live flows that arrived while paused
    incoming: [],           // live flows waiting for the next frame
    unseen: 0,              // rows added above while scrolled down
    gen: 0,
    loading: false,
    es: null,
    connsEs: null,
    info: null,
    view: 'flows',
    conns: null,
    connsAt: 0,
    bodyView: {},           // side -> 'pretty' | 'raw' | 'hex'
  };

  async function api(path, opts) {
    const res = await fetch(path, opts);
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!res.ok) throw new Error((data && data.error) || `${res.status} ${res.statusText}`);
    return data;
  }

  let toastTimer = 0;
  function toast(message, isError) {
    const t = $('toast');
    t.textContent = message;
    t.classList.toggle('error', !!isError);
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, isError ? 6000 : 2600);
  }

  // ---------------------------------------------------------------- theme

  function applyTheme(theme) {
    document.documentElement.dataset.theme = theme;
  }
  function initTheme() {
    let theme = null;
    try { theme = localStorage.getItem('mitmd-theme'); } catch (e) { /* storage off */ }
    if (theme !== 'dark' && theme !== 'light') {
      theme = window.matchMedia && matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
    }
    applyTheme(theme);
    $('btn-theme').addEventListener('click', () => {
      const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
      applyTheme(next);
      try { localStorage.setItem('mitmd-theme', next); } catch (e) { /* storage off */ }
    });
  }

  // ---------------------------------------------------------------- the table

  const scroller = $('scroller');
  const rowsEl = $('rows');
  const spacer = $('spacer');
  const pool = [];
  let renderQueued = false;

  const LOCK_SVG = 'M6 10V8a6 6 0 1 1 12 0v2h1a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H5a1 1 0 0 1-1-1V11a1 1 0 0 1 1-1zm2 0h8V8a4 4 0 1 0-8 0z';

  function makeRow() {
    const cells = {};
    const row = h('div', {class: 'row'});
    for (const name of ['seq', 'time', 'method', 'host', 'path', 'status', 'type', 'size', 'dur', 'flags']) {
      cells[name] = h('div', {class: 'c ' + name});
      row.append(cells[name]);
    }
    row._cells = cells;
    row.addEventListener('mousedown', (ev) => {
      if (ev.button === 0 && row._seq !== undefined) select(row._seq, true);
    });
    return row;
  }

  function flagEl(cls, title, text, svgPath) {
    const el = h('span', {class: 'flag ' + cls, title});
    if (svgPath) {
      const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
      svg.setAttribute('viewBox', '0 0 24 24');
      const p = document.createElementNS('http://www.w3.org/2000/svg', 'path');
      p.setAttribute('d', svgPath);
      svg.append(p);
      el.append(svg);
    } else {
      el.textContent = text;
    }
    return el;
  }

  function fillRow(row, f) {
    const c = row._cells;
    row._seq = f.seq;
    row.className = 'row' + (f.seq === state.selected ? ' sel' : '') + (f.err ? ' failed' : '');
    c.seq.textContent = f.seq;
    c.time.textContent = fmtTime(f.t);
    c.method.textContent = f.method || '';
    c.method.className = 'c method m-' + (f.method || '');
    c.host.textContent = hostPort(f.host, f.port, f.scheme);
    c.host.title = c.host.textContent;
    c.path.textContent = f.kind === 'tunnel' ? '(tunnel)' : f.path;
    c.path.title = f.path;
    if (f.err) {
      c.status.textContent = 'ERR';
      c.status.className = 'c status s0';
      c.status.title = f.err;
    } else {
      c.status.textContent = f.status || '';
      c.status.className = 'c status ' + statusClass(f.status);
      c.status.title = '';
    }
    c.type.textContent = shortType(f.type);
    c.type.title = f.type || '';
    c.size.textContent = f.kind === 'tunnel' || f.status ? fmtSize(f.size) : '';
    c.dur.textContent = f.dur === null ? '' : fmtMs(f.dur);
    c.dur.className = 'c dur' + (f.dur > SLOW_MS ? ' slow' : '');
    c.flags.replaceChildren(
      f.tls ? flagEl('tls', `${f.tls}${f.alpn ? ' · ' + f.alpn : ''}`, '', LOCK_SVG) : '',
      f.reused ? flagEl('reused', `upstream connection #${f.up} reused`, '↻') : '',
      f.trunc ? flagEl('trunc', 'body copy truncated at the record cap', '✂') : '',
      f.insecure ? flagEl('insecure', 'upstream certificate NOT verified (--insecure)', '!') : '',
      f.err ? flagEl('err', f.err, '!') : '');
  }

  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      flushIncoming();
      renderRows();
    });
  }

  function renderRows() {
    const total = state.flows.length;
    spacer.style.height = (total * ROW_H) + 'px';
    const top = scroller.scrollTop;
    const height = scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(total, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    const n = Math.max(0, last - first);
    while (pool.length < n) {
      const r = makeRow();
      pool.push(r);
      rowsEl.append(r);
    }
    for (let i = 0; i < pool.length; i++) {
      const r = pool[i];
      if (i < n) {
        fillRow(r, state.flows[first + i]);
        r.hidden = false;
      } else {
        r.hidden = true;
        r._seq = undefined;
      }
    }
    rowsEl.style.transform = `translateY(${first * ROW_H}px)`;
    renderCount();
    renderEmpty();
  }

  function renderCount() {
    const n = state.flows.length;
    let text = `${nf.format(n)} flow${n === 1 ? '' : 's'}`;
    if (state.filter) text += ' matching';
    if (state.loading) text += ' …';
    $('count').textContent = text;
  }

  function renderEmpty() {
    const empty = $('empty');
    if (state.flows.length > 0 || state.loading) {
      empty.hidden = true;
      return;
    }
    empty.hidden = false;
    const body = $('empty-body');
    if (state.filter) {
      $('empty-title').textContent = 'No flows match the filter';
      body.replaceChildren(h('p', {text: 'New flows that match appear here as they happen. Press ? for the filter language.'}));
      return;
    }
    $('empty-title').textContent = 'Waiting for traffic';
    const proxy = (state.info && state.info.proxy) || '127.0.0.1:8080';
    body.replaceChildren(
      h('p', {text: 'Point a client at the proxy and trust mitmd\'s root certificate, for example:'}),
      h('code', {text: `curl --proxy http://${proxy} --cacert ~/.mitmd/mitmd-ca.pem https://example.com/`}),
      h('p', null, 'Get the root for browsers and phones on the ', h('a', {href: '/ca', target: '_blank', rel: 'noopener', text: 'root certificate page'}), '.'));
  }

  scroller.addEventListener('scroll', () => {
    if (scroller.scrollTop < ROW_H) hideNewPill();
    scheduleRender();
  });
  window.addEventListener('resize', scheduleRender);

  // Keeps flows sorted by seq, newest first.
  function indexOfSeq(seq) {
    let lo = 0, hi = state.flows.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (state.flows[mid].seq > seq) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  function insertFlows(list) {
    // list: summaries in any order. Returns how many rows were added above the current view.
    let above = 0;
    const firstVisible = Math.floor(scroller.scrollTop / ROW_H);
    for (const f of list) {
      if (state.bySeq.has(f.seq)) {
        const i = indexOfSeq(f.seq);
        if (state.flows[i] && state.flows[i].seq === f.seq) state.flows[i] = f;
        state.bySeq.set(f.seq, f);
        continue;
      }
      state.bySeq.set(f.seq, f);
      const i = indexOfSeq(f.seq);
      if (i === 0) state.flows.unshift(f); else state.flows.splice(i, 0, f);
      if (i <= firstVisible) above++;
    }
    return above;
  }

  function flushIncoming() {
    if (!state.incoming.length) return;
    const batch = state.incoming;
    state.incoming = [];
    const atTop = scroller.scrollTop < ROW_H;
    const above = insertFlows(batch);
    if (!atTop && above > 0) {
      // Keep what the user is reading in place; tell them what arrived above.
      scroller.scrollTop += above * ROW_H;
      state.unseen += above;
      showNewPill();
    }
    if (state.selected !== null && batch.some((f) => f.seq === state.selected)) {
      loadDetail(state.selected);
    }
  }

  function showNewPill() {
    const pill = $('new-flows');
    const n = state.unseen + state.held.length;
    if (n <= 0) { pill.hidden = true; return; }
    pill.textContent = state.paused
      ? `${nf.format(state.held.length)} new while paused · resume`
      : `↑ ${nf.format(state.unseen)} new flow${state.unseen === 1 ? '' : 's'}`;
    pill.hidden = false;
  }
  function hideNewPill() {
    state.unseen = 0;
    if (!state.paused) $('new-flows').hidden = true;
  }
  $('new-flows').addEventListener('click', () => {
    if (state.paused) setPaused(false);
    scroller.scrollTop = 0;
    hideNewPill();
  });

  function resetFlows() {
    state.flows = [];
    state.bySeq = new Map();
    state.incoming = [];
    state.held = [];
    state.unseen = 0;
    $('new-flows').hidden = true;
  }

  // ---------------------------------------------------------------- loading and live updates

  async function loadAll() {
    const gen = ++state.gen;
    state.loading = true;
    resetFlows();
    scheduleRender();
    const q = encodeURIComponent(state.filter);
    let before = 0;
    try {
      do {
        const page = await api(`/api/flows?limit=${PAGE}&before=${before}&filter=${q}`);
        if (gen !== state.gen) return;
        insertFlows(page.flows);
        before = page.next_before;
        scheduleRender();
      } while (before);
    } catch (e) {
      if (gen === state.gen) toast('Could not load flows: ' + e.message, true);
    } finally {
      if (gen === state.gen) {
        state.loading = false;
        scheduleRender();
      }
    }
  }

  function setLive(cls, text) {
    const live = $('live');
    live.className = 'live ' + cls;
    $('live-text').textContent = text;
  }

  function openStream() {
    if (state.es) state.es.close();
    const es = new EventSource(`/api/events?filter=${encodeURIComponent(state.filter)}`);
    state.es = es;
    es.addEventListener('hello', () => {
      setLive(state.paused ? 'paused' : 'on', state.paused ? 'paused' : 'live');
      loadAll();
    });
    es.addEventListener('flow', (ev) => onLiveFlow(JSON.parse(ev.data)));
    es.addEventListener('update', (ev) => onLiveFlow(JSON.parse(ev.data)));
    es.addEventListener('clear', () => {
      resetFlows();
      closeDetail();
      scheduleRender();
    });
    es.addEventListener('dropped', (ev) => {
      const d = JSON.parse(ev.data);
      toast(`The viewer fell behind: ${nf.format(d.flows)} flows are only in the session log`, true);
    });
    es.onerror = () => {
      if (state.es === es) setLive('off', 'reconnecting');
    };
  }

  function onLiveFlow(f) {
    if (state.paused && !state.bySeq.has(f.seq)) {
      state.held.push(f);
      showNewPill();
      return;
    }
    state.incoming.push(f);
    scheduleRender();
  }

  function setPaused(p) {
    state.paused = p;
    const btn = $('btn-pause');
    btn.textContent = p ? 'Resume' : 'Pause';
    btn.classList.toggle('on', p);
    setLive(p ? 'paused' : 'on', p ? 'paused' : 'live');
    if (!p && state.held.length) {
      state.incoming.push(...state.held);
      state.held = [];
      scheduleRender();
    }
    showNewPill();
  }
  $('btn-pause').addEventListener('click', () => setPaused(!state.paused));

  // ---------------------------------------------------------------- filter

  const filterInput = $('filter');
  let filterTimer = 0;
  let filterCheck = 0;

  function showFilterError(msg) {
    const el = $('filter-error');
    el.textContent = msg || '';
    el.hidden = !msg;
    filterInput.classList.toggle('invalid', !!msg);
  }

  async function validateAndApply(text, immediate) {
    const check = ++filterCheck;
    try {
      const r = await api(`/api/filter?q=${encodeURIComponent(text)}`);
      if (check !== filterCheck) return;
      if (!r.ok) {
        showFilterError(r.error);
        return;
      }
      showFilterError('');
      if (text !== state.filter || immediate) applyFilter(text);
    } catch (e) {
      if (check === filterCheck) showFilterError(e.message);
    }
  }

  function applyFilter(text) {
    state.filter = text;
    state.loading = true;  // until the new stream's list has arrived
    renderCount();
    filterInput.classList.toggle('active', !!text);
    const url = new URL(location.href);
    if (text) url.searchParams.set('filter', text); else url.searchParams.delete('filter');
    url.searchParams.delete('token');
    history.replaceState(null, '', url.pathname + url.search + url.hash);
    $('btn-har').href = '/api/export.har' + (text ? '?filter=' + encodeURIComponent(text) : '');
    openStream();
  }

  filterInput.addEventListener('input', () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => validateAndApply(filterInput.value.trim(), false), 280);
  });
  filterInput.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') {
      clearTimeout(filterTimer);
      validateAndApply(filterInput.value.trim(), false);
      scroller.focus();
    } else if (ev.key === 'Escape') {
      filterInput.blur();
      showFilterError('');
    }
  });
  filterInput.addEventListener('blur', () => setTimeout(() => {
    if (!filterInput.classList.contains('invalid')) showFilterError('');
  }, 150));

  function setFilterText(text) {
    filterInput.value = text;
    clearTimeout(filterTimer);
    validateAndApply(text, false);
  }

  const help = $('filter-help');
  $('filter-help-btn').addEventListener('click', (ev) => {
    ev.stopPropagation();
    help.hidden = !help.hidden;
  });
  document.addEventListener('click', (ev) => {
    if (!help.hidden && !help.contains(ev.target)) help.hidden = true;
  });

  // ---------------------------------------------------------------- selection and detail

  function select(seq, fromMouse) {
    if (seq === null || seq === undefined) return;
    state.selected = seq;
    renderRows();
    if (!fromMouse) ensureVisible(seq);
    loadDetail(seq);
  }

  function ensureVisible(seq) {
    const i = indexOfSeq(seq);
    const top = i * ROW_H;
    if (top < scroller.scrollTop) scroller.scrollTop = top;
    else if (top + ROW_H > scroller.scrollTop + scroller.clientHeight) {
      scroller.scrollTop = top + ROW_H - scroller.clientHeight;
    }
    scheduleRender();
  }

  function moveSelection(delta) {
    if (!state.flows.length) return;
    let i = state.selected === null ? -1 : indexOfSeq(state.selected);
    if (state.selected !== null && (!state.flows[i] || state.flows[i].seq !== state.selected)) i = -1;
    i = i < 0 ? (delta > 0 ? 0 : state.flows.length - 1) : Math.min(state.flows.length - 1, Math.max(0, i + delta));
    select(state.flows[i].seq, false);
  }

  let detailGen = 0;
  async function loadDetail(seq) {
    const f = state.bySeq.get(seq);
    if (!f) return;
    const gen = ++detailGen;
    try {
      const d = await api(`/api/flows/${encodeURIComponent(f.id)}`);
      if (gen !== detailGen) return;
      state.detail = d;
      renderDetail();
    } catch (e) {
      if (gen === detailGen) {
        state.detail = null;
        $('detail-placeholder').hidden = false;
        $('detail-body').hidden = true;
        $('detail-placeholder').replaceChildren(h('p', {text: 'This flow is no longer available: ' + e.message}));
      }
    }
  }

  function closeDetail() {
    state.selected = null;
    state.detail = null;
    detailGen++;
    $('detail-body').hidden = true;
    const ph = $('detail-placeholder');
    ph.hidden = false;
    ph.replaceChildren(
      h('p', {text: 'Select a flow to see its request, response, TLS details and timing.'}),
      h('p', {class: 'muted'}, h('kbd', {text: 'j'}), ' ', h('kbd', {text: 'k'}), ' move   ', h('kbd', {text: '/'}), ' filter'));
    renderRows();
  }

  function flowUrl(d) {
    if (d.request) return d.request.url;
    return `${hostPort(d.server.host, d.server.port)}`;
  }

  function renderDetail() {
    const d = state.detail;
    if (!d) return;
    $('detail-placeholder').hidden = true;
    const body = $('detail-body');
    body.hidden = false;
    const req = d.request, resp = d.response;
    const method = req ? req.method : (d.kind === 'tunnel' ? 'CONNECT' : '');
    let pill;
    if (d.error) pill = h('span', {class: 'pill s0', text: 'failed'});
    else if (resp) pill = h('span', {class: 'pill ' + statusClass(resp.status), text: `${resp.status} ${resp.reason || ''}`.trim()});
    else if (d.kind === 'tunnel') pill = h('span', {class: 'pill s1', text: 'tunnel'});

    const meta = [];
    const start = (d.timings.request_start || d.timings.accepted);
    meta.push(h('span', {text: fmtDateTime(start)}));
    if (d.duration_ms !== null && d.duration_ms !== undefined) meta.push(h('span', {text: fmtMs(d.duration_ms)}));
    if (resp) meta.push(h('span', {text: fmtSize(resp.body.size) + (resp.body.content_encoding ? ` (${resp.body.content_encoding})` : '')}));
    if (req) meta.push(h('span', {text: req.version + (d.client.tls && d.client.tls.alpn ? ` · ALPN ${d.client.tls.alpn}` : '')}));
    meta.push(h('span', {class: 'link', title: 'Show every flow of this client connection', text: `client conn #${d.client.conn}`,
      onclick: () => setFilterText(`conn:${d.client.conn}`)}));
    if (d.server.conn) {
      meta.push(h('span', {class: 'link', title: 'Show every flow on this upstream connection',
        text: `upstream #${d.server.conn}${d.server.reused ? ' (reused)' : ''}`,
        onclick: () => setFilterText(`upstream:${d.server.conn}`)}));
    }

    const tabs = [
      ['overview', 'Overview'],
      ['request', 'Request', req ? `${req.headers.length} h` : ''],
      ['response', 'Response', resp ? `${resp.headers.length} h` : ''],
      ['tls', 'TLS'],
    ];
    const tabBar = h('div', {class: 'd-tabs', role: 'tablist'},
      tabs.map(([id, label, badge]) => h('button', {
        class: 'd-tab' + (state.detailTab === id ? ' active' : ''), role: 'tab', dataset: {tab: id},
        onclick: () => { state.detailTab = id; renderDetail(); },
      }, label, badge ? h('span', {class: 'badge', text: badge}) : null)));

    const actions = h('div', {class: 'd-actions'},
      req ? h('button', {class: 'btn small', id: 'btn-curl', title: 'Copy this request as a curl command (c)', text: 'Copy as curl', onclick: copyCurl}) : null,
      req ? h('button', {class: 'btn small', text: 'Copy URL', onclick: () => copyText(req.url, 'URL copied')}) : null,
      resp && resp.body.size > 0 ? h('a', {class: 'btn small', id: 'btn-download', text: 'Download body',
        href: `/api/flows/${encodeURIComponent(d.id)}/response/body?decode=1&download=1`}) : null,
      h('button', {class: 'btn small', text: 'Same host', title: 'Filter on this host',
        onclick: () => setFilterText(`host:${req ? req.host : d.server.host}`)}),
      h('button', {class: 'btn small ghost', text: 'Close', title: 'Esc', onclick: closeDetail}));

    const head = h('div', {class: 'd-head'},
      h('div', {class: 'd-title'},
        h('span', {class: 'method m-' + method, text: method}),
        h('span', {class: 'd-url', text: flowUrl(d)}),
        pill),
      h('div', {class: 'd-meta'}, meta),
      actions,
      tabBar);

    const content = h('div', {class: 'd-content', id: 'detail-content'});
    if (state.detailTab === 'overview') renderOverview(content, d);
    else if (state.detailTab === 'request') renderMessage(content, d, 'request');
    else if (state.detailTab === 'response') renderMessage(content, d, 'response');
    else renderTls(content, d);
    body.replaceChildren(head, content);
  }

  function kvGrid(pairs) {
    const grid = h('div', {class: 'kv'});
    for (const [k, v] of pairs) {
      if (v === undefined || v === null || v === '') continue;
      grid.append(h('div', {class: 'k', text: k}), v instanceof Node ? h('div', {class: 'v'}, v) : h('div', {class: 'v', text: String(v)}));
    }
    return grid;
  }

  function section(title, ...children) {
    return h('div', {class: 'section'}, h('h4', null, title), ...children);
  }

  function errorBox(d) {
    if (!d.error) return null;
    return h('div', {class: 'error-box', id: 'flow-error'},
      h('div', {class: 'phase', text: `failed during ${d.error.phase.replace(/_/g, ' ')}`}),
      h('div', {class: 'msg', text: d.error.message}));
  }

  function renderOverview(el, d) {
    el.append(errorBox(d) || '');
    if (d.insecure) el.append(h('div', {class: 'note warn', text: 'Upstream certificate verification was disabled (--insecure) for this flow.'}));
    const req = d.request, resp = d.response;
    el.append(section('Summary', kvGrid([
      ['URL', req ? req.url : null],
      ['Method', req ? req.method : (d.kind === 'tunnel' ? 'CONNECT (not intercepted)' : null)],
      ['Status', resp ? `${resp.status} ${resp.reason}` : null],
      ['Interim', resp && resp.informational ? resp.informational.join(', ') : null],
      ['Client', `${d.client.addr}  ·  connection #${d.client.conn}`],
      ['Server', `${hostPort(d.server.host, d.server.port)}${d.server.addr ? '  ·  ' + d.server.addr : ''}`],
      ['Upstream conn', d.server.conn ? `#${d.server.conn}${d.server.reused ? ' (reused)' : ' (new)'}` : null],
      ['Request body', req ? fmtSize(req.body.size) + (req.body.truncated ? ' (copy truncated)' : '') : null],
      ['Response body', resp ? fmtSize(resp.body.size) + (resp.body.truncated ? ' (copy truncated)' : '') : null],
      ['Tunnel bytes', d.kind === 'tunnel' ? `↑ ${fmtSize(d.bytes.up)}  ↓ ${fmtSize(d.bytes.down)}` : null],
      ['Flow id', d.id],
    ])));
    el.append(section('Timing', waterfall(d)));
  }

  function waterfall(d) {
    const t = d.timings;
    const steps = [];
    const add = (cls, label, a, b) => { if (a > 0 && b > 0 && b >= a) steps.push({cls, label, a, b}); };
    add('connect', 'Upstream connect', t.upstream_connect_start, t.upstream_connect_end);
    add('tls', 'Upstream TLS', t.upstream_connect_end, t.upstream_tls_end);
    add('client-tls', 'Client TLS', Math.max(t.upstream_tls_end || 0, t.accepted || 0), t.client_tls_end);
    add('send', 'Request', t.request_start, t.request_end);
    add('wait', 'Waiting (TTFB)', t.request_end, t.response_start);
    add('receive', 'Response', t.response_start, t.response_end);
    const all = Object.values(t).filter((v) => v > 0);
    if (!all.length || !steps.length) return h('div', {class: 'muted', text: 'No timing recorded.'});
    const origin = Math.min(...all);
    const end = Math.max(...all);
    const span = Math.max(end - origin, 1e-6);
    const grid = h('div', {class: 'waterfall', id: 'waterfall'});
    for (const s of steps) {
      const bar = h('div', {class: 'bar ' + s.cls, title: `${s.label}: ${fmtMs((s.b - s.a) * 1000)}`});
      bar.style.left = ((s.a - origin) / span * 100).toFixed(3) + '%';
      bar.style.width = Math.max((s.b - s.a) / span * 100, 0.4).toFixed(3) + '%';
      grid.append(h('div', {class: 'lbl', text: s.label}), h('div', {class: 'track'}, bar), h('div', {class: 'ms', text: fmtMs((s.b - s.a) * 1000)}));
    }
    const total = h('div', {class: 'muted'},
      `Total ${fmtMs(span * 1000)} from connection accepted to last byte`,
      d.server.reused ? ` · upstream connection #${d.server.conn} was reused, so there was no connect` : '');
    total.style.marginTop = '8px';
    return h('div', null, grid, total);
  }

  function headersTable(headers) {
    if (!headers || !headers.length) return h('div', {class: 'muted', text: 'No headers.'});
    const table = h('table', {class: 'headers'});
    for (const [k, v] of headers) table.append(h('tr', null, h('td', {class: 'hn', text: k}), h('td', {text: v})));
    return table;
  }

  function renderMessage(el, d, side) {
    const m = d[side];
    if (!m) {
      el.append(errorBox(d) || '', h('div', {class: 'muted', text: side === 'response' ? 'No response was received.' : 'No request was parsed.'}));
      return;
    }
    const first = side === 'request' ? `${m.method} ${m.target || m.path} ${m.version}` : `${m.version} ${m.status} ${m.reason}`;
    el.append(h('div', {class: 'section'}, h('pre', {class: 'code', text: first})));
    el.append(section(`Headers (${m.headers.length})`, headersTable(m.headers)));
    if (m.trailers && m.trailers.length) el.append(section('Trailers', headersTable(m.trailers)));
    const bodySection = h('div', {class: 'section', id: `${side}-body`});
    el.append(bodySection);
    renderBody(bodySection, d, side);
  }

  function classify(type) {
    const t = (type || '').toLowerCase().split(';')[0].trim();
    if (t.startsWith('image/')) return 'image';
    if (t.includes('json')) return 'json';
    if (t === 'application/x-www-form-urlencoded') return 'form';
    if (t.includes('xml') || t === 'text/html') return 'markup';
    if (t.startsWith('text/') || t.includes('javascript') || t.includes('ecmascript') || t === 'application/graphql') return 'text';
    if (!t) return 'unknown';
    return 'binary';
  }

  function looksBinary(bytes) {
    const n = Math.min(bytes.length, 4096);
    for (let i = 0; i < n; i++) if (bytes[i] === 0) return true;
    try { new TextDecoder('utf-8', {fatal: true}).decode(bytes.subarray(0, Math.min(bytes.length, 65536))); } catch (e) {
      // A cut in the middle of a multi-byte sequence at the sample's end is not binary.
      return bytes.length <= 65536;
    }
    return false;
  }

  function hexDump(bytes) {
    const lines = [];
    const n = Math.min(bytes.length, MAX_HEX);
    for (let off = 0; off < n; off += 16) {
      let hex = '', ascii = '';
      for (let i = 0; i < 16; i++) {
        if (off + i < n) {
          const b = bytes[off + i];
          hex += b.toString(16).padStart(2, '0') + (i === 7 ? '  ' : ' ');
          ascii += b >= 32 && b < 127 ? String.fromCharCode(b) : '.';
        } else {
          hex += i === 7 ? '    ' : '   ';
        }
      }
      lines.push(off.toString(16).padStart(8, '0') + '  ' + hex + ' ' + ascii);
    }
    if (bytes.length > n) lines.push(`… ${fmtSize(bytes.length - n)} more (download the body to see all of it)`);
    return lines.join('\n');
  }

  function highlightJson(value, out, indent) {
    const pad1 = '  '.repeat(indent + 1), pad0 = '  '.repeat(indent);
    if (value === null || typeof value === 'boolean') { out.push(h('span', {class: 'j-lit', text: String(value)})); return; }
    if (typeof value === 'number') { out.push(h('span', {class: 'j-num', text: String(value)})); return; }
    if (typeof value === 'string') { out.push(h('span', {class: 'j-str', text: JSON.stringify(value)})); return; }
    if (Array.isArray(value)) {
      if (!value.length) { out.push('[]'); return; }
      out.push('[\n');
      value.forEach((v, i) => {
        out.push(pad1);
        highlightJson(v, out, indent + 1);
        out.push(i < value.length - 1 ? ',\n' : '\n');
      });
      out.push(pad0 + ']');
      return;
    }
    const keys = Object.keys(value);
    if (!keys.length) { out.push('{}'); return; }
    out.push('{\n');
    keys.forEach((k, i) => {
      out.push(pad1, h('span', {class: 'j-key', text: JSON.stringify(k)}), ': ');
      highlightJson(value[k], out, indent + 1);
      out.push(i < keys.length - 1 ? ',\n' : '\n');
    });
    out.push(pad0 + '}');
  }

  function prettyMarkup(text) {
    // Line breaks between tags for minified XML/HTML; text stays text (never parsed as HTML).
    if (text.length > MAX_PRETTY || text.split('\n').length > 20) return text;
    let depth = 0;
    return text.replace(/>\s*</g, '>\n<').split('\n').map((line) => {
      const closing = /^<\//.test(line);
      if (closing) depth = Math.max(0, depth - 1);
      const out = '  '.repeat(depth) + line;
      if (/^<[^!?/][^>]*[^/]>$/.test(line) && !/^<(br|hr|img|input|meta|link)\b/i.test(line) && !line.includes('</')) depth++;
      return out;
    }).join('\n');
  }

  async function renderBody(el, d, side) {
    const m = d[side];
    const b = m.body;
    const type = headerValue(m.headers, 'content-type') || '';
    const kind = classify(type);
    const base = `/api/flows/${encodeURIComponent(d.id)}/${side}/body`;
    const title = h('h4', null, 'Body', h('span', {class: 'spacer-x'}));
    el.replaceChildren(title);
    if (!b.size && !b.truncated) {
      el.append(h('div', {class: 'muted', text: 'No body.'}));
      return;
    }
    const info = [fmtSize(b.size)];
    if (b.content_encoding) info.push(b.content_encoding);
    if (type) info.push(type);
    if (b.truncated) info.push(`recorded copy cut at ${fmtSize(d.body_record_cap)}`);
    const mode = state.bodyView[side] || 'pretty';
    const seg = h('div', {class: 'seg'}, ['pretty', 'raw', 'hex'].map((m2) => h('button', {
      class: mode === m2 ? 'active' : '', text: m2[0].toUpperCase() + m2.slice(1),
      onclick: () => { state.bodyView[side] = m2; renderBody(el, d, side); },
    })));
    const bar = h('div', {class: 'body-bar'}, seg, h('span', {class: 'body-info', text: info.join(' · ')}),
      h('a', {class: 'btn small', href: base + '?decode=1&download=1', text: 'Download'}));
    el.append(bar);
    const holder = h('div', {class: 'body-view'}, h('div', {class: 'muted', text: 'Loading…'}));
    el.append(holder);

    if (kind === 'image' && mode === 'pretty') {
      const img = h('img', {src: base + '?decode=1', alt: 'response image', id: 'body-image'});
      const dims = h('div', {class: 'muted'});
      img.addEventListener('load', () => { dims.textContent = `${img.naturalWidth} × ${img.naturalHeight} px`; });
      img.addEventListener('error', () => { dims.textContent = 'The image could not be displayed (it may be truncated or not an image).'; });
      holder.replaceChildren(h('div', {class: 'img-wrap'}, img), dims);
      return;
    }
    let bytes, res;
    try {
      res = await fetch(base + '?decode=1');
      bytes = new Uint8Array(await res.arrayBuffer());
    } catch (e) {
      holder.replaceChildren(h('div', {class: 'muted', text: 'Could not load the body: ' + e.message}));
      return;
    }
    const notes = [];
    const decodeError = res.headers.get('X-Mitmd-Decode-Error');
    if (decodeError) notes.push(h('div', {class: 'note warn', text: decodeError + ' — shown as recorded.'}));
    if (res.headers.get('X-Mitmd-Decoded') === 'partial') notes.push(h('div', {class: 'note', text: 'Decoded as far as the recorded copy goes.'}));
    if (mode === 'hex' || ((kind === 'binary' || kind === 'unknown' || kind === 'image') && looksBinary(bytes))) {
      holder.replaceChildren(...notes, h('pre', {class: 'code hex', text: hexDump(bytes)}));
      return;
    }
    const text = new TextDecoder('utf-8').decode(bytes);
    if (mode === 'raw') {
      holder.replaceChildren(...notes, h('pre', {class: 'code', text}));
      return;
    }
    if (kind === 'json' || (kind === 'unknown' && /^\s*[[{]/.test(text))) {
      try {
        const value = JSON.parse(text);
        const pre = h('pre', {class: 'code json', id: `${side}-json`});
        if (text.length <= MAX_PRETTY) {
          const parts = [];
          highlightJson(value, parts, 0);
          pre.append(...parts);
        } else {
          pre.textContent = JSON.stringify(value, null, 2);
        }
        holder.replaceChildren(...notes, pre);
        return;
      } catch (e) {
        notes.push(h('div', {class: 'note', text: 'Not valid JSON (' + e.message + '); shown as text.'}));
      }
    }
    if (kind === 'form') {
      const params = new URLSearchParams(text);
      const table = h('table', {class: 'headers'});
      for (const [k, v] of params) table.append(h('tr', null, h('td', {class: 'hn', text: k}), h('td', {text: v})));
      holder.replaceChildren(...notes, table, h('pre', {class: 'code', text}));
      return;
    }
    if (kind === 'markup') {
      holder.replaceChildren(...notes, h('pre', {class: 'code', text: prettyMarkup(text)}));
      return;
    }
    holder.replaceChildren(...notes, h('pre', {class: 'code', text}));
  }

  function tlsCard(title, t) {
    if (!t) return h('div', {class: 'tls-card'}, h('h5', {text: title}), h('div', {class: 'muted', text: 'No TLS on this side.'}));
    return h('div', {class: 'tls-card'}, h('h5', {text: title}), kvGrid([
      ['Version', t.version], ['Cipher', t.cipher], ['ALPN', t.alpn || '(none)'],
      ['Offered', t.alpn_offered ? t.alpn_offered.join(', ') : null], ['SNI', t.sni || '(none)'],
    ]));
  }

  function renderTls(el, d) {
    el.append(section('Connections', h('div', {class: 'tls-grid'},
      tlsCard('Client ↔ mitmd', d.client.tls),
      tlsCard('mitmd ↔ server', d.server.tls))));
    const c = d.server.cert;
    if (c) {
      const verdict = c.verified
        ? h('span', {class: 'tag good', text: d.insecure ? 'not verified (--insecure)' : 'verified'})
        : h('span', {class: 'tag bad', text: c.verify_error || 'not verified'});
      el.append(section('Server certificate', kvGrid([
        ['Verification', verdict],
        ['Subject', c.subject], ['Issuer', c.issuer],
        ['Names', (c.sans || []).join(', ')],
        ['Valid', `${c.not_before}  →  ${c.not_after}`],
        ['SHA-256', c.sha256],
      ])));
    } else if (d.server.tls) {
      el.append(section('Server certificate', h('div', {class: 'muted', text: 'Not recorded.'})));
    }
    if (d.error && /tls/.test(d.error.phase)) el.prepend(errorBox(d));
  }

  // ---------------------------------------------------------------- copy as curl

  function shellQuote(s) {
    return `'${String(s).replace(/'/g, `'\\''`)}'`;
  }
  const SKIP_HEADERS = new Set(['host', 'content-length', 'connection', 'proxy-connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade']);

  async function buildCurl(d) {
    const r = d.request;
    const parts = ['curl'];
    if (r.method !== 'GET' || r.body.size > 0) {
      if (!(r.method === 'POST' && r.body.size > 0)) parts.push('-X ' + shellQuote(r.method));
    }
    parts.push(shellQuote(r.url));
    let compressed = false;
    for (const [k, v] of r.headers) {
      const lk = k.toLowerCase();
      if (SKIP_HEADERS.has(lk)) continue;
      if (lk === 'accept-encoding') compressed = true;
      parts.push('-H ' + shellQuote(`${k}: ${v}`));
    }
    const host = headerValue(r.headers, 'host');
    if (host && host !== hostPort(r.host, r.port, r.scheme)) parts.push('-H ' + shellQuote(`Host: ${host}`));
    if (r.body.size > 0) {
      const res = await fetch(`/api/flows/${encodeURIComponent(d.id)}/request/body`);
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (looksBinary(bytes)) {
        parts.push(`--data-binary @request-body.bin  # ${fmtSize(bytes.length)} binary body: download it from the viewer`);
      } else {
        parts.push('--data-raw ' + shellQuote(new TextDecoder().decode(bytes)));
      }
    }
    if (compressed) parts.push('--compressed');
    if (r.version === 'HTTP/2' || r.version === 'HTTP/2.0') parts.push('--http2');
    return parts.join(' \\\n  ');
  }

  async function copyText(text, done) {
    try {
      await navigator.clipboard.writeText(text);
    } catch (e) {
      const ta = h('textarea', {class: 'clip'});
      ta.value = text;
      document.body.append(ta);
      ta.select();
      document.execCommand('copy');
      ta.remove();
    }
    toast(done);
  }

  async function copyCurl() {
    const d = state.detail;
    if (!d || !d.request) return;
    const cmd = await buildCurl(d);
    window.__mitmdLastCurl = cmd;  // read by the browser tests
    await copyText(cmd, 'curl command copied');
  }

  // ---------------------------------------------------------------- actions

  $('btn-clear').addEventListener('click', async () => {
    try {
      const r = await api('/api/clear', {method: 'POST', headers: {'X-Mitmd': '1'}});
      toast(`Cleared ${nf.format(r.cleared)} flows from the viewer (the session log keeps them)`);
    } catch (e) {
      toast('Clear failed: ' + e.message, true);
    }
  });

  $('btn-import').addEventListener('click', () => $('import-file').click());
  $('import-file').addEventListener('change', async (ev) => {
    const file = ev.target.files[0];
    ev.target.value = '';
    if (!file) return;
    try {
      const r = await api('/api/import', {method: 'POST', headers: {'X-Mitmd': '1', 'Content-Type': 'application/octet-stream'}, body: file});
      toast(`Imported ${nf.format(r.added)} flows from ${file.name}${r.skipped ? ` (${r.skipped} unreadable skipped)` : ''}`);
    } catch (e) {
      toast(`Could not import ${file.name}: ${e.message}`, true);
    }
  });

  // Splitter between table and detail pane.
  (() => {
    const split = $('splitter');
    const detail = $('detail');
    try {
      const w = Number(localStorage.getItem('mitmd-detail-width'));
      if (w > 300) detail.style.flexBasis = w + 'px';
    } catch (e) { /* storage off */ }
    split.addEventListener('mousedown', (ev) => {
      ev.preventDefault();
      split.classList.add('drag');
      const move = (e) => {
        const w = Math.min(Math.max(window.innerWidth - e.clientX, 340), window.innerWidth - 360);
        detail.style.flexBasis = w + 'px';
        scheduleRender();
      };
      const up = () => {
        split.classList.remove('drag');
        window.removeEventListener('mousemove', move);
        window.removeEventListener('mouseup', up);
        try { localStorage.setItem('mitmd-detail-width', parseInt(detail.style.flexBasis, 10)); } catch (e) { /* storage off */ }
      };
      window.addEventListener('mousemove', move);
      window.addEventListener('mouseup', up);
    });
  })();

  // ---------------------------------------------------------------- connections view

  function setView(view) {
    state.view = view;
    for (const tab of document.querySelectorAll('.view-tab')) {
      const on = tab.dataset.view === view;
      tab.classList.toggle('active', on);
      tab.setAttribute('aria-selected', on ? 'true' : 'false');
    }
    $('view-flows').hidden = view !== 'flows';
    $('view-conns').hidden = view !== 'conns';
    if (view === 'conns') {
      openConnsStream();
    } else {
      if (state.connsEs) { state.connsEs.close(); state.connsEs = null; }
      scheduleRender();
    }
  }
  for (const tab of document.querySelectorAll('.view-tab')) tab.addEventListener('click', () => setView(tab.dataset.view));

  function openConnsStream() {
    if (state.connsEs) return;
    const es = new EventSource('/api/events?conns=1&flows=0');
    state.connsEs = es;
    es.addEventListener('conns', (ev) => {
      state.conns = JSON.parse(ev.data);
      state.connsAt = Date.now() / 1000;
      renderConns();
    });
  }

  function renderConns() {
    const data = state.conns;
    if (!data) return;
    const showClosed = $('conns-show-closed').checked;
    const elapsed = Date.now() / 1000 - state.connsAt;
    const body = $('conns-body');
    const rows = [];
    for (const c of data.connections) {
      if (!c.open && !showClosed) continue;
      if (rows.length >= 1500) break;
      const now = data.now + elapsed;
      const idle = c.open ? c.idle + elapsed : c.idle;
      const age = (c.open ? now : c.closed) - c.opened;
      let closer = '';
      if (!c.open) {
        closer = c.closed_by === 'mitmd' ? 'mitmd (TIME_WAIT here)' : c.closed_by === 'peer' ? (c.side === 'client' ? 'client' : 'server') : '?';
      }
      const target = c.host ? hostPort(c.host, c.port) : '';
      const tr = h('tr', {class: c.open ? 'open' : 'closed', title: c.close_reason || '', dataset: {id: c.id, side: c.side}},
        h('td', {text: '#' + c.id}),
        h('td', null, h('span', {class: 'side ' + c.side, text: c.side}), c.side === 'upstream' && c.client ? h('span', {class: 'muted', text: ` ← #${c.client}`}) : ''),
        h('td', null, h('span', {class: 'state', text: c.open ? 'open' : 'closed'})),
        h('td', {text: c.peer}),
        h('td', {text: target}),
        h('td', {class: 'num'}, String(c.requests), c.reused ? h('span', {class: 'tag', text: 'reused'}) : ''),
        h('td', {class: 'num', text: fmtSize(c.bytes_in)}),
        h('td', {class: 'num', text: fmtSize(c.bytes_out)}),
        h('td', {text: c.tls ? `${c.tls.version}${c.tls.alpn ? ' · ' + c.tls.alpn : ''}` : ''}),
        h('td', {class: 'num', text: fmtAge(age)}),
        h('td', {class: 'num', text: fmtAge(idle)}),
        h('td', null, closer, c.close_reason ? h('span', {class: 'muted', text: ` · ${c.close_reason}`}) : ''));
      tr.addEventListener('click', () => {
        setView('flows');
        setFilterText(c.side === 'client' ? `conn:${c.id}` : `upstream:${c.id}`);
      });
      rows.push(tr);
    }
    body.replaceChildren(...rows);
    $('conns-count').textContent = `${nf.format(data.open)} open · ${nf.format(data.closed)} closed`;
  }
  $('conns-show-closed').addEventListener('change', renderConns);
  setInterval(() => { if (state.view === 'conns') renderConns(); }, 1000);

  // ---------------------------------------------------------------- keyboard

  document.addEventListener('keydown', (ev) => {
    const target = ev.target;
    const typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement;
    if (ev.key === 'Escape') {
      if (!help.hidden) { help.hidden = true; return; }
      if (typing) return;
      if (state.selected !== null) closeDetail();
      return;
    }
    if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    switch (ev.key) {
      case '/':
        ev.preventDefault();
        if (state.view !== 'flows') setView('flows');
        filterInput.focus();
        filterInput.select();
        break;
      case '?':
        help.hidden = !help.hidden;
        break;
      case 'j': case 'ArrowDown':
        if (state.view !== 'flows') return;
        ev.preventDefault();
        moveSelection(1);
        break;
      case 'k': case 'ArrowUp':
        if (state.view !== 'flows') return;
        ev.preventDefault();
        moveSelection(-1);
        break;
      case 'g':
        if (state.flows.length) select(state.flows[0].seq, false);
        break;
      case 'G':
        if (state.flows.length) select(state.flows[state.flows.length - 1].seq, false);
        break;
      case 'Enter':
        if (state.selected !== null) loadDetail(state.selected);
        break;
      case '1': case '2': case '3': case '4':
        if (state.detail) {
          state.detailTab = ['overview', 'request', 'response', 'tls'][Number(ev.key) - 1];
          renderDetail();
        }
        break;
      case 'c':
        copyCurl();
        break;
      case ' ':
        if (target === document.body || target === scroller) {
          ev.preventDefault();
          setPaused(!state.paused);
        }
        break;
      default:
        break;
    }
  });

  // ---------------------------------------------------------------- start

  async function start() {
    initTheme();
    const params = new URLSearchParams(location.search);
    const initial = params.get('filter') || '';
    filterInput.value = initial;
    state.filter = initial;
    filterInput.classList.toggle('active', !!initial);
    if (params.has('token')) {
      params.delete('token');
      const rest = params.toString();
      history.replaceState(null, '', location.pathname + (rest ? '?' + rest : ''));
    }
    $('btn-har').href = '/api/export.har' + (initial ? '?filter=' + encodeURIComponent(initial) : '');
    try {
      state.info = await api('/api/info');
      document.title = `mitmd · ${state.info.proxy || 'viewer'}`;
    } catch (e) {
      toast('Could not reach mitmd: ' + e.message, true);
    }
    openStream();
    scheduleRender();
  }

  start();
})();
