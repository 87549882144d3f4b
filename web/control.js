// mitmd viewer: changing traffic. Held flows (a bar that lists them, an editor to resume them
// with edits or kill them), the composer (edit and resend a recorded request: `r`), the Rules
// panel (rules and hold filters), and Compare (two flows side by side, differences marked).
// Talks only to the JSON API (/api/hold, /api/rules, /api/flows/ID/{resume,kill,replay}); app.js
// calls window.mitmdControl from its context menu and keys. Untrusted data reaches the DOM only
// through textContent and form values.
(() => {
  'use strict';

  const POLL_MS = 1000;
  const MAX_DIFF_LINES = 3000;
  const $ = (id) => document.getElementById(id);

  const {h, api} = window.mitmdDom;

  const send = (path, body, method = 'POST') => api(path, {
    method,
    headers: {'X-Mitmd': '1', 'Content-Type': 'application/json'},
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const toast = (text, error) => window.mitmdViewer ? window.mitmdViewer.toast(text, error) : null;

  // ---------------------------------------------------------------- dialogs

  let openDialog = null;
  function dialog(title, body, buttons, cls) {
    closeDialog();
    const status = h('div', {class: 'ctl-status', role: 'status'});
    const box = h('div', {class: 'ctl-dialog ' + (cls || ''), role: 'dialog', 'aria-label': title},
      h('div', {class: 'ctl-head'}, h('h2', {text: title}),
        h('button', {class: 'icon-btn', 'aria-label': 'Close', text: '×', onclick: closeDialog})),
      h('div', {class: 'ctl-body'}, body),
      h('div', {class: 'ctl-foot'}, status, ...buttons));
    const back = h('div', {class: 'ctl-backdrop', onmousedown: (ev) => { if (ev.target === back) closeDialog(); }}, box);
    back.addEventListener('keydown', (ev) => {
      // The table's keys (j, k, r, ...) stay out of the dialog.
      ev.stopPropagation();
      if (ev.key === 'Escape') closeDialog();
    });
    document.body.append(back);
    openDialog = back;
    const first = box.querySelector('input, textarea, select, button.primary');
    if (first) first.focus();
    return {
      close: closeDialog,
      say: (text, error) => { status.textContent = text; status.classList.toggle('error', !!error); },
    };
  }
  function closeDialog() {
    if (openDialog) openDialog.remove();
    openDialog = null;
  }
  const button = (label, run, cls) => h('button', {class: 'btn ' + (cls || ''), text: label, onclick: run});

  // ---------------------------------------------------------------- message forms

  function headersText(headers) {
    return (headers || []).map(([n, v]) => `${n}: ${v}`).join('\n');
  }
  // "Name: value" per line; blank lines are skipped. Throws on a line without a colon.
  function parseHeaders(text) {
    const out = [];
    text.split('\n').forEach((line, i) => {
      if (!line.trim()) return;
      const colon = line.indexOf(':');
      if (colon <= 0) throw new Error(`header line ${i + 1} has no "Name:"`);
      out.push([line.slice(0, colon).trim(), line.slice(colon + 1).replace(/^[ \t]+/, '')]);
    });
    return out;
  }
  function bodyText(body) {
    if (!body) return {text: '', editable: true, note: ''};
    if (body.truncated) {
      return {text: body.encoding === 'base64' ? '' : body.content, editable: false,
        note: `the body was cut at --max-body-record (${body.size} bytes in all): it goes on as it is`};
    }
    if (body.encoding === 'base64') {
      const bytes = atob(body.content);
      // Past 256 KiB a hex textarea is too slow to edit: show the start, send the bytes as they are.
      const editable = bytes.length <= 256 * 1024;
      let hex = '';
      for (let i = 0; i < (editable ? bytes.length : 4096); i += 16) {
        const row = [...bytes.slice(i, i + 16)].map((c) => c.charCodeAt(0).toString(16).padStart(2, '0'));
        hex += i.toString(16).padStart(6, '0') + '  ' + row.join(' ') + '\n';
      }
      return {text: hex, editable, hex: true, note: editable
        ? `binary body (${bytes.length} bytes) in hex: edit the bytes after each offset`
        : `binary body (${bytes.length} bytes), its start in hex: too large to edit here, it goes on as it is`};
    }
    return {text: body.content, editable: true, note: ''};
  }

  // The bytes of the hex editor's text as base64: each line's leading offset is dropped, then
  // every pair of hex digits is a byte.
  function hexToBase64(text) {
    let bin = '';
    text.split('\n').forEach((line, i) => {
      const digits = line.replace(/^\s*[0-9a-fA-F]{6,}\s\s/, '').replace(/\s+/g, '');
      if (!/^[0-9a-fA-F]*$/.test(digits) || digits.length % 2) throw new Error(`hex line ${i + 1} is not pairs of hex digits`);
      for (let j = 0; j < digits.length; j += 2) bin += String.fromCharCode(parseInt(digits.slice(j, j + 2), 16));
    });
    return btoa(bin);
  }

  // A form for a request ({method, url, headers, body}) or a response ({status, reason, ...}).
  // Returns {el, edit()}: edit() gives the API's edit object with what changed, or throws.
  function messageForm(side, msg) {
    const body = bodyText(msg.body);
    const fields = {};
    const rows = [];
    if (side === 'request') {
      fields.method = h('input', {class: 'ctl-method', value: msg.method, 'aria-label': 'Method', spellcheck: 'false'});
      fields.url = h('input', {class: 'ctl-url', value: msg.url, 'aria-label': 'URL', spellcheck: 'false'});
      rows.push(h('div', {class: 'ctl-line'}, fields.method, fields.url));
    } else {
      fields.status = h('input', {class: 'ctl-status-code', value: String(msg.status), 'aria-label': 'Status', inputmode: 'numeric'});
      fields.reason = h('input', {class: 'ctl-reason', value: msg.reason || '', 'aria-label': 'Reason'});
      rows.push(h('div', {class: 'ctl-line'}, fields.status, fields.reason));
    }
    fields.headers = h('textarea', {class: 'ctl-headers', rows: 8, spellcheck: 'false', 'aria-label': 'Headers', value: headersText(msg.headers)});
    fields.body = h('textarea', {class: 'ctl-bodytext', rows: 10, spellcheck: 'false', 'aria-label': 'Body', value: body.text, readonly: !body.editable});
    const pretty = button('Pretty JSON', () => {
      try { fields.body.value = JSON.stringify(JSON.parse(fields.body.value), null, 2); } catch (e) { toast('The body is not JSON', true); }
    }, 'small');
    pretty.disabled = !body.editable || body.hex;
    rows.push(h('label', {class: 'ctl-label', text: 'Headers (one "Name: value" per line; add, remove or reorder lines)'}), fields.headers,
      h('div', {class: 'ctl-label'}, h('span', {text: 'Body '}), pretty, body.note ? h('span', {class: 'muted', text: ' ' + body.note}) : null),
      fields.body);
    const original = {headers: fields.headers.value, body: fields.body.value};
    return {
      el: h('div', {class: 'ctl-form'}, rows),
      edit() {
        const e = {};
        if (side === 'request') {
          if (fields.method.value.trim() !== msg.method) e.method = fields.method.value.trim();
          if (fields.url.value.trim() !== msg.url) e.url = fields.url.value.trim();
        } else {
          const s = Number(fields.status.value);
          if (!Number.isInteger(s)) throw new Error('the status must be a number');
          if (s !== msg.status) e.status = s;
          if (fields.reason.value !== (msg.reason || '')) e.reason = fields.reason.value;
        }
        if (fields.headers.value !== original.headers) e.headers = parseHeaders(fields.headers.value);
        if (body.editable && fields.body.value !== original.body) {
          if (body.hex) e.body_base64 = hexToBase64(fields.body.value); else e.body = fields.body.value;
        }
        return e;
      },
    };
  }

  // ---------------------------------------------------------------- held flows

  const bar = h('div', {id: 'held-bar', class: 'held-bar', role: 'region', 'aria-label': 'Held flows', hidden: true});
  let held = [];  // [{id, side, method, url, status}], oldest first
  let heldKey = '';

  async function pollHold() {
    try {
      held = (await api('/api/hold')).held || [];
    } catch (e) {
      return;  // the viewer shows connection trouble elsewhere
    }
    const key = held.map((f) => f.id).join(',');
    if (key !== heldKey) { heldKey = key; renderBar(); }
  }

  function renderBar() {
    bar.hidden = held.length === 0;
    if (bar.hidden) { bar.replaceChildren(); return; }
    const items = held.map((f) => {
      const at = f.side === 'response' ? `response ${f.status}` : 'request';
      return h('button', {class: 'held-item', title: `Held at its ${at}: open the editor`, onclick: () => openEditor(f.id)},
        h('span', {class: 'held-side', text: at}), h('span', {class: 'held-url', text: `${f.method} ${f.url}`}));
    });
    bar.replaceChildren(h('strong', {text: `${held.length} held`}), ...items,
      button('Resume all', resumeAll, 'small'));
  }

  async function resumeAll() {
    try {
      const r = await send('/api/hold/resume');
      toast(`Resumed ${r.resumed} flow${r.resumed === 1 ? '' : 's'}` + (r.errors ? ` (${r.errors.length} could not be)` : ''));
    } catch (e) {
      toast('Resume all failed: ' + e.message, true);
    }
    pollHold();
  }

  async function openEditor(id) {
    let f;
    try { f = await api(`/api/hold/${encodeURIComponent(id)}`); } catch (e) { toast(e.message, true); pollHold(); return; }
    const side = f.response ? 'response' : 'request';
    const form = messageForm(side, side === 'request'
      ? {method: f.request.method, url: f.request.url, headers: f.request.headers, body: f.request.body}
      : f.response);
    const d = dialog(`Held ${side}: ${f.request ? f.request.method + ' ' + f.request.url : id}`, form.el, [
      button('Kill', async () => {
        try { await send(`/api/flows/${id}/kill`); d.close(); toast('Killed'); } catch (e) { d.say(e.message, true); }
        pollHold();
      }, 'danger'),
      button('Resume', async () => {
        let edit;
        try { edit = form.edit(); } catch (e) { d.say(e.message, true); return; }
        try {
          await send(`/api/flows/${id}/resume`, Object.keys(edit).length ? {[side]: edit} : undefined);
          d.close();
          toast(Object.keys(edit).length ? 'Resumed with your edits' : 'Resumed');
        } catch (e) { d.say(e.message, true); }
        pollHold();
      }, 'primary'),
    ], 'held-editor');
  }

  // ---------------------------------------------------------------- composer

  async function compose(id) {
    let f;
    try { f = await api(`/api/flows/${encodeURIComponent(id)}?bodies=1`); } catch (e) { toast(e.message, true); return; }
    if (!f.request || f.kind === 'tunnel') { toast('This flow has no HTTP request to resend', true); return; }
    const form = messageForm('request', {method: f.request.method, url: f.request.url, headers: f.request.headers, body: f.request.body});
    const d = dialog('Edit and resend', form.el, [
      button('Send', async () => {
        let edit;
        try { edit = form.edit(); } catch (e) { d.say(e.message, true); return; }
        try {
          const r = await send(`/api/flows/${id}/replay`, Object.keys(edit).length ? {request: edit} : undefined);
          d.say(`Sent: flow ${r.id.slice(0, 8)} replays ${id.slice(0, 8)}`);
          toast('Sent: the new flow appears in the table');
        } catch (e) { d.say(e.message, true); }
      }, 'primary'),
    ], 'composer');
  }

  async function replay(id) {
    try {
      const r = await send(`/api/flows/${id}/replay`);
      toast(`Replayed as flow ${r.id.slice(0, 8)}`);
    } catch (e) {
      toast('Replay failed: ' + e.message, true);
    }
  }

  // ---------------------------------------------------------------- rules panel

  const KINDS = {
    'map-local': '|FILTER|LOCAL-PATH',
    'map-remote': '|FILTER|URL-REGEX|REPLACEMENT',
    'modify-headers': '|FILTER|NAME|VALUE',
    'modify-body': '|FILTER|REGEX|REPLACEMENT',
  };

  async function openRules() {
    let rules, hold;
    try {
      [rules, hold] = await Promise.all([api('/api/rules'), api('/api/hold')]);
    } catch (e) { toast(e.message, true); return; }
    const list = h('div', {class: 'rules-list'});
    const rows = [];
    const render = () => list.replaceChildren(...rows.map((r, i) => r.el(i)));
    const addRow = (rule) => {
      const kind = h('select', {'aria-label': 'Kind'}, Object.keys(KINDS).map((k) => h('option', {value: k, text: k})));
      kind.value = rule.kind;
      const spec = h('input', {class: 'rule-spec', value: rule.spec, placeholder: KINDS[rule.kind], spellcheck: 'false', 'aria-label': 'Rule'});
      kind.addEventListener('change', () => { spec.placeholder = KINDS[kind.value]; });
      const enabled = h('input', {type: 'checkbox', 'aria-label': 'Enabled'});
      enabled.checked = rule.enabled !== false;
      const row = {
        get: () => ({kind: kind.value, spec: spec.value, enabled: enabled.checked}),
        el: (i) => h('div', {class: 'rule-row'}, enabled, kind, spec,
          button('↑', () => { if (i > 0) { [rows[i - 1], rows[i]] = [rows[i], rows[i - 1]]; render(); } }, 'small'),
          button('↓', () => { if (i < rows.length - 1) { [rows[i + 1], rows[i]] = [rows[i], rows[i + 1]]; render(); } }, 'small'),
          button('Remove', () => { rows.splice(i, 1); render(); }, 'small danger')),
      };
      rows.push(row);
    };
    for (const r of rules.rules) addRow(r);
    render();
    const holdReq = h('input', {class: 'hold-filter', value: (hold.request || []).join(' OR '), placeholder: 'e.g. host:api.example.com method:POST', 'aria-label': 'Hold requests matching'});
    const holdResp = h('input', {class: 'hold-filter', value: (hold.response || []).join(' OR '), placeholder: 'e.g. status:>=500', 'aria-label': 'Hold responses matching'});
    const body = h('div', {},
      h('p', {class: 'muted', text: 'Rules apply in order to every new exchange; the first character of a rule is its separator, FILTER is the filter language. Saved in the confdir.'}),
      list,
      button('Add rule', () => { addRow({kind: 'modify-headers', spec: '', enabled: true}); render(); list.lastChild.querySelector('.rule-spec').focus(); }, 'small'),
      h('h3', {text: 'Hold'}),
      h('label', {class: 'ctl-label', text: 'Hold requests matching (empty: none)'}), holdReq,
      h('label', {class: 'ctl-label', text: 'Hold responses matching (empty: none)'}), holdResp);
    const d = dialog('Rules', body, [
      button('Save', async () => {
        try {
          await send('/api/rules', {rules: rows.map((r) => r.get())}, 'PUT');
          await send('/api/hold', {request: holdReq.value.trim() ? [holdReq.value.trim()] : [],
            response: holdResp.value.trim() ? [holdResp.value.trim()] : []}, 'PUT');
          d.close();
          toast('Rules saved');
        } catch (e) { d.say(e.message, true); }
      }, 'primary'),
    ], 'rules-panel');
  }

  // ---------------------------------------------------------------- compare

  let compareFirst = null;

  function compare(id) {
    if (compareFirst === null || compareFirst === id) {
      compareFirst = id;
      toast('Picked for comparison: now choose "Compare with…" on a second flow');
      return;
    }
    const a = compareFirst;
    compareFirst = null;
    openCompare(a, id);
  }

  // Lines of |a| and |b| aligned by their longest common subsequence: [{a, b, same}], with a
  // or b null where a line exists on one side only.
  function diffLines(a, b) {
    if (a.length > MAX_DIFF_LINES || b.length > MAX_DIFF_LINES) {
      return a.map((l, i) => ({a: l, b: b[i] === undefined ? null : b[i], same: l === b[i]}));
    }
    const m = a.length, n = b.length;
    const lcs = Array.from({length: m + 1}, () => new Uint16Array(n + 1));
    for (let i = m - 1; i >= 0; i--) {
      for (let j = n - 1; j >= 0; j--) {
        lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
      }
    }
    const out = [];
    let i = 0, j = 0;
    while (i < m || j < n) {
      if (i < m && j < n && a[i] === b[j]) { out.push({a: a[i++], b: b[j++], same: true}); }
      else if (j < n && (i === m || lcs[i][j + 1] >= lcs[i + 1][j])) { out.push({a: null, b: b[j++], same: false}); }
      else { out.push({a: a[i++], b: null, same: false}); }
    }
    return out;
  }

  function messageLines(f, side) {
    const m = f[side];
    if (!m) return ['(none)'];
    const first = side === 'request' ? `${m.method} ${m.url} ${m.version || ''}`.trim() : `${m.status} ${m.reason || ''}`.trim();
    const lines = [first, ...(m.headers || []).map(([n, v]) => `${n}: ${v}`), ''];
    const body = bodyText(m.body);
    let text = body.text;
    try { if (text && /^\s*[[{]/.test(text)) text = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON */ }
    return lines.concat(text ? text.split('\n') : []);
  }

  async function openCompare(a, b) {
    let fa, fb;
    try {
      [fa, fb] = await Promise.all([a, b].map((id) => api(`/api/flows/${encodeURIComponent(id)}?bodies=1`)));
    } catch (e) { toast(e.message, true); return; }
    const sections = ['request', 'response'].map((side) => {
      const rows = diffLines(messageLines(fa, side), messageLines(fb, side));
      const changed = rows.filter((r) => !r.same).length;
      return h('section', {class: 'cmp-section'},
        h('h3', {text: `${side[0].toUpperCase() + side.slice(1)} — ${changed ? changed + ' line' + (changed === 1 ? '' : 's') + ' differ' : 'identical'}`}),
        h('div', {class: 'cmp-grid'}, rows.flatMap((r) => [
          h('div', {class: 'cmp-cell' + (r.same ? '' : r.a === null ? ' cmp-empty' : ' cmp-del'), text: r.a === null ? '' : r.a}),
          h('div', {class: 'cmp-cell' + (r.same ? '' : r.b === null ? ' cmp-empty' : ' cmp-add'), text: r.b === null ? '' : r.b}),
        ])));
    });
    const title = (f) => `${f.id.slice(0, 8)} ${f.request ? f.request.method + ' ' + f.request.url : ''}`;
    dialog('Compare', h('div', {},
      h('div', {class: 'cmp-grid cmp-titles'}, h('div', {class: 'cmp-cell', text: title(fa)}), h('div', {class: 'cmp-cell', text: title(fb)})),
      sections), [], 'compare');
  }

  // ---------------------------------------------------------------- what rules and edits changed

  // The detail pane's list of a flow's modified_by: per change, the rule (or "edit") and what it
  // changed, the original value next to the modified one.
  function modifications(d) {
    const rows = d.modified_by.map((m) => h('div', {class: 'mod-row'},
      h('div', {class: 'mod-what'}, h('span', {class: 'mod-field', text: m.what}), h('span', {class: 'muted', text: ' by ' + m.rule})),
      h('div', {class: 'cmp-grid'},
        h('div', {class: 'cmp-cell' + (m.before === '' ? ' cmp-empty' : ' cmp-del'), title: 'original', text: m.before === '' ? '(none)' : m.before}),
        h('div', {class: 'cmp-cell' + (m.after === '' ? ' cmp-empty' : ' cmp-add'), title: 'modified', text: m.after === '' ? '(removed)' : m.after}))));
    const n = d.modified_by.length;
    return h('div', {class: 'note mods', id: 'flow-modified'},
      h('b', {text: `Modified (${n} change${n === 1 ? '' : 's'}): original ⟶ modified`}),
      d.replay_of ? h('span', {class: 'muted', text: ` · a replay of ${d.replay_of.slice(0, 8)}`}) : null,
      rows);
  }

  // ---------------------------------------------------------------- start

  async function start() {
    // Only a mitmd with the control API (not a read-only or scripted viewer) gets the controls.
    try {
      if (!(await api('/api/info')).control) return;
    } catch (e) {
      return;
    }
    const header = document.querySelector('.topbar');
    if (header) header.after(bar);
    const actions = document.querySelector('.topbar .actions');
    if (actions) actions.prepend(h('button', {id: 'btn-rules', class: 'btn', text: 'Rules', title: 'Map local/remote, modify headers and bodies, hold filters', onclick: openRules}));
    pollHold();
    setInterval(() => { if (!document.hidden) pollHold(); }, POLL_MS);
  }

  window.mitmdControl = {compose, replay, compare, openEditor, openRules, modifications,
    comparePicked: () => compareFirst};
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
