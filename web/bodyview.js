// mitmd viewer: body rendering that can fold (JSON, XML) and a search inside a rendered body.
// Recorded bodies are untrusted: everything reaches the DOM as text nodes; XML is parsed by the
// browser's inert DOMParser and rebuilt as text, never inserted.
//
// Folding: a container is <span class="fold open">, its toggle glyph and the collapsed summary
// come from CSS (::before / ::after with attr()), so the view's textContent is exactly the pretty
// text whatever is folded, and copying or searching it sees the real body.
(function (root) {
  'use strict';

  // Bigger documents are shown as plain pretty text: building a node per value would stall.
  const MAX_FOLD_NODES = 60000;
  // Containers deeper than this start folded when the document is large.
  const FOLD_DEPTH_LARGE = 2;
  const LARGE_NODES = 3000;
  const MAX_MATCHES = 5000;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function countNodes(value, limit) {
    let n = 0;
    const stack = [value];
    while (stack.length && n <= limit) {
      const v = stack.pop();
      n++;
      if (v && typeof v === 'object') for (const k in v) stack.push(v[k]);
    }
    return n;
  }

  // A foldable container: toggle, opening text, children (in .fold-body), closing text.
  function fold(open, close, count, unit, startOpen) {
    const wrap = el('span', 'fold' + (startOpen ? ' open' : ''));
    const tog = el('span', 'fold-toggle');
    tog.setAttribute('role', 'button');
    tog.setAttribute('aria-label', 'fold or unfold');
    const body = el('span', 'fold-body');
    const ell = el('span', 'fold-ell');
    ell.dataset.summary = `${count} ${unit}${count === 1 ? '' : 's'}`;
    wrap.append(tog, open, body, ell, close);
    return {wrap, body};
  }

  function jsonValue(value, out, indent, foldBelow) {
    const pad1 = '  '.repeat(indent + 1), pad0 = '  '.repeat(indent);
    if (value === null || typeof value === 'boolean') { out.append(el('span', 'j-lit', String(value))); return; }
    if (typeof value === 'number') { out.append(el('span', 'j-num', String(value))); return; }
    if (typeof value === 'string') { out.append(el('span', 'j-str', JSON.stringify(value))); return; }
    const isArray = Array.isArray(value);
    const keys = isArray ? null : Object.keys(value);
    const n = isArray ? value.length : keys.length;
    if (!n) { out.append(isArray ? '[]' : '{}'); return; }
    const close = document.createDocumentFragment();
    close.append(el('span', 'fold-pad', pad0), isArray ? ']' : '}');
    const {wrap, body} = fold(isArray ? '[' : '{', close, n, isArray ? 'item' : 'key', indent < foldBelow);
    body.append('\n');
    for (let i = 0; i < n; i++) {
      body.append(pad1);
      if (!isArray) body.append(el('span', 'j-key', JSON.stringify(keys[i])), ': ');
      jsonValue(isArray ? value[i] : value[keys[i]], body, indent + 1, foldBelow);
      body.append(i < n - 1 ? ',\n' : '\n');
    }
    out.append(wrap);
  }

  // A <pre> with the JSON folded by structure, or null when |value| is too large to fold.
  function jsonTree(value) {
    const nodes = countNodes(value, MAX_FOLD_NODES);
    if (nodes > MAX_FOLD_NODES) return null;
    const pre = el('pre', 'code json foldable');
    jsonValue(value, pre, 0, nodes > LARGE_NODES ? FOLD_DEPTH_LARGE : Infinity);
    return pre;
  }

  function xmlAttrs(node) {
    let s = '';
    for (const a of node.attributes) s += ` ${a.name}="${a.value.replace(/"/g, '&quot;')}"`;
    return s;
  }

  function xmlNode(node, out, indent, budget) {
    const pad = '  '.repeat(indent);
    switch (node.nodeType) {
      case 1: {  // element
        const kids = [...node.childNodes].filter((c) => !(c.nodeType === 3 && !c.nodeValue.trim()));
        const name = node.nodeName;
        const attrs = xmlAttrs(node);
        if (!kids.length) {
          out.append(pad, el('span', 'x-tag', `<${name}`), el('span', 'x-attr', attrs), el('span', 'x-tag', '/>'), '\n');
          return;
        }
        if (kids.length === 1 && kids[0].nodeType === 3) {
          out.append(pad, el('span', 'x-tag', `<${name}`), el('span', 'x-attr', attrs), el('span', 'x-tag', '>'),
            kids[0].nodeValue.trim(), el('span', 'x-tag', `</${name}>`), '\n');
          return;
        }
        const open = document.createDocumentFragment();
        open.append(el('span', 'x-tag', `<${name}`), el('span', 'x-attr', attrs), el('span', 'x-tag', '>'));
        const close = document.createDocumentFragment();
        close.append(el('span', 'fold-pad', pad), el('span', 'x-tag', `</${name}>`));
        const {wrap, body} = fold(open, close, kids.length, 'child', true);
        body.append('\n');
        for (const k of kids) {
          if (--budget.n < 0) { body.append(pad, '  …\n'); break; }
          xmlNode(k, body, indent + 1, budget);
        }
        out.append(pad, wrap, '\n');
        return;
      }
      case 3: out.append(pad, node.nodeValue.trim(), '\n'); return;
      case 4: out.append(pad, el('span', 'x-cdata', `<![CDATA[${node.nodeValue}]]>`), '\n'); return;
      case 7: out.append(pad, el('span', 'x-pi', `<?${node.target} ${node.data}?>`), '\n'); return;
      case 8: out.append(pad, el('span', 'x-comment', `<!--${node.nodeValue}-->`), '\n'); return;
      default: return;
    }
  }

  // A <pre> with the XML folded by element, or null when it does not parse as XML.
  function xmlTree(text) {
    if (text.length > 2 * 1024 * 1024) return null;
    let doc;
    try {
      doc = new DOMParser().parseFromString(text, 'application/xml');
    } catch (e) {
      return null;
    }
    if (!doc || doc.getElementsByTagName('parsererror').length) return null;
    const pre = el('pre', 'code xml foldable');
    const decl = /^\s*(<\?xml[^>]*\?>)/.exec(text);
    if (decl) pre.append(el('span', 'x-pi', decl[1]), '\n');
    const budget = {n: MAX_FOLD_NODES};
    for (const n of doc.childNodes) {
      if (n.nodeType === 10) pre.append(el('span', 'x-pi', `<!DOCTYPE ${n.name}>`), '\n');
      else xmlNode(n, pre, 0, budget);
    }
    return pre;
  }

  // Clicks on a toggle open or close its container; Alt+click does the same to all inside it.
  function onFoldClick(ev) {
    const tog = ev.target.closest('.fold-toggle, .fold-ell');
    if (!tog) return;
    const wrap = tog.parentElement;
    const open = !wrap.classList.contains('open');
    wrap.classList.toggle('open', open);
    if (ev.altKey) for (const f of wrap.querySelectorAll('.fold')) f.classList.toggle('open', open);
  }

  function setAllFolds(rootEl, open) {
    for (const f of rootEl.querySelectorAll('.fold')) f.classList.toggle('open', open);
  }

  // ---- search

  const HL_ALL = 'mitmd-search';
  const HL_CUR = 'mitmd-search-current';

  function clearHighlights() {
    if (typeof CSS !== 'undefined' && CSS.highlights) {
      CSS.highlights.delete(HL_ALL);
      CSS.highlights.delete(HL_CUR);
    }
  }

  // Finds |query| (case-insensitive) in the text under |rootEl|, across element boundaries, and
  // highlights the matches with the CSS Custom Highlight API (no DOM changes).
  // Returns {count, index, go(delta), clear()}.
  function search(rootEl, query) {
    clearHighlights();
    const result = {count: 0, index: -1, capped: false, ranges: [], go() {}, clear: clearHighlights};
    if (!rootEl || !query) return result;
    const nodes = [];
    let text = '';
    const walker = document.createTreeWalker(rootEl, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      nodes.push({node: n, start: text.length});
      text += n.nodeValue;
    }
    const hay = text.toLowerCase();
    const needle = query.toLowerCase();
    // Binary search: the text node holding offset |pos|.
    const locate = (pos, end) => {
      let lo = 0, hi = nodes.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (nodes[mid].start < pos || (nodes[mid].start === pos && !end)) lo = mid; else hi = mid - 1;
      }
      return nodes[lo];
    };
    for (let i = hay.indexOf(needle); i >= 0; i = hay.indexOf(needle, i + needle.length)) {
      if (result.ranges.length >= MAX_MATCHES) { result.capped = true; break; }
      const a = locate(i, false), b = locate(i + needle.length, true);
      const range = document.createRange();
      range.setStart(a.node, i - a.start);
      range.setEnd(b.node, i + needle.length - b.start);
      result.ranges.push(range);
    }
    result.count = result.ranges.length;
    const hasApi = typeof CSS !== 'undefined' && CSS.highlights && typeof Highlight === 'function';
    if (hasApi && result.count) CSS.highlights.set(HL_ALL, new Highlight(...result.ranges));
    result.go = (delta) => {
      if (!result.count) return;
      result.index = ((result.index + delta) % result.count + result.count) % result.count;
      const range = result.ranges[result.index];
      // A match inside a folded container opens it.
      for (let p = range.startContainer.parentElement; p && p !== rootEl; p = p.parentElement) {
        if (p.classList.contains('fold')) p.classList.add('open');
      }
      if (hasApi) CSS.highlights.set(HL_CUR, new Highlight(range));
      const holder = range.startContainer.parentElement;
      const rect = range.getBoundingClientRect();
      const scroller = rootEl.closest('.d-content') || rootEl;
      const box = scroller.getBoundingClientRect();
      if (rect.top < box.top + 40 || rect.bottom > box.bottom - 20) {
        scroller.scrollTop += rect.top - box.top - box.height / 3;
      }
      if (rootEl.scrollHeight > rootEl.clientHeight) {
        const inner = rootEl.getBoundingClientRect();
        if (rect.top < inner.top || rect.bottom > inner.bottom) rootEl.scrollTop += rect.top - inner.top - inner.height / 3;
      }
      return holder;
    };
    return result;
  }

  root.mitmdBody = {jsonTree, xmlTree, onFoldClick, setAllFolds, search, clearHighlights};
})(this);
