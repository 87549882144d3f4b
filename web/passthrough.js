// mitmd viewer: the hosts auto-passthrough tunnels, per client (GET /api/passthrough), with why
// and for how long, each clearable (DELETE /api/passthrough?client=&host=, or all). The top bar's
// Passthrough button counts them. Untrusted data reaches the DOM only through textContent.
(() => {
  'use strict';

  const POLL_MS = 5000;

  const {h, api} = window.mitmdDom;

  function left(seconds) {
    if (seconds >= 3600) return `${Math.floor(seconds / 3600)} h ${Math.floor(seconds % 3600 / 60)} min`;
    if (seconds >= 60) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
    return `${Math.max(0, seconds)} s`;
  }

  let button = null;
  let backdrop = null;

  async function clear(client, host) {
    const q = new URLSearchParams();
    if (client) q.set('client', client);
    if (host) q.set('host', host);
    await api('/api/passthrough' + (q.toString() ? '?' + q : ''), {method: 'DELETE', headers: {'X-Mitmd': '1'}});
    await refresh();
  }

  function render(state) {
    const body = backdrop.querySelector('.ctl-body');
    body.replaceChildren();
    if (!state.auto) {
      body.append(h('p', {class: 'muted', text: 'Auto-passthrough is off (--no-auto-passthrough): every host is intercepted unless --ignore-hosts says otherwise.'}));
    } else {
      body.append(h('p', {class: 'muted', text: `A client that trusts mitmd's root and still refuses its certificate for a host pins that host: it is tunnelled for that client only, for ${state.ttl} s. Clearing an entry intercepts the host again on the client's next connection.`}));
    }
    if (state.entries.length === 0) {
      body.append(h('p', {id: 'passthrough-empty', text: 'No host is tunnelled by auto-passthrough.'}));
    } else {
      const rows = state.entries.map((e) => h('tr', {},
        h('td', {text: e.host}), h('td', {text: e.client}), h('td', {text: e.reason}),
        h('td', {class: 'num', text: left(e.seconds_left)}),
        h('td', {}, h('button', {class: 'btn small', text: 'Clear', title: `Intercept ${e.host} for ${e.client} again`,
          onclick: () => clear(e.client, e.host).catch((err) => say(err.message))}))));
      body.append(h('table', {id: 'passthrough-list', class: 'kv'},
        h('thead', {}, h('tr', {}, h('th', {text: 'Host'}), h('th', {text: 'Client'}), h('th', {text: 'Why'}),
          h('th', {text: 'Time left'}), h('th', {}))),
        h('tbody', {}, rows)));
    }
    if (state.ignore.length) {
      body.append(h('p', {class: 'muted', text: 'Also never intercepted (--ignore-hosts): ' + state.ignore.join(', ')}));
    }
  }

  function say(text) {
    if (!backdrop) return;
    const status = backdrop.querySelector('.ctl-status');
    status.textContent = text;
    status.classList.add('error');
  }

  async function refresh() {
    let state;
    try {
      state = await api('/api/passthrough');
    } catch (e) {
      if (backdrop) say(e.message);
      return;
    }
    if (button) button.textContent = state.entries.length ? `Passthrough (${state.entries.length})` : 'Passthrough';
    if (backdrop) render(state);
  }

  function close() {
    if (backdrop) backdrop.remove();
    backdrop = null;
  }

  function open() {
    close();
    backdrop = h('div', {class: 'ctl-backdrop', onmousedown: (ev) => { if (ev.target === backdrop) close(); }},
      h('div', {class: 'ctl-dialog', id: 'passthrough-dialog', role: 'dialog', 'aria-label': 'Passthrough'},
        h('div', {class: 'ctl-head'}, h('h2', {text: 'Tunnelled hosts'}),
          h('button', {class: 'icon-btn', 'aria-label': 'Close', text: '×', onclick: close})),
        h('div', {class: 'ctl-body'}),
        h('div', {class: 'ctl-foot'}, h('div', {class: 'ctl-status', role: 'status'}),
          h('button', {class: 'btn', id: 'passthrough-clear-all', text: 'Clear all',
            onclick: () => clear('', '').catch((err) => say(err.message))}))));
    backdrop.addEventListener('keydown', (ev) => {
      ev.stopPropagation();
      if (ev.key === 'Escape') close();
    });
    document.body.append(backdrop);
    refresh();
  }

  async function init() {
    // Asked through /api/info, so a viewer without the proxy (or an older mitmd) is not sent a
    // request that fails: the browser would log the 404 as a console error.
    try {
      const info = await (await fetch('/api/info')).json();
      if (!info.passthrough) return;
    } catch (e) {
      return;
    }
    const actions = document.querySelector('.topbar .actions');
    if (!actions) return;
    button = h('button', {id: 'btn-passthrough', class: 'btn', text: 'Passthrough',
      title: 'Hosts tunnelled without interception because a client pins them', onclick: open});
    const ca = actions.querySelector('a[href="/ca"]');
    actions.insertBefore(button, ca);
    refresh();
    setInterval(() => { if (!document.hidden) refresh(); }, POLL_MS);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
