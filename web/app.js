// mitmd viewer: a virtualised, sortable flow table fed by the server's JSON API and event stream,
// a detail pane that opens on selection, a context menu, and the Connections view. Plain JS, no
// build step (snippets.js and bodyview.js load first). Untrusted data (anything recorded from
// traffic) only ever reaches the DOM through textContent or attribute setters, never innerHTML.
(() => {
  'use strict';

  const ROW_H = 26;
  const PAGE = 2000;
  const OVERSCAN = 12;
  const SLOW_MS = 1000;
  const MAX_PRETTY = 400 * 1024;   // fold and highlight JSON/XML up to this size; plain text beyond
  const MAX_HEX = 64 * 1024;
  // Rows loaded at once; the rest page in as the table is scrolled near its end. The table holds
  // at most MAX_LOADED; the server's sort decides which ones.
  const EAGER_ROWS = 10000;
  const MAX_LOADED = 100000;
  const TICK_MS = 250;             // how often a live row's elapsed time is redrawn
  const UNDO_MS = 30000;           // the server keeps a cleared session restorable this long
  const MIN_TABLE_W = 420;
  const MIN_DETAIL_W = 340;

  const SNIP = window.mitmdSnippets;
  const BODY = window.mitmdBody;
  const $ = (id) => document.getElementById(id);

  // h('div', {class: 'x', text: 'hi', onclick: fn}, child, 'text', ...)
  const {h, api} = window.mitmdDom;

  function loadJson(key, fallback) {
    try {
      const v = JSON.parse(localStorage.getItem(key));
      return v === null || v === undefined ? fallback : v;
    } catch (e) {
      return fallback;
    }
  }
  function saveJson(key, value) {
    try { localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* storage off */ }
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
  // A running flow's age: tenths of seconds, so it visibly ticks.
  function fmtElapsed(ms) {
    if (ms < 60000) return (Math.max(ms, 0) / 1000).toFixed(1) + ' s';
    return Math.floor(ms / 60000) + ' min ' + Math.floor((ms % 60000) / 1000) + ' s';
  }
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  function fmtTime(t) {
    if (!t) return '';
    const d = new Date(t * 1000);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }
  function fmtDate(t) {
    const d = new Date(t * 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  }
  function fmtDateTime(t) {
    if (!t) return '';
    return `${fmtDate(t)} ${fmtTime(t)}`;
  }
  // The Time column: the time of day for today's flows, the date too for older (imported) ones.
  const todayStart = () => new Date().setHours(0, 0, 0, 0) / 1000;
  function fmtRowTime(t) {
    if (!t) return '';
    if (t >= todayStart()) return fmtTime(t);
    const d = new Date(t * 1000);
    return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  // Session dates may come as epoch seconds or as ISO text.
  function toEpoch(v) {
    if (typeof v === 'number') return v > 1e12 ? v / 1000 : v;
    const ms = Date.parse(v || '');
    return Number.isNaN(ms) ? 0 : ms / 1000;
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
  const isLive = (f) => f.state === 'live' || f.state === 'held';

  // ---------------------------------------------------------------- state

  const SORT_KEYS = ['time', 'method', 'host', 'path', 'status', 'type', 'size', 'dur'];
  function loadSort() {
    const s = loadJson('mitmd-sort', null);
    if (s && SORT_KEYS.includes(s.key) && (s.order === 'asc' || s.order === 'desc')) return s;
    return {key: 'time', order: 'desc'};
  }

  const state = {
    flows: [],              // summaries in display order (state.sort)
    byId: new Map(),
    filter: '',
    sort: loadSort(),
    total: 0,               // flows on the server (unfiltered)
    capped: false,          // more flows match than the table holds
    more: '',               // the query cursor of the next page; '' when the list is complete
    loadingMore: false,
    selected: null,         // id
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
    bodySearch: {},         // side -> {query, result}
    store: false,           // the session store's API (marks, comments, delete, sessions) answers
    sessions: null,         // GET /api/sessions
    session: '',            // the session being viewed when it is not the current one
  };

  // Read endpoints take ?session= to look at another session; recording stays in the current one.
  function withSession(path) {
    if (!state.session) return path;
    return path + (path.includes('?') ? '&' : '?') + 'session=' + encodeURIComponent(state.session);
  }

  function post(path, body, method = 'POST') {
    const opts = {method, headers: {'X-Mitmd': '1'}};
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    return api(path, opts);
  }

  let toastTimer = 0;
  // A message at the bottom; |action| = {label, run} adds a button (Undo) for |ms|.
  function toast(message, isError, action, ms) {
    const t = $('toast');
    t.replaceChildren(h('span', {text: message}));
    if (action) {
      t.append(h('button', {class: 'toast-action', id: 'toast-action', text: action.label, onclick: () => {
        t.hidden = true;
        action.run();
      }}));
    }
    t.classList.toggle('error', !!isError);
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, ms || (isError ? 6000 : 2600));
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

  // ---------------------------------------------------------------- columns

  // w: default width; min: narrowest a drag or the layout may make it; drop: when the table is
  // too narrow, columns with a drop rank are hidden, lowest first. Path takes what is left.
  const COLUMNS = [
    {id: 'seq', label: '#', w: 58, min: 34, sort: 'time', drop: 4, title: 'Arrival order'},
    {id: 'time', label: 'Time', w: 112, min: 70, sort: 'time', drop: 2},
    {id: 'method', label: 'Method', w: 76, min: 50, sort: 'method'},
    {id: 'host', label: 'Host', w: 210, min: 90, sort: 'host', title: 'Host and port'},
    {id: 'path', label: 'Path', w: 160, min: 100, sort: 'path', flex: true},
    {id: 'status', label: 'Status', w: 64, min: 46, sort: 'status'},
    {id: 'type', label: 'Type', w: 80, min: 40, sort: 'type', drop: 1},
    {id: 'size', label: 'Size', w: 80, min: 50, sort: 'size', title: 'Decoded body size (hover: on the wire)'},
    {id: 'dur', label: 'Duration', w: 84, min: 56, sort: 'dur', title: 'Request start to last byte; live flows tick'},
    {id: 'flags', label: 'Flags', w: 84, min: 40, drop: 3, title: 'TLS, reuse, truncation, errors, comments, imports'},
  ];
  const colWidths = loadJson('mitmd-cols', {});
  const tablePane = $('table-pane');
  const thead = $('thead');
  const scroller = $('scroller');
  const rowsEl = $('rows');
  const spacer = $('spacer');

  function colWidth(c) {
    const w = Number(colWidths[c.id]);
    return w >= c.min ? w : c.w;
  }

  function buildHeader() {
    thead.replaceChildren();
    for (const c of COLUMNS) {
      const rz = h('div', {class: 'rz', title: 'Drag to resize; double-click for the default width'});
      const cell = h('div', {class: `c ${c.id}` + (c.sort ? ' sortable' : ''), role: 'columnheader', title: c.title,
        dataset: {col: c.id}}, h('span', {class: 'lbl', text: c.label}), h('span', {class: 'sort-ind'}), rz);
      if (c.sort) {
        cell.addEventListener('click', (ev) => {
          if (!ev.target.classList.contains('rz')) toggleSort(c.sort);
        });
      }
      rz.addEventListener('mousedown', (ev) => startColumnResize(ev, c, cell));
      rz.addEventListener('dblclick', (ev) => {
        ev.stopPropagation();
        delete colWidths[c.id];
        saveJson('mitmd-cols', colWidths);
        layoutColumns();
      });
      thead.append(cell);
    }
    renderSortIndicator();
  }

  function startColumnResize(ev, c, cell) {
    ev.preventDefault();
    ev.stopPropagation();
    const startX = ev.clientX;
    const startW = cell.getBoundingClientRect().width;
    document.body.classList.add('col-resizing');
    const move = (e) => {
      colWidths[c.id] = Math.round(Math.max(c.min, startW + e.clientX - startX));
      layoutColumns();
    };
    const up = () => {
      document.body.classList.remove('col-resizing');
      window.removeEventListener('mousemove', move);
      window.removeEventListener('mouseup', up);
      saveJson('mitmd-cols', colWidths);
    };
    window.addEventListener('mousemove', move);
    window.addEventListener('mouseup', up);
  }

  // Fits the columns to the table's width: hides the least useful ones first, then narrows Host,
  // so no two columns ever overlap and Path keeps a readable minimum.
  function layoutColumns() {
    const avail = tablePane.clientWidth - (scroller.offsetWidth - scroller.clientWidth) - 2;
    if (avail <= 0) return;
    const visible = new Set(COLUMNS.map((c) => c.id));
    const widths = {};
    for (const c of COLUMNS) widths[c.id] = c.flex ? Math.max(c.min, Number(colWidths[c.id]) || c.w) : colWidth(c);
    const sum = () => COLUMNS.reduce((a, c) => a + (visible.has(c.id) ? widths[c.id] : 0), 0);
    for (const c of COLUMNS.filter((x) => x.drop).sort((a, b) => a.drop - b.drop)) {
      if (sum() <= avail) break;
      visible.delete(c.id);
    }
    const host = COLUMNS.find((c) => c.id === 'host');
    if (sum() > avail) widths.host = Math.max(host.min, widths.host - (sum() - avail));
    const path = COLUMNS.find((c) => c.id === 'path');
    if (sum() > avail) widths.path = Math.max(path.min, widths.path - (sum() - avail));
    const tpl = COLUMNS.filter((c) => visible.has(c.id))
      .map((c) => (c.flex ? `minmax(${widths[c.id]}px, 1fr)` : `${widths[c.id]}px`)).join(' ');
    tablePane.style.setProperty('--cols', tpl);
    for (const c of COLUMNS) tablePane.classList.toggle('hide-' + c.id, !visible.has(c.id));
  }
  new ResizeObserver(() => { layoutColumns(); scheduleRender(); }).observe(tablePane);

  function renderSortIndicator() {
    for (const cell of thead.children) {
      const c = COLUMNS.find((x) => x.id === cell.dataset.col);
      const on = c.sort === state.sort.key && (c.id !== 'seq' || state.sort.key !== 'time');
      cell.classList.toggle('sorted', on);
      cell.querySelector('.sort-ind').textContent = on ? (state.sort.order === 'asc' ? '▲' : '▼') : '';
      if (c.sort) cell.setAttribute('aria-sort', on ? (state.sort.order === 'asc' ? 'ascending' : 'descending') : 'none');
    }
  }

  // Numbers and times sort largest first on the first click, words A to Z.
  function toggleSort(key) {
    if (state.sort.key === key) {
      state.sort = {key, order: state.sort.order === 'asc' ? 'desc' : 'asc'};
    } else {
      state.sort = {key, order: ['time', 'status', 'size', 'dur'].includes(key) ? 'desc' : 'asc'};
    }
    saveJson('mitmd-sort', state.sort);
    renderSortIndicator();
    scroller.scrollTop = 0;
    loadAll();
  }

  function sortValue(f, key) {
    switch (key) {
      case 'method': return f.method || '';
      case 'host': return f.host || '';
      case 'path': return f.path || '';
      case 'status': return f.status || 0;
      case 'type': return f.type || '';
      case 'size': return f.size || 0;
      case 'dur': return f.dur === null || f.dur === undefined ? -1 : f.dur;
      default: return 0;  // time: arrival order
    }
  }
  // The server sorts the same way (sort=, order=): by the column, then newest first; "time" is
  // arrival order. This keeps live rows, and a server that does not sort, in the same order.
  function compare(a, b) {
    const va = sortValue(a, state.sort.key), vb = sortValue(b, state.sort.key);
    let c = va < vb ? -1 : va > vb ? 1 : 0;
    if (state.sort.order === 'desc') c = -c;
    if (!c) c = (state.sort.key === 'time' && state.sort.order === 'asc' ? 1 : -1) * ((a.seq || 0) - (b.seq || 0));
    if (!c) c = a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
    return c;
  }

  // ---------------------------------------------------------------- the table

  const pool = [];
  let renderQueued = false;

  const LOCK_SVG = 'M6 10V8a6 6 0 1 1 12 0v2h1a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H5a1 1 0 0 1-1-1V11a1 1 0 0 1 1-1zm2 0h8V8a4 4 0 1 0-8 0z';
  const COMMENT_SVG = 'M4 3h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z';
  const IMPORT_SVG = 'M11 3h2v9l3.5-3.5 1.4 1.4L12 15.8 6.1 9.9l1.4-1.4L11 12zM4 18h16v2H4z';

  function makeRow() {
    const cells = {};
    const row = h('div', {class: 'row'});
    for (const c of COLUMNS) {
      cells[c.id] = h('div', {class: 'c ' + c.id});
      row.append(cells[c.id]);
    }
    row._cells = cells;
    row.addEventListener('mousedown', (ev) => {
      if (ev.button === 0 && row._id !== undefined) select(row._id, true);
    });
    row.addEventListener('contextmenu', (ev) => {
      if (row._id === undefined) return;
      ev.preventDefault();
      if (state.selected !== row._id) select(row._id, true);
      openMenu(ev.clientX, ev.clientY, row._id);
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

  function sizeTitle(f) {
    if (f.wire_size === undefined || f.wire_size === null || f.wire_size === f.size) return '';
    return `decoded ${fmtSize(f.size)} · ${fmtSize(f.wire_size)} on the wire`;
  }

  function fillRow(row, f) {
    const c = row._cells;
    const live = isLive(f);
    row._id = f.id;
    row.className = 'row' + (f.id === state.selected ? ' sel' : '') + (f.err ? ' failed' : '') +
      (f.marked ? ' marked' : '') + (live ? ' live-flow' : '');
    row.dataset.id = f.id;
    c.seq.textContent = f.seq === undefined ? '' : f.seq;
    c.time.textContent = fmtRowTime(f.t);
    c.time.title = fmtDateTime(f.t);
    c.method.textContent = f.method || '';
    c.method.className = 'c method m-' + (f.method || '');
    c.host.textContent = hostPort(f.host, f.port, f.scheme);
    c.host.title = c.host.textContent;
    c.path.textContent = f.kind === 'tunnel' ? '(tunnel)' : f.path;
    c.path.title = f.comment ? `${f.path}\ncomment: ${f.comment}` : f.path;
    if (f.err) {
      c.status.textContent = 'ERR';
      c.status.className = 'c status s0';
      c.status.title = f.err;
    } else if (live && !f.status) {
      c.status.textContent = f.state === 'held' ? 'held' : '…';
      c.status.className = 'c status s1';
      c.status.title = f.state === 'held' ? 'held: waiting for you' : 'waiting for the response';
    } else {
      c.status.textContent = f.status || '';
      c.status.className = 'c status ' + statusClass(f.status);
      c.status.title = '';
    }
    c.type.textContent = shortType(f.type);
    c.type.title = f.type || '';
    c.size.textContent = f.kind === 'tunnel' || f.status ? fmtSize(f.size) : '';
    c.size.title = sizeTitle(f);
    if (live) {
      c.dur.textContent = fmtElapsed(Date.now() - f.t * 1000);
      c.dur.className = 'c dur running';
      c.dur.title = 'running';
    } else {
      c.dur.textContent = f.dur === null ? '' : fmtMs(f.dur);
      c.dur.className = 'c dur' + (f.dur > SLOW_MS ? ' slow' : '');
      c.dur.title = '';
    }
    c.flags.replaceChildren(
      f.tls ? flagEl('tls', `${f.tls}${f.alpn ? ' · ' + f.alpn : ''}`, '', LOCK_SVG) : '',
      f.reused ? flagEl('reused', `upstream connection #${f.up} reused`, '↻') : '',
      f.trunc ? flagEl('trunc', 'body copy truncated at the record cap', '✂') : '',
      f.insecure ? flagEl('insecure', 'upstream certificate NOT verified (--insecure)', '!') : '',
      f.comment ? flagEl('comment', f.comment, '', COMMENT_SVG) : '',
      f.source ? flagEl('source', `imported from ${f.source}`, '', IMPORT_SVG) : '',
      f.err ? flagEl('err', f.err, '!') : '');
  }

  // Redraws the elapsed time of the running rows on screen.
  setInterval(() => {
    if (state.view !== 'flows') return;
    const now = Date.now();
    for (const r of pool) {
      if (r.hidden || r._id === undefined) continue;
      const f = state.byId.get(r._id);
      if (f && isLive(f)) r._cells.dur.textContent = fmtElapsed(now - f.t * 1000);
    }
    const running = $('detail-running');
    if (running && state.detail && isLive(state.detail)) {
      running.textContent = `running for ${fmtElapsed(now - detailStart(state.detail) * 1000)}`;
    }
  }, TICK_MS);

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
        r._id = undefined;
      }
    }
    rowsEl.style.transform = `translateY(${first * ROW_H}px)`;
    if (state.more && last >= total - 4 * OVERSCAN) loadMore();
    renderCount();
    renderEmpty();
  }

  function renderCount() {
    const n = state.flows.length;
    let text = `${nf.format(n)} flow${n === 1 ? '' : 's'}`;
    if (state.more) {
      text = `${nf.format(n)}${!state.filter && state.total > n ? ` of ${nf.format(state.total)}` : '+'} flows`;
    }
    if (state.capped) {
      text = `first ${nf.format(n)}` + (state.total > n && !state.filter ? ` of ${nf.format(state.total)}` : '') +
        ' flows in this order (sort the other way for the rest)';
    }
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
    if (state.session) {
      $('empty-title').textContent = `Session ${state.session} is empty`;
      body.replaceChildren();
      return;
    }
    $('empty-title').textContent = 'Waiting for traffic';
    const proxy = (state.info && state.info.proxy) || '127.0.0.1:8080';
    body.replaceChildren(
      h('p', {text: 'Point a client at the proxy and trust mitmd\'s root certificate, for example:'}),
      h('code', {text: `curl --proxy http://${proxy} --cacert ${(state.info && state.info.ca && state.info.ca.file) || '~/.mitmd/mitmd-ca.pem'} https://example.com/`}),
      h('p', null, 'Get the root for browsers and phones on the ', h('a', {href: '/ca', target: '_blank', rel: 'noopener', text: 'root certificate page'}), '.'));
  }

  scroller.addEventListener('scroll', () => {
    if (scroller.scrollTop < ROW_H) hideNewPill();
    scheduleRender();
  });
  window.addEventListener('resize', scheduleRender);

  // Where |f| goes (or is) in state.flows: the first index not ordered before it.
  function positionOf(f) {
    let lo = 0, hi = state.flows.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compare(state.flows[mid], f) < 0) lo = mid + 1; else hi = mid;
    }
    return lo;
  }
  function indexOfId(id) {
    const f = state.byId.get(id);
    if (!f) return -1;
    const i = positionOf(f);
    return state.flows[i] === f ? i : state.flows.indexOf(f);
  }

  // A live flow is published many times; keep the newest snapshot. A done flow is final.
  const revisionOf = (f) => Number(f.revision ?? f.rev ?? 0);
  function supersedes(f, old) {
    if (old.state === 'done' && f.state && f.state !== 'done') return false;
    return !(old.state === f.state && revisionOf(f) < revisionOf(old));
  }

  function insertFlows(list) {
    // list: summaries in any order. Returns how many rows were added above the current view.
    let above = 0;
    const firstVisible = Math.floor(scroller.scrollTop / ROW_H);
    for (const f of list) {
      const old = state.byId.get(f.id);
      if (old) {
        if (!supersedes(f, old)) continue;
        const i = indexOfId(f.id);
        if (i >= 0) state.flows.splice(i, 1);
      }
      state.byId.set(f.id, f);
      const i = positionOf(f);
      state.flows.splice(i, 0, f);
      if (!old && i <= firstVisible) above++;
    }
    return above;
  }

  // A page from the server: appended, then ordered once (already in order when the server sorts).
  function appendPage(list) {
    const updates = [];
    for (const f of list) {
      if (state.byId.has(f.id)) { updates.push(f); continue; }
      state.byId.set(f.id, f);
      state.flows.push(f);
    }
    state.flows.sort(compare);
    if (updates.length) insertFlows(updates);
  }

  function removeFlow(id) {
    const i = indexOfId(id);
    if (i >= 0) state.flows.splice(i, 1);
    state.byId.delete(id);
    if (state.selected === id) closeDetail();
    scheduleRender();
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
    if (state.selected !== null && batch.some((f) => f.id === state.selected)) {
      loadDetail(state.selected, true);
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
    state.byId = new Map();
    state.incoming = [];
    state.held = [];
    state.unseen = 0;
    state.capped = false;
    state.more = '';
    $('new-flows').hidden = true;
  }

  // ---------------------------------------------------------------- loading and live updates

  // Loads pages from |cursor| until |want| more rows are in or the list ends. Returns the cursor
  // of the next page ('' at the end), or null when a newer load took over.
  async function loadPages(gen, cursor, want) {
    const base = `/api/flows?limit=${PAGE}&filter=${encodeURIComponent(state.filter)}` +
      `&sort=${state.sort.key}&order=${state.sort.order}`;
    const seen = new Set([cursor]);
    let got = 0;
    for (;;) {
      const page = await api(withSession(base + cursor));
      if (gen !== state.gen) return null;
      appendPage(page.flows);
      got += page.flows.length;
      state.total = page.total || 0;
      scheduleRender();
      // The next page: by offset for column sorts, after a seq for oldest first, else before one.
      const [name, value] = 'next_offset' in page ? ['offset', page.next_offset]
        : 'next_after' in page ? ['after', page.next_after] : ['before', page.next_before];
      if (!value || !page.flows.length) return '';
      cursor = `&${name}=${encodeURIComponent(value)}`;
      if (seen.has(cursor)) return '';
      seen.add(cursor);
      if (state.flows.length >= MAX_LOADED) {
        state.capped = true;
        return '';
      }
      if (got >= want) return cursor;
    }
  }

  async function loadAll() {
    const gen = ++state.gen;
    state.loading = true;
    resetFlows();
    scheduleRender();
    try {
      const next = await loadPages(gen, '', EAGER_ROWS);
      if (next !== null) state.more = next;
    } catch (e) {
      if (gen === state.gen) toast('Could not load flows: ' + e.message, true);
    } finally {
      if (gen === state.gen) {
        state.loading = false;
        scheduleRender();
        if (state.selected !== null && !state.byId.has(state.selected)) closeDetail();
      }
    }
  }

  // The next page, when the table is scrolled near the end of what is loaded.
  async function loadMore() {
    if (!state.more || state.loading || state.loadingMore) return;
    const gen = state.gen;
    state.loadingMore = true;
    try {
      const next = await loadPages(gen, state.more, PAGE);
      if (next !== null) state.more = next;
    } catch (e) {
      if (gen === state.gen) toast('Could not load more flows: ' + e.message, true);
    } finally {
      state.loadingMore = false;
      if (gen === state.gen) scheduleRender();
    }
  }

  function setLive(cls, text) {
    const live = $('live');
    live.className = 'live ' + cls;
    $('live-text').textContent = text;
  }

  function openStream() {
    if (state.es) state.es.close();
    const es = new EventSource(withSession(`/api/events?filter=${encodeURIComponent(state.filter)}`));
    state.es = es;
    es.addEventListener('hello', () => {
      if (state.session) setLive('paused', `viewing ${state.session}`);
      else setLive(state.paused ? 'paused' : 'on', state.paused ? 'paused' : 'live');
      loadAll();
    });
    es.addEventListener('flow', (ev) => onLiveFlow(JSON.parse(ev.data)));
    es.addEventListener('update', (ev) => onLiveFlow(JSON.parse(ev.data)));
    es.addEventListener('delete', (ev) => {
      const d = JSON.parse(ev.data);
      if (d && d.id) removeFlow(d.id);
    });
    es.addEventListener('clear', (ev) => {
      if (state.session) return;
      const d = ev.data ? JSON.parse(ev.data) : {};
      // An undone clear or an import changed the session under the list: load it again.
      if (d.undo || d.reload) {
        loadAll();
        return;
      }
      state.gen++;  // a page still on its way belongs to the list that was cleared
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
    // Recording goes to the current session; another one being viewed does not change.
    if (state.session) return;
    if (state.paused && !state.byId.has(f.id)) {
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
    if (!state.session) setLive(p ? 'paused' : 'on', p ? 'paused' : 'live');
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

  function updateLocation() {
    const url = new URL(location.href);
    if (state.filter) url.searchParams.set('filter', state.filter); else url.searchParams.delete('filter');
    if (state.session) url.searchParams.set('session', state.session); else url.searchParams.delete('session');
    url.searchParams.delete('token');
    history.replaceState(null, '', url.pathname + url.search + url.hash);
    $('btn-har').href = withSession('/api/export.har' + (state.filter ? '?filter=' + encodeURIComponent(state.filter) : ''));
  }

  function applyFilter(text) {
    state.filter = text;
    state.loading = true;  // until the new stream's list has arrived
    renderCount();
    filterInput.classList.toggle('active', !!text);
    updateLocation();
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

  // ---------------------------------------------------------------- selection and detail pane

  const detailPane = $('detail');
  const splitter = $('splitter');

  function select(id, fromMouse) {
    if (id === null || id === undefined) return;
    state.selected = id;
    openDetailPane();
    renderRows();
    if (!fromMouse) ensureVisible(id);
    loadDetail(id);
  }

  function ensureVisible(id) {
    const i = indexOfId(id);
    if (i < 0) return;
    const top = i * ROW_H;
    if (top < scroller.scrollTop) scroller.scrollTop = top;
    else if (top + ROW_H > scroller.scrollTop + scroller.clientHeight) {
      scroller.scrollTop = top + ROW_H - scroller.clientHeight;
    }
    scheduleRender();
  }

  function moveSelection(delta) {
    if (!state.flows.length) return;
    let i = state.selected === null ? -1 : indexOfId(state.selected);
    if (i < 0) i = delta > 0 ? 0 : state.flows.length - 1;
    else i = Math.min(state.flows.length - 1, Math.max(0, i + delta));
    select(state.flows[i].id, false);
  }
  const pageRows = () => Math.max(1, Math.floor(scroller.clientHeight / ROW_H) - 1);

  let detailGen = 0;
  async function loadDetail(id, refresh) {
    const f = state.byId.get(id);
    if (!f) return;
    const gen = ++detailGen;
    try {
      const d = await api(withSession(`/api/flows/${encodeURIComponent(f.id)}`));
      if (gen !== detailGen) return;
      // A flow is published again as it progresses; when nothing shown changed, keep the open
      // body with its folds and search.
      const same = refresh && state.detail && state.detail.id === d.id && detailSignature(d) === detailSignature(state.detail);
      state.detail = d;
      if (!same) renderDetail();
    } catch (e) {
      if (gen === detailGen) {
        state.detail = null;
        $('detail-placeholder').hidden = false;
        $('detail-body').hidden = true;
        $('detail-placeholder').replaceChildren(h('p', {text: 'This flow is no longer available: ' + e.message}));
      }
    }
  }

  function detailSignature(d) {
    const r = d.response;
    return [d.state, r && r.status, r && r.body.size, d.request && d.request.body.size, d.error && d.error.message,
      d.comment, d.marked, d.timings.response_end].join('|');
  }

  function detailWidth() {
    const stored = Number(loadJson('mitmd-detail-width', 0));
    const want = stored >= MIN_DETAIL_W ? stored : Math.round(window.innerWidth * 0.42);
    return Math.max(MIN_DETAIL_W, Math.min(want, window.innerWidth - MIN_TABLE_W));
  }

  function openDetailPane() {
    if (!detailPane.hidden) return;
    detailPane.style.flexBasis = detailWidth() + 'px';
    detailPane.hidden = false;
    splitter.hidden = false;
    layoutColumns();
  }

  function closeDetail() {
    state.selected = null;
    state.detail = null;
    detailGen++;
    BODY.clearHighlights();
    $('detail-body').hidden = true;
    $('detail-placeholder').hidden = true;
    detailPane.hidden = true;
    splitter.hidden = true;
    layoutColumns();
    renderRows();
  }

  window.addEventListener('resize', () => {
    if (!detailPane.hidden) detailPane.style.flexBasis = detailWidth() + 'px';
  });

  // The splitter between the table and the detail pane.
  splitter.addEventListener('mousedown', (ev) => {
    ev.preventDefault();
    splitter.classList.add('drag');
    document.body.classList.add('col-resizing');
    const move = (e) => {
      const w = Math.min(Math.max(window.innerWidth - e.clientX, MIN_DETAIL_W), window.innerWidth - MIN_TABLE_W);
      detailPane.style.flexBasis = w + 'px';
    };
    const up = () => {
      splitter.classList.remove('drag');
      document.body.classList.remove('col-resizing');
      window.removeEventListener('mousemove', move);
      window.removeEventListener('mouseup', up);
      saveJson('mitmd-detail-width', parseInt(detailPane.style.flexBasis, 10));
    };
    window.addEventListener('mousemove', move);
    window.addEventListener('mouseup', up);
  });
  splitter.addEventListener('dblclick', () => {
    saveJson('mitmd-detail-width', 0);
    detailPane.style.flexBasis = detailWidth() + 'px';
  });

  const detailStart = (d) => d.timings.request_start || d.timings.accepted;

  function flowUrl(d) {
    if (d.request) return d.request.url;
    return `${hostPort(d.server.host, d.server.port)}`;
  }

  function renderDetail() {
    const d = state.detail;
    if (!d) return;
    BODY.clearHighlights();
    $('detail-placeholder').hidden = true;
    const body = $('detail-body');
    body.hidden = false;
    const req = d.request, resp = d.response;
    const method = req ? req.method : (d.kind === 'tunnel' ? 'CONNECT' : '');
    let pill;
    if (d.error) pill = h('span', {class: 'pill s0', text: 'failed'});
    else if (resp) pill = h('span', {class: 'pill ' + statusClass(resp.status), text: `${resp.status} ${resp.reason || ''}`.trim()});
    else if (isLive(d)) pill = h('span', {class: 'pill s1 running', text: d.state === 'held' ? 'held' : 'waiting'});
    else if (d.kind === 'tunnel') pill = h('span', {class: 'pill s1', text: 'tunnel'});

    const meta = [];
    const start = detailStart(d);
    meta.push(h('span', {text: fmtDateTime(start)}));
    if (isLive(d)) {
      meta.push(h('span', {class: 'running', id: 'detail-running', text: `running for ${fmtElapsed(Date.now() - start * 1000)}`}));
    }
    else if (d.duration_ms !== null && d.duration_ms !== undefined) meta.push(h('span', {text: fmtMs(d.duration_ms)}));
    if (resp) meta.push(h('span', {text: fmtSize(resp.body.size) + (resp.body.content_encoding ? ` (${resp.body.content_encoding})` : '')}));
    if (req) meta.push(h('span', {text: req.version + (d.client.tls && d.client.tls.alpn ? ` · ALPN ${d.client.tls.alpn}` : '')}));
    meta.push(h('span', {class: 'link', title: 'Show every flow of this client connection', text: `client conn #${d.client.conn}`,
      onclick: () => setFilterText(`conn:${d.client.conn}`)}));
    if (d.server.conn) {
      meta.push(h('span', {class: 'link', title: 'Show every flow on this upstream connection',
        text: `upstream #${d.server.conn}${d.server.reused ? ' (reused)' : ''}`,
        onclick: () => setFilterText(`upstream:${d.server.conn}`)}));
    }
    if (d.source) meta.push(h('span', {class: 'tag', title: 'where this flow was imported from', text: d.source}));

    const tabs = [
      ['overview', 'Overview'],
      ['request', 'Request', req ? `${req.headers.length} h` : ''],
      ['response', 'Response', resp ? `${resp.headers.length} h` : ''],
      ['tls', 'TLS'],
    ];
    if (d.websocket) tabs.push(['messages', 'Messages', String(d.websocket.messages.length + d.websocket.dropped)]);
    if (isGrpc(d)) tabs.push(['grpc', 'gRPC']);
    if ((state.detailTab === 'messages' && !d.websocket) || (state.detailTab === 'grpc' && !isGrpc(d))) {
      state.detailTab = 'overview';
    }
    const tabBar = h('div', {class: 'd-tabs', role: 'tablist'},
      tabs.map(([id, label, badge]) => h('button', {
        class: 'd-tab' + (state.detailTab === id ? ' active' : ''), role: 'tab', dataset: {tab: id},
        onclick: () => { state.detailTab = id; renderDetail(); },
      }, label, badge ? h('span', {class: 'badge', text: badge}) : null)));

    const summary = state.byId.get(d.id) || {};
    const actions = h('div', {class: 'd-actions'},
      req ? h('button', {class: 'btn small', id: 'btn-curl', title: 'Copy this request as a curl command (c)', text: 'Copy as curl',
        onclick: () => copySnippet(d.id, 'curl')}) : null,
      req ? h('button', {class: 'btn small', text: 'Copy URL', onclick: () => copyText(req.url, 'URL copied')}) : null,
      resp && resp.body.size > 0 ? h('a', {class: 'btn small', id: 'btn-download', text: 'Download body',
        href: withSession(`/api/flows/${encodeURIComponent(d.id)}/response/body?decode=1&download=1`)}) : null,
      state.store && !state.session ? h('button', {class: 'btn small' + (summary.marked ? ' on' : ''), id: 'btn-mark', title: 'Mark this flow (m)',
        text: summary.marked ? '★ Marked' : '☆ Mark', onclick: () => toggleMark(d.id)}) : null,
      h('button', {class: 'btn small', id: 'btn-more', title: 'More actions (right-click a row)', text: 'More…',
        onclick: (ev) => {
          const r = ev.currentTarget.getBoundingClientRect();
          openMenu(r.left, r.bottom + 4, d.id);
        }}));

    const notices = h('div', {class: 'd-notices'});
    if (d.error) notices.append(errorBox(d));
    if (d.note) notices.append(h('div', {class: 'note', id: 'flow-note'}, h('b', {text: 'Note: '}), d.note));
    if (d.modified_by && d.modified_by.length && window.mitmdControl) notices.append(window.mitmdControl.modifications(d));
    if (summary.comment || d.comment) {
      notices.append(h('div', {class: 'note comment', id: 'flow-comment'}, h('b', {text: 'Comment: '}), summary.comment || d.comment));
    }

    const head = h('div', {class: 'd-head'},
      h('div', {class: 'd-title'},
        h('span', {class: 'method m-' + method, text: method}),
        h('span', {class: 'd-url', text: flowUrl(d)}),
        pill,
        h('button', {class: 'icon-btn', id: 'btn-close-detail', text: '✕', title: 'Close (Esc)',
          'aria-label': 'Close the detail pane', onclick: closeDetail})),
      h('div', {class: 'd-meta'}, meta),
      actions,
      notices,
      tabBar);

    const content = h('div', {class: 'd-content', id: 'detail-content', tabindex: '-1'});
    if (state.detailTab === 'overview') renderOverview(content, d);
    else if (state.detailTab === 'request') renderMessage(content, d, 'request');
    else if (state.detailTab === 'response') renderMessage(content, d, 'response');
    else if (state.detailTab === 'messages') renderWebSocket(content, d);
    else if (state.detailTab === 'grpc') renderGrpc(content, d);
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

  // "12.0 KiB (gzip) · 48.2 KiB decoded" when both are known.
  function bodySizes(b, decoded) {
    if (!b) return null;
    let s = fmtSize(b.size) + (b.content_encoding ? ` on the wire (${b.content_encoding})` : '');
    const dec = b.decoded_size ?? decoded;
    if (b.content_encoding && dec !== undefined && dec !== null) s += ` · ${fmtSize(dec)} decoded`;
    if (b.truncated) s += ' · copy truncated';
    return s;
  }

  function renderOverview(el, d) {
    if (d.insecure) el.append(h('div', {class: 'note warn', text: 'Upstream certificate verification was disabled (--insecure) for this flow.'}));
    const req = d.request, resp = d.response;
    el.append(section('Summary', kvGrid([
      ['URL', req ? req.url : null],
      ['Method', req ? req.method : (d.kind === 'tunnel' ? 'CONNECT (not intercepted)' : null)],
      ['Status', resp ? `${resp.status} ${resp.reason}` : (isLive(d) ? 'waiting for the response' : null)],
      ['Interim', resp && resp.informational ? resp.informational.join(', ') : null],
      ['Client', `${d.client.addr}  ·  connection #${d.client.conn}`],
      ['Server', `${hostPort(d.server.host, d.server.port)}${d.server.addr ? '  ·  ' + d.server.addr : ''}`],
      ['Upstream conn', d.server.conn ? `#${d.server.conn}${d.server.reused ? ' (reused)' : ' (new)'}` : null],
      ['Request body', req ? bodySizes(req.body) : null],
      ['Response body', resp ? bodySizes(resp.body) : null],
      ['Tunnel bytes', d.kind === 'tunnel' ? `↑ ${fmtSize(d.bytes.up)}  ↓ ${fmtSize(d.bytes.down)}` : null],
      ['Imported from', d.source || null],
      ['Flow id', d.id],
    ])));
    el.append(section('Timing', waterfall(d)));
  }

  // The phases of this exchange. On a reused upstream connection there was no connect and no TLS
  // for this request (the timings of those belong to the connection's first exchange), and the
  // client's TLS handshake counts only when it belonged to the same setup.
  function waterfall(d) {
    const t = d.timings;
    const steps = [];
    const add = (cls, label, a, b) => { if (a > 0 && b > 0 && b >= a) steps.push({cls, label, a, b}); };
    const fresh = !d.server.reused && t.upstream_connect_start > 0;
    if (fresh) {
      add('connect', 'Upstream connect', t.upstream_connect_start, t.upstream_connect_end);
      add('tls', 'Upstream TLS', t.upstream_connect_end, t.upstream_tls_end);
    }
    const clientTlsHere = t.client_tls_end > 0 && (fresh ? t.client_tls_end >= t.upstream_connect_start
      : !(t.request_start > 0) || t.client_tls_end >= t.request_start - 0.001);
    if (clientTlsHere) add('client-tls', 'Client TLS', Math.max(fresh ? t.upstream_tls_end || 0 : 0, t.accepted || 0), t.client_tls_end);
    add('send', 'Request', t.request_start, t.request_end);
    add('wait', 'Waiting (TTFB)', t.request_end, t.response_start);
    add('receive', 'Response', t.response_start, t.response_end);
    if (!steps.length) return h('div', {class: 'muted', text: 'No timing recorded.'});
    const origin = Math.min(...steps.map((s) => s.a));
    const end = Math.max(...steps.map((s) => s.b));
    const span = Math.max(end - origin, 1e-6);
    const grid = h('div', {class: 'waterfall', id: 'waterfall'});
    for (const s of steps) {
      const bar = h('div', {class: 'bar ' + s.cls, title: `${s.label}: ${fmtMs((s.b - s.a) * 1000)}`});
      bar.style.left = ((s.a - origin) / span * 100).toFixed(3) + '%';
      bar.style.width = Math.max((s.b - s.a) / span * 100, 0.4).toFixed(3) + '%';
      grid.append(h('div', {class: 'lbl', text: s.label}), h('div', {class: 'track'}, bar), h('div', {class: 'ms', text: fmtMs((s.b - s.a) * 1000)}));
    }
    const from = steps[0].cls === 'send' ? 'request start' : 'connection setup';
    const total = h('div', {class: 'muted wf-total'},
      `Total ${fmtMs(span * 1000)} from ${from} to last byte`,
      d.server.reused ? ` · upstream connection #${d.server.conn} was reused: no connect or TLS for this request` : '');
    return h('div', null, grid, total);
  }

  function headersTable(headers) {
    if (!headers || !headers.length) return h('div', {class: 'muted', text: 'No headers.'});
    const table = h('table', {class: 'headers'});
    for (const [k, v, bytes] of headers) {
      // A third element holds a name or value that is not UTF-8; the strings show its bytes as \xHH.
      const raw = bytes ? h('span', {class: 'tag', text: 'bytes', title: 'not UTF-8: each byte of an invalid sequence is shown as \\xHH'}) : '';
      table.append(h('tr', bytes ? {class: 'raw-bytes'} : null, h('td', {class: 'hn', text: k}), h('td', {text: v}, raw)));
    }
    return table;
  }

  function renderMessage(el, d, side) {
    const m = d[side];
    if (!m) {
      el.append(h('div', {class: 'muted', text: side === 'response'
        ? (isLive(d) ? 'Waiting for the response…' : 'No response was received.') : 'No request was parsed.'}));
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

  // ---- WebSocket messages and gRPC calls (issue 9) ---------------------------------------

  function isGrpc(d) {
    const type = d.request ? (headerValue(d.request.headers, 'content-type') || '') : '';
    return /^application\/grpc([+-;]|$)/i.test(type.trim());
  }

  function messageText(m) {
    if (m.encoding === 'text') return m.content;
    const bin = atob(m.content);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return hexDump(bytes);
  }

  // The messages of a WebSocket as a list that a filter narrows; a live flow refreshes it.
  function renderWebSocket(el, d) {
    const ws = d.websocket;
    const facts = [];
    if (ws.close) {
      facts.push(h('span', {text: `closed by the ${ws.close.by}` +
        (ws.close.code !== undefined ? ` with ${ws.close.code}` : '') + (ws.close.reason ? ` (${ws.close.reason})` : '')}));
    } else if (isLive(d)) {
      facts.push(h('span', {class: 'running', text: 'open'}));
    }
    if (ws.dropped) facts.push(h('span', {class: 'warn', text: `${ws.dropped} later messages not kept (per-flow cap)`}));
    if (ws.error) el.append(h('div', {class: 'note warn', id: 'ws-error', text: ws.error}));
    const filter = h('input', {type: 'search', id: 'ws-filter', placeholder: 'Filter messages', value: state.wsFilter || ''});
    const list = h('div', {class: 'ws-list', id: 'ws-messages'});
    const fill = () => {
      const needle = (state.wsFilter || '').toLowerCase();
      list.replaceChildren();
      let shown = 0;
      for (const m of ws.messages) {
        const text = m.encoding === 'text' ? m.content : '';
        if (needle && !text.toLowerCase().includes(needle)) continue;
        shown++;
        list.append(h('div', {class: 'ws-msg ' + (m.from_client ? 'up' : 'down') + ' op-' + m.opcode},
          h('span', {class: 'ws-dir', title: m.from_client ? 'client to server' : 'server to client', text: m.from_client ? '↑' : '↓'}),
          h('span', {class: 'ws-time', text: fmtTime(m.time)}),
          h('span', {class: 'ws-op', text: m.opcode + (m.compressed ? ' (deflate)' : '')}),
          h('span', {class: 'ws-size', text: fmtSize(m.size) + (m.truncated ? ' (truncated)' : '')}),
          h('pre', {class: 'ws-data', text: messageText(m)})));
      }
      if (!shown) list.append(h('div', {class: 'muted', text: ws.messages.length ? 'No message matches.' : 'No messages yet.'}));
    };
    filter.addEventListener('input', () => { state.wsFilter = filter.value; fill(); });
    fill();
    el.append(section(`Messages (${ws.messages.length})`, h('div', {class: 'd-meta'}, facts), filter, list));
  }

  function protobufTree(fields) {
    const ul = h('ul', {class: 'pb'});
    for (const f of fields) {
      let value;
      if (f.message) value = protobufTree(f.message);
      else if (f.string !== undefined) value = h('span', {class: 'pb-str', text: JSON.stringify(f.string)});
      else if (f.bytes !== undefined) value = h('span', {class: 'pb-bytes', text: `bytes ${f.bytes}`});
      else {
        const extra = f.sint !== undefined ? ` (sint ${f.sint})` : f.float !== undefined ? ` (float ${f.float})` :
          f.double !== undefined ? ` (double ${f.double})` : '';
        value = h('span', {class: 'pb-num', text: String(f.value) + extra});
      }
      ul.append(h('li', null, h('span', {class: 'pb-key', text: `${f.field} ${f.wire}: `}), value));
    }
    return ul;
  }

  function grpcMessages(title, side) {
    if (!side) return section(title, h('div', {class: 'muted', text: 'None yet.'}));
    const items = side.messages.map((m, i) => h('div', {class: 'grpc-msg'},
      h('div', {class: 'd-meta'}, h('span', {text: `#${i + 1}`}), h('span', {text: fmtSize(m.length)}),
        m.compressed ? h('span', {text: 'compressed'}) : null, m.complete ? null : h('span', {class: 'warn', text: 'incomplete'})),
      m.protobuf ? protobufTree(m.protobuf) : h('div', {class: 'muted', text: m.protobuf_error}),
      h('details', null, h('summary', {text: 'base64'}), h('pre', {class: 'code', text: m.base64}))));
    if (side.truncated) items.push(h('div', {class: 'note warn', text: 'The recorded body was capped: later messages are missing.'}));
    return section(`${title} (${side.messages.length})`, ...items);
  }

  async function renderGrpc(el, d) {
    const box = h('div', {id: 'grpc-view', class: 'muted', text: 'Loading…'});
    el.append(box);
    let v;
    try {
      v = await api(withSession(`/api/flows/${encodeURIComponent(d.id)}/grpc`));
    } catch (e) {
      box.textContent = `Could not read the call: ${e.message}`;
      return;
    }
    box.className = '';
    box.replaceChildren(
      section('Call', kvGrid([['Service', v.service], ['Method', v.method],
        ['Status', v.status ? `${v.status.status} ${v.status.status_name || ''}`.trim() : (isLive(d) ? 'running' : 'none')],
        ['Message', v.status && v.status.message]])),
      grpcMessages('Request messages', v.request),
      grpcMessages('Response messages', v.response));
  }

  function classify(type) {
    const t = (type || '').toLowerCase().split(';')[0].trim();
    if (t.startsWith('image/') && t !== 'image/svg+xml') return 'image';
    if (t.includes('json')) return 'json';
    if (t === 'application/x-www-form-urlencoded') return 'form';
    if (t === 'text/html') return 'html';
    if (t.includes('xml')) return 'xml';
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

  // The body's search box: highlights every match in the rendered body; Enter / Shift+Enter (or
  // the arrows) go to the next / previous one, opening folds on the way.
  function searchBox(side, getRoot) {
    const saved = state.bodySearch[side] || {query: ''};
    state.bodySearch[side] = saved;
    const input = h('input', {type: 'search', class: 'body-search', id: `${side}-search`, placeholder: 'Find in body (f)',
      spellcheck: 'false', autocomplete: 'off', 'aria-label': 'Find in body'});
    input.value = saved.query;
    const count = h('span', {class: 'search-count', id: `${side}-search-count`});
    const run = (move) => {
      saved.query = input.value;
      const root = getRoot();
      if (!saved.result || saved.result.root !== root || saved.result.query !== saved.query) {
        saved.result = BODY.search(root, saved.query);
        saved.result.root = root;
        saved.result.query = saved.query;
        if (saved.result.count) saved.result.go(1);
      } else if (move) {
        saved.result.go(move);
      }
      const r = saved.result;
      count.textContent = !saved.query ? '' : r.count
        ? `${r.index + 1}/${nf.format(r.count)}${r.capped ? '+' : ''}` : 'no match';
      count.classList.toggle('none', !!saved.query && !r.count);
    };
    let timer = 0;
    input.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => run(0), 120); });
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') { ev.preventDefault(); clearTimeout(timer); run(ev.shiftKey ? -1 : 1); }
      if (ev.key === 'Escape') { input.value = ''; run(0); input.blur(); ev.stopPropagation(); }
    });
    const prev = h('button', {class: 'icon-btn small', title: 'Previous match (Shift+Enter)', text: '↑', id: `${side}-search-prev`, onclick: () => run(-1)});
    const next = h('button', {class: 'icon-btn small', title: 'Next match (Enter)', text: '↓', id: `${side}-search-next`, onclick: () => run(1)});
    return {el: h('span', {class: 'search-wrap'}, input, count, prev, next), refresh: () => { saved.result = null; if (saved.query) run(0); }};
  }

  async function renderBody(el, d, side) {
    const m = d[side];
    const b = m.body;
    const type = headerValue(m.headers, 'content-type') || '';
    const kind = classify(type);
    const base = withSession(`/api/flows/${encodeURIComponent(d.id)}/${side}/body`);
    const q = base.includes('?') ? '&' : '?';
    const title = h('h4', null, 'Body', h('span', {class: 'spacer-x'}));
    el.replaceChildren(title);
    if (!b.size && !b.truncated) {
      el.append(h('div', {class: 'muted', text: isLive(d) ? 'No body yet.' : 'No body.'}));
      return;
    }
    const info = h('span', {class: 'body-info', id: `${side}-body-info`});
    const setInfo = (decoded) => {
      const parts = [bodySizes(b, decoded)];
      if (type) parts.push(type);
      if (b.truncated) parts.push(`recorded copy cut at ${fmtSize(d.body_record_cap)}`);
      info.textContent = parts.join(' · ');
    };
    setInfo();
    const mode = state.bodyView[side] || 'pretty';
    const seg = h('div', {class: 'seg'}, ['pretty', 'raw', 'hex'].map((m2) => h('button', {
      class: mode === m2 ? 'active' : '', text: m2[0].toUpperCase() + m2.slice(1),
      onclick: () => { state.bodyView[side] = m2; renderBody(el, d, side); },
    })));
    const holder = h('div', {class: 'body-view'}, h('div', {class: 'muted', text: 'Loading…'}));
    const finder = searchBox(side, () => holder.querySelector('pre') || holder);
    const foldBtns = h('span', {class: 'fold-btns', hidden: true},
      h('button', {class: 'btn small', text: 'Fold all', id: `${side}-fold-all`, onclick: () => {
        const pre = holder.querySelector('.foldable');
        // The top level stays open so the fold shows what is inside.
        if (pre) { BODY.setAllFolds(pre, false); const top = pre.querySelector('.fold'); if (top) top.classList.add('open'); }
      }}),
      h('button', {class: 'btn small', text: 'Unfold all', id: `${side}-unfold-all`, onclick: () => {
        const pre = holder.querySelector('.foldable');
        if (pre) BODY.setAllFolds(pre, true);
      }}));
    const bar = h('div', {class: 'body-bar'}, seg, foldBtns, finder.el);
    const meta = h('div', {class: 'body-meta'}, info,
      h('a', {class: 'btn small', href: base + q + 'decode=1&download=1', text: 'Download'}));
    el.append(bar, meta, holder);

    const show = (...nodes) => {
      holder.replaceChildren(...nodes);
      const foldable = holder.querySelector('.foldable');
      foldBtns.hidden = !foldable;
      if (foldable) foldable.addEventListener('click', BODY.onFoldClick);
      finder.refresh();
    };

    if (kind === 'image' && mode === 'pretty') {
      const img = h('img', {src: base + q + 'decode=1', alt: 'response image', id: 'body-image'});
      const dims = h('div', {class: 'muted'});
      img.addEventListener('load', () => { dims.textContent = `${img.naturalWidth} × ${img.naturalHeight} px`; });
      img.addEventListener('error', () => { dims.textContent = 'The image could not be displayed (it may be truncated or not an image).'; });
      holder.replaceChildren(h('div', {class: 'img-wrap'}, img), dims);
      return;
    }
    let bytes, res;
    try {
      res = await fetch(base + q + 'decode=1');
      bytes = new Uint8Array(await res.arrayBuffer());
    } catch (e) {
      holder.replaceChildren(h('div', {class: 'muted', text: 'Could not load the body: ' + e.message}));
      return;
    }
    const notes = [];
    const decodeError = res.headers.get('X-Mitmd-Decode-Error');
    if (decodeError) notes.push(h('div', {class: 'note warn', text: decodeError + ' — shown as recorded.'}));
    const decoded = res.headers.get('X-Mitmd-Decoded');
    if (decoded === 'partial') notes.push(h('div', {class: 'note', text: 'Decoded as far as the recorded copy goes.'}));
    if (decoded === '1' && !b.truncated) setInfo(bytes.length);
    if (mode === 'hex' || ((kind === 'binary' || kind === 'unknown' || kind === 'image') && looksBinary(bytes))) {
      show(...notes, h('pre', {class: 'code hex', text: hexDump(bytes)}));
      return;
    }
    const text = new TextDecoder('utf-8').decode(bytes);
    if (mode === 'raw') {
      show(...notes, h('pre', {class: 'code', text}));
      return;
    }
    if (kind === 'json' || (kind === 'unknown' && /^\s*[[{]/.test(text))) {
      try {
        const value = JSON.parse(text);
        let pre = text.length <= MAX_PRETTY ? BODY.jsonTree(value) : null;
        if (!pre) {
          pre = h('pre', {class: 'code json', text: JSON.stringify(value, null, 2)});
          notes.push(h('div', {class: 'note', text: 'Large document: shown without folding.'}));
        }
        pre.id = `${side}-json`;
        show(...notes, pre);
        return;
      } catch (e) {
        notes.push(h('div', {class: 'note', text: 'Not valid JSON (' + e.message + '); shown as text.'}));
      }
    }
    if (kind === 'form') {
      const params = new URLSearchParams(text);
      const table = h('table', {class: 'headers'});
      for (const [k, v] of params) table.append(h('tr', null, h('td', {class: 'hn', text: k}), h('td', {text: v})));
      show(...notes, table, h('pre', {class: 'code', text}));
      return;
    }
    if (kind === 'xml' || (kind === 'unknown' && /^\s*<\?xml/.test(text))) {
      const pre = text.length <= MAX_PRETTY ? BODY.xmlTree(text) : null;
      if (pre) {
        pre.id = `${side}-xml`;
        show(...notes, pre);
        return;
      }
      notes.push(h('div', {class: 'note', text: 'Not well-formed XML; shown as text.'}));
    }
    if (kind === 'xml' || kind === 'html') {
      show(...notes, h('pre', {class: 'code', text: prettyMarkup(text)}));
      return;
    }
    show(...notes, h('pre', {class: 'code', text}));
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
  }

  // ---------------------------------------------------------------- copy as code

  const SNIPPETS = {
    curl: ['curl', 'curl command'],
    python: ['Python requests', 'Python code'],
    fetch: ['JavaScript fetch', 'fetch code'],
    httpie: ['HTTPie', 'HTTPie command'],
    raw: ['raw HTTP', 'raw HTTP request'],
  };

  async function flowDetail(id) {
    if (state.detail && state.detail.id === id) return state.detail;
    return api(withSession(`/api/flows/${encodeURIComponent(id)}`));
  }

  // The request of flow |id| in the shape snippets.js takes, with its recorded body bytes.
  async function requestFor(id) {
    const d = await flowDetail(id);
    const r = d.request;
    if (!r) throw new Error('this flow has no request');
    let body = null;
    if (r.body.size > 0 || r.body.truncated) {
      const res = await fetch(withSession(`/api/flows/${encodeURIComponent(id)}/request/body`));
      if (!res.ok) throw new Error(`the request body could not be loaded (${res.status})`);
      body = new Uint8Array(await res.arrayBuffer());
    }
    return {method: r.method, url: r.url, version: r.version, host: r.host, port: r.port, scheme: r.scheme,
      // Origin-form: a proxied plain-HTTP request's target is the absolute URL the proxy got.
      target: r.path || r.target, authority: hostPort(r.host, r.port, r.scheme), headers: r.headers, body,
      truncated: !!r.body.truncated};
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

  async function copySnippet(id, kind) {
    try {
      const r = await requestFor(id);
      const text = SNIP[kind](r);
      await copyText(text, `${SNIPPETS[kind][1]} copied` + (r.truncated ? ' (the body was truncated when recorded)' : ''));
    } catch (e) {
      toast(`Could not copy as ${SNIPPETS[kind][0]}: ${e.message}`, true);
    }
  }

  // ---------------------------------------------------------------- marks, comments, delete

  function updateSummary(id, change) {
    const f = state.byId.get(id);
    if (!f) return;
    insertFlows([{...f, ...change}]);
    scheduleRender();
    if (state.detail && state.detail.id === id) {
      Object.assign(state.detail, change);
      renderDetail();
    }
  }

  async function toggleMark(id) {
    const f = state.byId.get(id);
    if (!f || !state.store) return;
    try {
      await post(`/api/flows/${encodeURIComponent(id)}/mark`, {marked: !f.marked});
      updateSummary(id, {marked: !f.marked});
    } catch (e) {
      toast('Could not mark the flow: ' + e.message, true);
    }
  }

  function editComment(id) {
    const f = state.byId.get(id);
    if (!f || !state.store) return;
    const dlg = $('comment-dialog');
    const ta = $('comment-text');
    ta.value = f.comment || '';
    $('comment-title').textContent = `Comment on ${f.method || ''} ${hostPort(f.host, f.port, f.scheme)}${f.path || ''}`;
    dlg.hidden = false;
    ta.focus();
    const close = () => {
      dlg.hidden = true;
      $('comment-save').onclick = null;
      $('comment-cancel').onclick = null;
      ta.onkeydown = null;
    };
    const save = async () => {
      const text = ta.value.trim();
      try {
        await post(`/api/flows/${encodeURIComponent(id)}/comment`, {comment: text});
        close();
        updateSummary(id, {comment: text});
      } catch (e) {
        toast('Could not save the comment: ' + e.message, true);
      }
    };
    $('comment-save').onclick = save;
    $('comment-cancel').onclick = close;
    ta.onkeydown = (ev) => {
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) save();
      if (ev.key === 'Escape') { ev.stopPropagation(); close(); }
    };
  }

  async function deleteFlow(id) {
    if (!state.store) return;
    const i = indexOfId(id);
    try {
      await post(`/api/flows/${encodeURIComponent(id)}`, undefined, 'DELETE');
    } catch (e) {
      toast('Could not delete the flow: ' + e.message, true);
      return;
    }
    const wasSelected = state.selected === id;
    removeFlow(id);
    if (wasSelected && state.flows.length) select(state.flows[Math.min(i, state.flows.length - 1)].id, false);
    toast('Flow deleted');
  }

  // ---------------------------------------------------------------- context menu

  const menu = $('ctx-menu');
  function closeMenu() {
    if (menu.hidden) return;
    menu.hidden = true;
    menu.replaceChildren();
  }

  function openMenu(x, y, id) {
    const f = state.byId.get(id);
    if (!f) return;
    const item = (action, label, run, opts = {}) => h('button', {class: 'ctx-item' + (opts.danger ? ' danger' : ''),
      role: 'menuitem', dataset: {action}, disabled: opts.disabled, title: opts.title,
      onclick: () => { closeMenu(); run(); }}, h('span', {text: label}), opts.key ? h('kbd', {text: opts.key}) : null);
    const hasRequest = f.kind !== 'tunnel' && !!f.method;
    const items = [
      item('copy-url', 'Copy URL', async () => {
        const d = await flowDetail(id);
        copyText(d.request ? d.request.url : flowUrl(d), 'URL copied');
      }),
      h('div', {class: 'ctx-sep'}),
    ];
    for (const [kind, [label]] of Object.entries(SNIPPETS)) {
      items.push(item(`copy-${kind}`, `Copy as ${label}`, () => copySnippet(id, kind),
        {disabled: !hasRequest, key: kind === 'curl' ? 'c' : null}));
    }
    items.push(h('div', {class: 'ctx-sep'}),
      item('filter-host', `Filter by host ${f.host}`, () => setFilterText(`host:${f.host}`)));
    const CTL = window.mitmdControl;
    if (CTL && !state.session) {
      const picked = CTL.comparePicked();
      items.push(h('div', {class: 'ctx-sep'}),
        item('resend', 'Edit and resend…', () => CTL.compose(id), {disabled: !hasRequest, key: 'r'}),
        item('replay', 'Replay', () => CTL.replay(id), {disabled: !hasRequest}),
        item('compare', picked && picked !== id ? 'Compare with the picked flow' : 'Compare with…',
          () => CTL.compare(id)));
      if (f.state === 'held') items.push(item('held', 'Edit held flow…', () => CTL.openEditor(id)));
    }
    if (state.store && !state.session) {
      items.push(h('div', {class: 'ctx-sep'}),
        item('mark', f.marked ? 'Unmark' : 'Mark', () => toggleMark(id), {key: 'm'}),
        item('comment', f.comment ? 'Edit comment…' : 'Comment…', () => editComment(id)),
        item('delete', 'Delete', () => deleteFlow(id), {danger: true, key: 'Del'}));
    }
    menu.replaceChildren(...items);
    menu.hidden = false;
    const r = menu.getBoundingClientRect();
    menu.style.left = Math.max(4, Math.min(x, window.innerWidth - r.width - 4)) + 'px';
    menu.style.top = Math.max(4, Math.min(y, window.innerHeight - r.height - 4)) + 'px';
    const first = menu.querySelector('.ctx-item:not([disabled])');
    if (first) first.focus();
  }
  document.addEventListener('mousedown', (ev) => { if (!menu.contains(ev.target)) closeMenu(); });
  window.addEventListener('blur', closeMenu);
  scroller.addEventListener('scroll', closeMenu);
  menu.addEventListener('keydown', (ev) => {
    const items = [...menu.querySelectorAll('.ctx-item:not([disabled])')];
    const i = items.indexOf(document.activeElement);
    if (ev.key === 'ArrowDown') { ev.preventDefault(); items[(i + 1) % items.length].focus(); }
    else if (ev.key === 'ArrowUp') { ev.preventDefault(); items[(i - 1 + items.length) % items.length].focus(); }
    else if (ev.key === 'Escape') { ev.preventDefault(); ev.stopPropagation(); closeMenu(); scroller.focus(); }
  });

  // ---------------------------------------------------------------- clear, import, sessions

  $('btn-clear').addEventListener('click', async () => {
    try {
      const r = await post('/api/clear');
      const n = r.cleared !== undefined ? r.cleared : state.flows.length;
      if (r.undo) {
        state.gen++;
        resetFlows();
        closeDetail();
        scheduleRender();
        toast(`Cleared ${nf.format(n)} flows`, false, {label: 'Undo', run: () => undoClear(r.undo)}, UNDO_MS);
      } else {
        toast(`Cleared ${nf.format(n)} flows from the viewer (the session log keeps them)`);
      }
    } catch (e) {
      toast('Clear failed: ' + e.message, true);
    }
  });

  async function undoClear(token) {
    try {
      const r = await post('/api/clear/undo', {undo: token});
      await loadAll();
      toast(r && r.restored !== undefined ? `Restored ${nf.format(r.restored)} flows` : 'Restored');
    } catch (e) {
      toast('Could not undo the clear: ' + e.message, true);
    }
  }

  $('btn-import').addEventListener('click', () => $('import-file').click());
  $('import-file').addEventListener('change', async (ev) => {
    const file = ev.target.files[0];
    ev.target.value = '';
    if (!file) return;
    try {
      const r = await api('/api/import', {method: 'POST', headers: {'X-Mitmd': '1', 'Content-Type': 'application/octet-stream'}, body: file});
      const extra = [r.duplicates ? `${nf.format(r.duplicates)} already here` : '',
        r.skipped ? `${nf.format(r.skipped)} unreadable skipped` : ''].filter(Boolean).join(', ');
      toast(`Imported ${nf.format(r.added)} flows from ${file.name}${extra ? ` (${extra})` : ''}`);
      if (state.store) loadSessions();
    } catch (e) {
      toast(`Could not import ${file.name}: ${e.message}`, true);
    }
  });

  // The session switcher: hidden until GET /api/sessions answers (the session store is there).
  async function loadSessions() {
    let data;
    try {
      data = await api('/api/sessions');
    } catch (e) {
      if (e.status !== 404 && e.status !== 405) toast('Could not list sessions: ' + e.message, true);
      return false;
    }
    if (!data || !Array.isArray(data.sessions)) return false;
    state.sessions = data;
    renderSessions();
    return true;
  }

  // "name · 1,234 flows · 2026-11-28 → 2026-11-29"; the one being recorded says so.
  function sessionDetails(s) {
    const n = s.flows || 0;
    const parts = [`${nf.format(n)} flow${n === 1 ? '' : 's'}`];
    const created = toEpoch(s.created), modified = toEpoch(s.modified);
    if (created || modified) {
      const a = fmtDate(created || modified), b = fmtDate(modified || created);
      parts.push(a === b ? a : `${a} → ${b}`);
    }
    if (s.bytes) parts.push(fmtSize(s.bytes));
    return parts.join(' · ');
  }
  function sessionLabel(s, current) {
    return `${s.name === current ? '● ' : ''}${s.name} · ${sessionDetails(s)}`;
  }

  function renderSessions() {
    const data = state.sessions;
    const sel = $('session');
    const current = data.current;
    const viewing = state.session || current;
    const names = data.sessions.map((s) => s.name);
    if (!names.includes(current)) data.sessions.unshift({name: current, flows: 0});
    sel.replaceChildren(...data.sessions.map((s) => h('option', {value: s.name, text: sessionLabel(s, current),
      selected: s.name === viewing})));
    $('session-wrap').hidden = false;
    const banner = $('session-banner');
    banner.hidden = !state.session;
    if (state.session) {
      const s = data.sessions.find((x) => x.name === state.session);
      $('session-banner-text').textContent = `Viewing session "${state.session}"` + (s ? ` (${sessionDetails(s)})` : '') +
        `. New traffic is recorded in "${current}".`;
    }
  }

  function switchSession(name) {
    const current = state.sessions ? state.sessions.current : '';
    state.session = name && name !== current ? name : '';
    closeDetail();
    updateLocation();
    if (state.sessions) renderSessions();
    $('btn-clear').disabled = !!state.session;
    openStream();
  }
  $('session').addEventListener('change', (ev) => switchSession(ev.target.value));
  $('session-back').addEventListener('click', () => switchSession(''));

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

  // The client connections a (pooled) upstream connection carried requests for.
  function servedClients(c) {
    const ids = c.clients && c.clients.length ? c.clients : (c.client ? [c.client] : []);
    if (!ids.length) return '';
    const text = ` ← ${ids.map((id) => '#' + id).join(' ')}${c.more_clients ? ' …' : ''}`;
    const title = ids.length > 1 || c.more_clients ? `served ${ids.length}${c.more_clients ? '+' : ''} client connections` : 'opened for this client connection';
    return h('span', {class: 'muted clients', text, title});
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
        h('td', null, h('span', {class: 'side ' + c.side, text: c.side}), c.side === 'upstream' ? servedClients(c) : ''),
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
    const typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement ||
      target instanceof HTMLSelectElement;
    if (ev.key === 'Escape') {
      if (!menu.hidden) { closeMenu(); return; }
      if (!help.hidden) { help.hidden = true; return; }
      if (typing) return;
      if (state.selected !== null) closeDetail();
      return;
    }
    if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (!menu.hidden) return;
    const inDetail = detailPane.contains(target);
    const flowsKey = state.view === 'flows';
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
        if (!flowsKey || (inDetail && ev.key === 'ArrowDown')) return;
        ev.preventDefault();
        moveSelection(1);
        break;
      case 'k': case 'ArrowUp':
        if (!flowsKey || (inDetail && ev.key === 'ArrowUp')) return;
        ev.preventDefault();
        moveSelection(-1);
        break;
      case 'PageDown': case 'PageUp':
        if (!flowsKey || inDetail) return;
        ev.preventDefault();
        moveSelection((ev.key === 'PageDown' ? 1 : -1) * pageRows());
        break;
      case 'Home': case 'g':
        if (!flowsKey || (inDetail && ev.key === 'Home')) return;
        ev.preventDefault();
        if (state.flows.length) select(state.flows[0].id, false);
        break;
      case 'End': case 'G':
        if (!flowsKey || (inDetail && ev.key === 'End')) return;
        ev.preventDefault();
        if (state.flows.length) select(state.flows[state.flows.length - 1].id, false);
        break;
      case 'Enter':
        if (state.selected !== null) loadDetail(state.selected);
        break;
      case '1': case '2': case '3': case '4':
        // Also right after a click, before the flow has loaded: it opens on that tab.
        if (state.selected !== null) {
          state.detailTab = ['overview', 'request', 'response', 'tls'][Number(ev.key) - 1];
          if (state.detail) renderDetail();
        }
        break;
      case 'f': {
        const box = document.querySelector('.body-search');
        if (box) { ev.preventDefault(); box.focus(); box.select(); }
        break;
      }
      case 'c':
        if (state.selected !== null) copySnippet(state.selected, 'curl');
        break;
      case 'm':
        if (state.selected !== null) toggleMark(state.selected);
        break;
      case 'r':
        if (state.selected !== null && window.mitmdControl && !state.session) {
          const f = state.byId.get(state.selected);
          if (f && f.state === 'held') window.mitmdControl.openEditor(state.selected);
          else window.mitmdControl.compose(state.selected);
        }
        break;
      case 'Delete':
        if (state.selected !== null && !state.session) deleteFlow(state.selected);
        break;
      case 'ContextMenu': case 'F10':
        if (state.selected !== null && (ev.key === 'ContextMenu' || ev.shiftKey)) {
          ev.preventDefault();
          const i = indexOfId(state.selected);
          const box = scroller.getBoundingClientRect();
          openMenu(box.left + 80, box.top + (i * ROW_H - scroller.scrollTop) + ROW_H, state.selected);
        }
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
    buildHeader();
    layoutColumns();
    const params = new URLSearchParams(location.search);
    const initial = params.get('filter') || '';
    filterInput.value = initial;
    state.filter = initial;
    state.session = params.get('session') || '';
    filterInput.classList.toggle('active', !!initial);
    if (params.has('token')) {
      params.delete('token');
      const rest = params.toString();
      history.replaceState(null, '', location.pathname + (rest ? '?' + rest : ''));
    }
    try {
      state.info = await api('/api/info');
      document.title = `mitmd · ${state.info.proxy || 'viewer'}`;
    } catch (e) {
      toast('Could not reach mitmd: ' + e.message, true);
    }
    state.store = await loadSessions();
    if (state.store) {
      $('btn-clear').title = 'Remove every flow of this session (you can undo it for 30 s)';
      if (state.session === state.sessions.current) state.session = '';
      renderSessions();
    } else {
      state.session = '';
    }
    $('btn-clear').disabled = !!state.session;
    updateLocation();
    openStream();
    scheduleRender();
  }

  window.mitmdViewer = {toast};
  start();
})();
