/* Pycroscope report: the page's script. Hand-written, no framework; embedded
   into report_assets.hpp by cmake/embed_assets.cmake.

   Rules of the room: every name, path and message from the profiled program
   is shown with textContent (the h() helper below), never innerHTML. Every
   panel renders from whatever session.json holds and says "not recorded in
   this run" when its section is absent. A panel that fails shows its error
   and leaves the others working.

   URL hash options: #only=flame,hotspots shows only those panels (for
   screenshots); #selftest[&hot=NAME] runs the page's own checks and writes
   them as JSON into <pre id="pycroscope-selftest"> (the browser test reads
   it from chromium --dump-dom). */
(function () {
  'use strict';

  var consoleErrors = [];
  var originalError = console.error;
  console.error = function () {
    consoleErrors.push(Array.prototype.map.call(arguments, String).join(' '));
    return originalError.apply(console, arguments);
  };
  window.addEventListener('error', function (e) { consoleErrors.push('uncaught: ' + e.message); });
  window.addEventListener('unhandledrejection', function (e) { consoleErrors.push('unhandled: ' + e.reason); });
  var startedAt = performance.now();

  /* ---------- helpers ---------- */

  function h(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var value = attrs[key];
        if (value === undefined || value === null) { return; }
        if (key === 'text') { node.textContent = String(value); }
        else if (key === 'cls') { node.className = value; }
        else if (key.slice(0, 2) === 'on') { node.addEventListener(key.slice(2), value); }
        else { node.setAttribute(key, String(value)); }
      });
    }
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) { return; }
      node.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
    });
    return node;
  }
  var SVGNS = 'http://www.w3.org/2000/svg';
  function s(tag, attrs, text) {
    var node = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, String(attrs[key])); });
    if (text !== undefined) { node.textContent = String(text); }
    return node;
  }
  function num(x) { return typeof x === 'number' && isFinite(x) ? x : 0; }
  function has(x) { return x !== undefined && x !== null; }
  function arr(x) { return Array.isArray(x) ? x : []; }
  function fmtNs(ns) {
    ns = num(ns);
    var a = Math.abs(ns);
    if (a >= 1e9) { return (ns / 1e9).toFixed(3) + ' s'; }
    if (a >= 1e6) { return (ns / 1e6).toFixed(2) + ' ms'; }
    if (a >= 1e3) { return (ns / 1e3).toFixed(1) + ' us'; }
    return ns.toFixed(0) + ' ns';
  }
  function fmtBytes(b) {
    b = num(b);
    var a = Math.abs(b);
    if (a >= 1073741824) { return (b / 1073741824).toFixed(2) + ' GiB'; }
    if (a >= 1048576) { return (b / 1048576).toFixed(2) + ' MiB'; }
    if (a >= 1024) { return (b / 1024).toFixed(1) + ' KiB'; }
    return b.toFixed(0) + ' B';
  }
  // One formatter: toLocaleString() builds a new one per call, which is slow.
  var countFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  function fmtCount(n) { return countFormat.format(num(n)); }
  function fmtPct(x) { return (num(x) * 100).toFixed(1) + '%'; }
  function fmtUnit(v, unit) {
    if (unit === 'bytes') { return fmtBytes(v); }
    if (unit === 'samples') { return fmtCount(v) + ' samples'; }
    return fmtNs(v);
  }
  function where(file, line) {
    if (!file) { return ''; }
    return line > 0 ? file + ':' + line : String(file);
  }
  function shortPath(path) {
    path = String(path || '');
    var parts = path.split('/');
    return parts.length > 3 ? '.../' + parts.slice(-2).join('/') : path;
  }
  function absent(body, what) {
    body.appendChild(h('p', { cls: 'absent', text: what + ' not recorded in this run.' }));
  }
  function hashColor(name) {
    var x = 0;
    for (var i = 0; i < name.length; i++) { x = (x * 31 + name.charCodeAt(i)) | 0; }
    var hue = 8 + Math.abs(x) % 42;
    var light = 55 + Math.abs(x >> 8) % 14;
    return 'hsl(' + hue + ',85%,' + light + '%)';
  }
  function severityOf(x) { return x && typeof x.severity === 'string' ? x.severity : (x && has(x.severity) ? String(x.severity) : ''); }

  /* ---------- data ---------- */

  var DATA = {};
  var parseMs = performance.now();
  try {
    DATA = JSON.parse(document.getElementById('pycroscope-data').textContent) || {};
    parseMs = performance.now() - parseMs;
  } catch (e) {
    console.error('report data could not be parsed: ' + e.message);
  }
  var S = DATA.session && typeof DATA.session === 'object' ? DATA.session : null;
  var META = DATA.report || {};
  var FLAMES = DATA.flames || {};
  var SOURCES = arr(DATA.sources);
  var DURATION = S ? num(S.duration_ns) : 0;
  var HASH = {};
  location.hash.replace(/^#/, '').split('&').forEach(function (part) {
    if (!part) { return; }
    var eq = part.indexOf('=');
    var key = eq < 0 ? part : part.slice(0, eq);
    var value = eq < 0 ? '' : part.slice(eq + 1);
    try { HASH[decodeURIComponent(key)] = decodeURIComponent(value); } catch (e) { HASH[key] = value; }
  });

  function healthLists(key) {
    if (!S) { return null; }
    if (Array.isArray(S[key])) { return S[key]; }
    if (S.health && typeof S.health === 'object' && Array.isArray(S.health[key])) { return S.health[key]; }
    return null;
  }
  var FINDINGS = healthLists('findings');
  var RECOMMENDATIONS = healthLists('recommendations');

  // Hotspot rows: session.hotspots is {functions: [...]} (sampling) or a list.
  var HOTSPOTS = !S || !has(S.hotspots) ? null : (Array.isArray(S.hotspots) ? S.hotspots : arr(S.hotspots.functions));
  var hotByName = {};
  arr(HOTSPOTS).forEach(function (row) { if (row && has(row.name)) { hotByName[String(row.name)] = row; } });

  // One table of functions for every panel: traced python and C functions,
  // native zones, or the sampled hotspots when nothing was traced.
  var FUNCS = [];
  var funcByName = {};
  var FUNC_UNIT = 'ns';
  (function buildFunctions() {
    if (!S) { return; }
    function add(row, kind) {
      if (!row || !has(row.name)) { return; }
      var name = String(row.name);
      if (funcByName[name]) { return; }
      var hot = hotByName[name] || {};
      var f = {
        name: name, file: row.file || '', line: num(row.line), kind: row.kind || kind, calls: num(row.calls || row.count),
        self: num(row.self_ns), incl: num(row.inclusive_ns), callers: row.callers, callees: row.callees,
        severity: severityOf(row) || severityOf(hot), hot_path: row.hot_path || hot.hot_path
      };
      FUNCS.push(f);
      funcByName[name] = f;
    }
    arr(S.functions).forEach(function (r) { add(r, 'python'); });
    arr(S.c_functions).forEach(function (r) { add(r, 'c'); });
    arr(S.zones).forEach(function (r) { if (r && r.kind === 'native') { add(r, 'native'); } });
    if (!FUNCS.length && HOTSPOTS) {
      FUNC_UNIT = 'samples';
      HOTSPOTS.forEach(function (r) {
        if (!r || !has(r.name)) { return; }
        var f = { name: String(r.name), file: r.file || '', line: num(r.line), kind: r.kind || 'python', calls: 0,
          self: num(r.self_samples), incl: num(r.total_samples), severity: severityOf(r), hot_path: r.hot_path,
          self_pct: num(r.self_pct), total_pct: num(r.total_pct) };
        FUNCS.push(f);
        funcByName[f.name] = f;
      });
    }
  })();
  var FUNC_TOTAL = FUNC_UNIT === 'samples' ? num(S && S.hotspots && S.hotspots.samples) : DURATION;

  /* ---------- selection shared by the panels ---------- */

  var selected = null;
  var listeners = [];
  var listenerMs = [];
  function onSelect(fn) { listeners.push(fn); }
  function select(name, origin) {
    selected = name;
    var label = document.getElementById('selected-label');
    if (label) { label.textContent = name ? 'selected: ' + name : ''; }
    listeners.forEach(function (fn, i) {
      var t0 = performance.now();
      try { fn(name, origin); } catch (e) { console.error('selection update failed: ' + e.message); }
      listenerMs[i] = Math.round(performance.now() - t0);
    });
  }

  /* ---------- page skeleton ---------- */

  var PANELS = [
    ['overview', 'Overview'], ['flame', 'Flame graph'], ['callgraph', 'Call graph'], ['timeline', 'Timeline'],
    ['hotspots', 'Hotspots'], ['source', 'Source heatmap'], ['memory', 'Memory'], ['imports', 'Imports'],
    ['io', 'I/O'], ['exceptions', 'Exceptions'], ['gc', 'GC'], ['system', 'System'], ['complexity', 'Complexity']
  ];
  var app = document.getElementById('app');
  var script = S ? ((S.metadata && S.metadata.script) || (S.process && S.process.name) || '') : '';
  var nav = h('nav', null, PANELS.map(function (p) { return h('a', { href: '#panel-' + p[0], text: p[1] }); }));
  app.appendChild(h('header', { cls: 'top' }, [
    h('h1', { text: 'Pycroscope' + (script ? ': ' + script : ''), title: script }), nav,
    h('span', { cls: 'sel', id: 'selected-label' })
  ]));
  var main = h('main');
  app.appendChild(main);
  var tip = h('div', { cls: 'tip' });
  document.body.appendChild(tip);
  function showTip(e, text) {
    tip.textContent = text;
    tip.style.display = 'block';
    var x = Math.min(e.clientX + 14, window.innerWidth - 540);
    tip.style.left = Math.max(0, x) + 'px';
    tip.style.top = (e.clientY + 16) + 'px';
  }
  function hideTip() { tip.style.display = 'none'; }

  var only = HASH.only ? HASH.only.split(',') : null;
  if (only) { document.body.classList.add('only'); }
  var panelStatus = {};
  var panelMs = {};
  function panel(id, title, render) {
    var body = h('div', { cls: 'body' });
    var heading = h('h2', null, [title]);
    var section = h('section', { cls: 'panel' + (only && only.indexOf(id) >= 0 ? ' shown' : ''), id: 'panel-' + id },
      [heading, body]);
    main.appendChild(section);
    var t0 = performance.now();
    try {
      render(body, heading);
      panelStatus[id] = body.querySelector('.absent') && body.children.length === 1 ? 'absent' : 'rendered';
    } catch (e) {
      panelStatus[id] = 'error';
      body.appendChild(h('p', { cls: 'panel-error', text: 'This panel failed: ' + e.message }));
      console.error('panel ' + id + ' failed: ' + (e.stack || e.message));
    }
    panelMs[id] = Math.round(performance.now() - t0);
  }
  function subtitle(heading, text) { heading.appendChild(h('small', { text: text })); }
  function cards(items) {
    return h('div', { cls: 'cards' }, items.filter(Boolean).map(function (c) {
      return h('div', { cls: 'card ' + (c.cls || ''), title: c.title || c.v }, [
        h('div', { cls: 'k', text: c.k }), h('div', { cls: 'v', text: c.v }), c.s ? h('div', { cls: 's', text: c.s }) : null]);
    }));
  }

  // A table with sortable columns. cols: {key, label, num, fmt(row), sort(row)}.
  function table(cols, rows, opts) {
    opts = opts || {};
    var limit = opts.limit || 300;
    var sortKey = opts.sortKey || null;
    var asc = false;
    var tbody = h('tbody');
    var headRow = h('tr');
    var ths = cols.map(function (c) {
      var th = h('th', { cls: (c.num ? 'num ' : '') + (c.sort ? 'sortable' : ''), text: c.label });
      if (c.sort) {
        th.addEventListener('click', function () {
          if (sortKey === c.key) { asc = !asc; } else { sortKey = c.key; asc = !!c.ascFirst; }
          draw();
        });
      }
      headRow.appendChild(th);
      return th;
    });
    var more = h('div', { cls: 'notes' });
    var filter = '';
    var result = h('div', null, [h('div', { cls: 'scroll' }, [h('table', { cls: 'grid' }, [h('thead', null, [headRow]), tbody])]), more]);
    function draw() {
      var shown = rows.filter(function (r) {
        return (!opts.accept || opts.accept(r)) && (!filter || (opts.filterText ? opts.filterText(r) : '').toLowerCase().indexOf(filter) >= 0);
      });
      var col = cols.filter(function (c) { return c.key === sortKey; })[0];
      if (col && col.sort) {
        shown.sort(function (a, b) {
          var x = col.sort(a), y = col.sort(b);
          var d = typeof x === 'string' ? x.localeCompare(y) : x - y;
          return asc ? d : -d;
        });
      }
      ths.forEach(function (th, i) {
        th.classList.toggle('sorted', cols[i].key === sortKey);
        th.classList.toggle('asc', cols[i].key === sortKey && asc);
      });
      tbody.textContent = '';
      shown.slice(0, limit).forEach(function (r) {
        var tr = h('tr', { cls: opts.onRow ? 'clickable' : '' }, cols.map(function (c) {
          var v = c.fmt ? c.fmt(r) : r[c.key];
          return h('td', { cls: c.num ? 'num' : (c.cls || '') }, [v instanceof Node ? v : String(has(v) ? v : '')]);
        }));
        if (opts.onRow) { tr.addEventListener('click', function () { opts.onRow(r); }); }
        if (opts.rowName && opts.rowName(r) === selected) { tr.classList.add('selected'); }
        tr.__row = r;
        tbody.appendChild(tr);
      });
      more.textContent = shown.length > limit ? 'showing ' + limit + ' of ' + shown.length + ' rows' :
        (shown.length === 0 ? 'no rows' : shown.length + ' rows');
    }
    result.setFilter = function (text) { filter = String(text || '').toLowerCase(); draw(); };
    result.markSelected = function () {
      if (!opts.rowName) { return; }
      Array.prototype.forEach.call(tbody.rows, function (tr) { tr.classList.toggle('selected', opts.rowName(tr.__row) === selected); });
    };
    result.redraw = draw;
    result.tbody = tbody;
    draw();
    return result;
  }
  function bar(share) {
    return h('span', null, [h('span', { cls: 'bar', style: 'width:' + Math.max(1, Math.round(60 * Math.min(1, num(share)))) + 'px' }), fmtPct(share)]);
  }
  function sevBadge(sev) { return sev ? h('span', { cls: 'sev ' + String(sev).toLowerCase(), text: sev }) : ''; }

  /* ---------- flame trees ---------- */

  function buildTree(flat) {
    if (!flat || !Array.isArray(flat.name)) { return null; }
    var names = arr(flat.names);
    var nodes = new Array(flat.name.length);
    for (var i = 0; i < flat.name.length; i++) {
      var parent = flat.parent[i] >= 0 ? nodes[flat.parent[i]] : null;
      var node = { name: String(names[flat.name[i]]), value: num(flat.value[i]), parent: parent, children: [], depth: parent ? parent.depth + 1 : 0 };
      nodes[i] = node;
      if (parent) { parent.children.push(node); }
    }
    return nodes.length ? { root: nodes[0], nodes: nodes, unit: flat.unit || 'ns', total: num(flat.total), pruned: num(flat.pruned_nodes) } : null;
  }
  // Callers view: each stack's self weight added along its reversed path.
  function invertTree(base) {
    var root = { name: base.name, value: 0, parent: null, children: [], depth: 0, index: {} };
    function walk(node) {
      var self = node.value;
      node.children.forEach(function (c) { self -= c.value; walk(c); });
      if (self <= 0 || node === base) { return; }
      root.value += self;
      var cur = root;
      for (var n = node; n && n !== base; n = n.parent) {
        var next = cur.index[n.name];
        if (!next) {
          next = { name: n.name, value: 0, parent: cur, children: [], depth: cur.depth + 1, index: {} };
          cur.index[n.name] = next;
          cur.children.push(next);
        }
        next.value += self;
        cur = next;
      }
    }
    walk(base);
    return root;
  }
  var TREES = { time: buildTree(FLAMES.time), memory: buildTree(FLAMES.memory) };

  /* ---------- panels ---------- */

  panel('overview', 'Overview', function (body) {
    if (!S) {
      absent(body, 'A session (session.json)');
    } else {
      var sys = S.system && S.system.metrics ? S.system.metrics : {};
      var health = has(S.health) ? (typeof S.health === 'number' ? S.health : num(S.health.score)) : null;
      var threads = arr(S.threads);
      body.appendChild(cards([
        { k: 'script', v: shortPath(script) || '-', title: script, s: S.python ? 'Python ' + (S.python.version || '?') + ', backend ' + (S.python.backend || '?') : '' },
        { k: 'duration', v: fmtNs(DURATION), s: S.start_unix_ns ? new Date(num(S.start_unix_ns) / 1e6).toISOString() : '' },
        { k: 'events', v: fmtCount(S.events_total), s: fmtCount(S.lost_events) + ' lost' },
        { k: 'threads', v: String(threads.length), s: threads.map(function (t) { return t.name; }).join(', ') },
        sys.cpu_percent ? { k: 'CPU', v: num(sys.cpu_percent.mean).toFixed(1) + '% mean', s: num(sys.cpu_percent.max).toFixed(1) + '% max' } : { k: 'CPU', v: 'not recorded' },
        S.memory ? { k: 'peak Python heap', v: fmtBytes(S.memory.peak_bytes), s: fmtCount(S.memory.allocations) + ' allocations' } : { k: 'peak Python heap', v: 'not recorded' },
        sys.rss_bytes ? { k: 'peak RSS', v: fmtBytes(sys.rss_bytes.max) } : null,
        S.gc ? { k: 'GC', v: fmtNs(S.gc.time_ns), s: fmtCount(S.gc.collections) + ' collections, ' + fmtPct(S.gc.share) } : null,
        health !== null ? { k: 'health score', v: health.toFixed(0) + ' / 100', cls: 'health' + (health < 50 ? ' low' : health < 80 ? ' mid' : '') } : { k: 'health score', v: 'not recorded' }
      ]));
    }
    function advice(title, list) {
      body.appendChild(h('h3', { text: title }));
      if (!list) { absent(body, title); return; }
      if (!list.length) { body.appendChild(h('p', { cls: 'absent', text: 'None.' })); return; }
      var ranked = list.slice().sort(function (a, b) { return num(b.time_share) - num(a.time_share); });
      body.appendChild(h('ul', { cls: 'advice' }, ranked.slice(0, 8).map(function (f) {
        var at = where(f.file, f.line);
        return h('li', null, [
          sevBadge(f.severity), ' ',
          at ? h('span', { cls: 'where', text: shortPath(f.file) + (f.line ? ':' + f.line : ''), title: at,
            onclick: function () { if (f.function) { select(String(f.function), 'advice'); } showSource(f.file, f.line); } }) : '',
          f.function ? h('span', { cls: 'mono', text: ' ' + f.function }) : '',
          f.kind ? h('span', { cls: 'notes', text: ' [' + f.kind + ']' }) : '',
          ' ', String(f.message || ''),
          f.suggestion ? h('span', { cls: 'sugg', text: ' Suggestion: ' + f.suggestion }) : '',
          has(f.time_share) ? h('span', { cls: 'notes', text: ' (' + fmtPct(f.time_share) + ' of the time' +
            (has(f.estimated_speedup) ? ', estimated speedup ' + num(f.estimated_speedup).toFixed(2) + 'x' : '') + ')' }) : ''
        ]);
      })));
      if (list.length > 8) { body.appendChild(h('div', { cls: 'notes', text: (list.length - 8) + ' more; see report.md or session.json' })); }
    }
    advice('Findings', FINDINGS);
    advice('Recommendations', RECOMMENDATIONS);
    var notes = arr(META.problems).map(String).concat(arr(META.truncated).map(function (t) {
      return t.what + ': ' + t.kept + ' of ' + t.total + ' kept in this page';
    }));
    if (FLAMES.time && FLAMES.time.pruned_nodes) { notes.push('time flame graph: ' + FLAMES.time.pruned_nodes + ' small nodes merged into [other]'); }
    if (FLAMES.memory && FLAMES.memory.pruned_nodes) { notes.push('memory flame graph: ' + FLAMES.memory.pruned_nodes + ' small nodes merged into [other]'); }
    if (notes.length) {
      body.appendChild(h('h3', { text: 'About this page' }));
      body.appendChild(h('ul', { cls: 'notes' }, notes.map(function (n) { return h('li', { text: n }); })));
    }
    body.appendChild(h('div', { cls: 'notes', text: (META.generator || 'pycroscope') + (META.output_dir ? ' - ' + META.output_dir : '') }));
  });

  var flameApi = null;
  panel('flame', 'Flame graph', function (body, heading) {
    if (!TREES.time && !TREES.memory) { absent(body, 'Stacks (stacks.folded, memory.folded)'); return; }
    var state = { data: TREES.time ? 'time' : 'memory', thread: '', icicle: false, inverted: false, search: '', zoom: null, base: null };
    var dataSel = h('select', null, [TREES.time ? h('option', { value: 'time', text: TREES.time.unit === 'samples' ? 'samples' : 'time' }) : null,
      TREES.memory ? h('option', { value: 'memory', text: 'allocated bytes' }) : null]);
    var threadSel = h('select');
    var orientSel = h('select', null, [h('option', { value: 'flame', text: 'flame (roots at the bottom)' }), h('option', { value: 'icicle', text: 'icicle (roots at the top)' })]);
    var invertBox = h('input', { type: 'checkbox' });
    var search = h('input', { type: 'search', placeholder: 'search functions (regex)' });
    var reset = h('button', { text: 'reset zoom' });
    var info = h('span', { cls: 'info' });
    body.appendChild(h('div', { cls: 'controls' }, [h('label', null, ['data ', dataSel]), h('label', null, ['thread ', threadSel]),
      orientSel, h('label', null, [invertBox, ' inverted (callers)']), search, reset, info]));
    var crumbs = h('div', { cls: 'crumbs' });
    var canvas = h('canvas');
    var wrap = h('div', { cls: 'flame-wrap' }, [canvas]);
    body.appendChild(crumbs);
    body.appendChild(wrap);
    var ROW = 18;
    var boxes = [];
    var inverted = {};

    function tree() { return TREES[state.data]; }
    function fillThreads() {
      threadSel.textContent = '';
      threadSel.appendChild(h('option', { value: '', text: 'all threads' }));
      tree().root.children.slice().sort(function (a, b) { return b.value - a.value; }).forEach(function (t) {
        threadSel.appendChild(h('option', { value: t.name, text: t.name + ' (' + fmtUnit(t.value, tree().unit) + ')' }));
      });
    }
    function baseNode() {
      var t = tree();
      var base = t.root;
      if (state.thread) {
        base = t.root.children.filter(function (c) { return c.name === state.thread; })[0] || t.root;
      }
      if (state.inverted) {
        var key = state.data + '\u0000' + state.thread;
        if (!inverted[key]) { inverted[key] = invertTree(base); }
        base = inverted[key];
      }
      return base;
    }
    function matcher() {
      if (!state.search) { return null; }
      try { var re = new RegExp(state.search, 'i'); return function (n) { return re.test(n); }; }
      catch (e) { var needle = state.search.toLowerCase(); return function (n) { return n.toLowerCase().indexOf(needle) >= 0; }; }
    }
    function draw() {
      var t = tree();
      var base = state.base;
      var zoom = state.zoom || base;
      var width = Math.max(300, wrap.clientWidth - 2);
      var maxDepth = 0;
      (function depth(n, d) {
        if (d > maxDepth) { maxDepth = d; }
        if (d < 400) { n.children.forEach(function (c) { depth(c, d + 1); }); }
      })(zoom, 0);
      var above = 0;
      for (var a = zoom; a !== base && a.parent; a = a.parent) { above++; }
      var rows = Math.min(maxDepth + above + 1, 400);
      var height = rows * ROW + 4;
      var ratio = window.devicePixelRatio || 1;
      canvas.width = width * ratio;
      canvas.height = height * ratio;
      canvas.style.width = width + 'px';
      canvas.style.height = height + 'px';
      var ctx = canvas.getContext('2d');
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, width, height);
      ctx.font = '11px ui-monospace, "DejaVu Sans Mono", monospace';
      ctx.textBaseline = 'middle';
      boxes = [];
      var match = matcher();
      var matched = 0;
      function rowY(level) { return state.icicle ? level * ROW : height - (level + 1) * ROW; }
      function box(node, x, w, level, dim) {
        var y = rowY(level);
        var isMatch = match && match(node.name);
        ctx.fillStyle = node.name === '[other]' ? '#cfd4dc' : isMatch ? '#d946ef' : dim ? '#e5e7eb' : hashColor(node.name);
        ctx.fillRect(x, y, Math.max(w - 1, 0.5), ROW - 1);
        if (selected && node.name === selected) {
          ctx.strokeStyle = '#1e40af';
          ctx.lineWidth = 2;
          ctx.strokeRect(x + 1, y + 1, Math.max(w - 3, 1), ROW - 3);
        }
        if (w > 30) {
          ctx.fillStyle = '#111827';
          var label = node.name;
          var fit = Math.floor((w - 6) / 6.6);
          if (label.length > fit) { label = label.slice(0, Math.max(fit - 1, 0)) + '~'; }
          ctx.fillText(label, x + 3, y + ROW / 2);
        }
        boxes.push({ x: x, y: y, w: w, h: ROW - 1, node: node });
      }
      // Ancestors of the zoomed node: full-width, dimmed.
      var chain = [];
      for (var n = zoom; n !== base && n.parent; n = n.parent) { chain.unshift(n.parent); }
      chain.forEach(function (node, i) { box(node, 0, width, i, true); });
      var scale = zoom.value > 0 ? width / zoom.value : 0;
      (function layout(node, x, level) {
        var w = node.value * scale;
        if (w < 0.4 || level >= 400) { return; }
        if (match && match(node.name)) { matched += node.value; }
        box(node, x, w, level, false);
        var cx = x;
        node.children.forEach(function (c) { layout(c, cx, level + 1); cx += c.value * scale; });
      })(zoom, 0, chain.length);
      info.textContent = 'total ' + fmtUnit(base.value, t.unit) + (zoom !== base ? ', zoomed: ' + fmtUnit(zoom.value, t.unit) : '') +
        (match ? ', search matches ' + fmtPct(base.value ? Math.min(1, matched / base.value) : 0) + ' (of the view)' : '');
      var path = [];
      for (var p = zoom; p; p = p.parent) { path.unshift(p.name); }
      crumbs.textContent = path.join(' > ');
      // Roots at the bottom: keep them in view when the graph is taller than its box.
      wrap.scrollTop = state.icicle ? 0 : wrap.scrollHeight;
    }
    function hit(e) {
      var rect = canvas.getBoundingClientRect();
      var x = e.clientX - rect.left, y = e.clientY - rect.top;
      for (var i = boxes.length - 1; i >= 0; i--) {
        var b = boxes[i];
        if (x >= b.x && x < b.x + b.w && y >= b.y && y < b.y + b.h) { return b; }
      }
      return null;
    }
    canvas.addEventListener('click', function (e) {
      var b = hit(e);
      if (!b) { return; }
      state.zoom = b.node;
      if (b.node.name !== '[other]' && b.node.parent) { select(b.node.name, 'flame'); } else { draw(); }
    });
    canvas.addEventListener('dblclick', function () { state.zoom = null; draw(); });
    canvas.addEventListener('mousemove', function (e) {
      var b = hit(e);
      if (!b) { hideTip(); return; }
      var t = tree();
      var total = state.base.value || 1;
      var self = b.node.value;
      b.node.children.forEach(function (c) { self -= c.value; });
      showTip(e, b.node.name + '\n' + fmtUnit(b.node.value, t.unit) + ' (' + fmtPct(b.node.value / total) + ' of the view), self ' + fmtUnit(self, t.unit) +
        (funcByName[b.node.name] ? '\n' + where(funcByName[b.node.name].file, funcByName[b.node.name].line) : ''));
    });
    canvas.addEventListener('mouseleave', hideTip);
    function rebuild() { state.base = baseNode(); state.zoom = null; draw(); }
    dataSel.addEventListener('change', function () { state.data = dataSel.value; state.thread = ''; fillThreads(); rebuild(); });
    threadSel.addEventListener('change', function () { state.thread = threadSel.value; rebuild(); });
    orientSel.addEventListener('change', function () { state.icicle = orientSel.value === 'icicle'; draw(); });
    invertBox.addEventListener('change', function () { state.inverted = invertBox.checked; rebuild(); });
    search.addEventListener('input', function () { state.search = search.value; draw(); });
    reset.addEventListener('click', function () { state.zoom = null; draw(); });
    onSelect(function (name, origin) { if (origin !== 'flame') { state.zoom = null; } draw(); });
    window.addEventListener('resize', draw);
    fillThreads();
    rebuild();
    subtitle(heading, 'click a box to zoom, double-click to reset; ' + (TREES.time ? TREES.time.unit === 'samples' ? 'sample counts' : 'wall time' : '') + (TREES.memory ? ' or allocated bytes' : ''));
    flameApi = {
      state: state, boxes: function () { return boxes; }, canvas: canvas, search: search, draw: draw,
      clickName: function (name) {
        var best = null;
        boxes.forEach(function (b) { if (b.node.name === name && (!best || b.w > best.w)) { best = b; } });
        if (!best) { return null; }
        var rect = canvas.getBoundingClientRect();
        canvas.dispatchEvent(new MouseEvent('click', { bubbles: true, clientX: rect.left + best.x + best.w / 2, clientY: rect.top + best.y + best.h / 2 }));
        return best;
      }
    };
  });

  // Callers and callees: the edges session.json holds, else derived from stacks.
  function edgesFromTree(name) {
    var t = TREES.time;
    if (!t) { return null; }
    var callers = {}, callees = {}, total = 0;
    t.nodes.forEach(function (n) {
      if (n.name !== name) { return; }
      var nested = false;
      for (var p = n.parent; p; p = p.parent) { if (p.name === name) { nested = true; break; } }
      if (!nested) { total += n.value; }
      if (n.parent && n.parent.parent) { callers[n.parent.name] = (callers[n.parent.name] || 0) + n.value; }
      n.children.forEach(function (c) { callees[c.name] = (callees[c.name] || 0) + c.value; });
    });
    function list(map) { return Object.keys(map).map(function (k) { return { name: k, time: map[k], calls: null }; }); }
    return { callers: list(callers), callees: list(callees), total: total, unit: t.unit, source: 'derived from stacks.folded' };
  }
  panel('callgraph', 'Call graph', function (body, heading) {
    var holder = h('div');
    body.appendChild(holder);
    function render(name) {
      holder.textContent = '';
      if (!name) {
        holder.appendChild(h('p', { cls: FUNCS.length || TREES.time ? 'notes' : 'absent', text: FUNCS.length || TREES.time ? 'Select a function (click a flame-graph box, a hotspot row or a source line) to see its callers and callees.' : 'Call graph not recorded in this run.' }));
        return;
      }
      var f = funcByName[name];
      var edges;
      if (f && (Array.isArray(f.callers) || Array.isArray(f.callees))) {
        var norm = function (e) { return { name: String(e.name), file: e.file, line: e.line, calls: has(e.calls) ? num(e.calls) : null, time: num(has(e.time_ns) ? e.time_ns : e.time) }; };
        edges = { callers: arr(f.callers).map(norm), callees: arr(f.callees).map(norm), total: f.incl, unit: 'ns', source: 'recorded call graph' };
      } else {
        edges = edgesFromTree(name);
      }
      holder.appendChild(h('p', null, [h('b', { cls: 'mono', text: name }), f ? h('span', { cls: 'notes', text: '  ' + where(f.file, f.line) + ', self ' + fmtUnit(f.self, FUNC_UNIT) + ', inclusive ' + fmtUnit(f.incl, FUNC_UNIT) + (f.calls ? ', ' + fmtCount(f.calls) + ' calls' : '') }) : '']));
      if (f && f.hot_path) {
        holder.appendChild(h('p', { cls: 'notes', text: 'hot path: ' + (Array.isArray(f.hot_path) ? f.hot_path.map(function (x) { return typeof x === 'object' ? x.name : x; }).join(' > ') : String(f.hot_path)) }));
      }
      if (!edges) { absent(holder, 'Call graph edges'); return; }
      function side(title, list, denom) {
        var sum = list.reduce(function (acc, e) { return acc + e.time; }, 0);
        var d = title === 'callers' ? sum : (denom || sum);
        return h('div', null, [h('h3', { text: title + ' (' + list.length + ')' }), list.length ? table([
          { key: 'name', label: 'function', cls: 'name', sort: function (r) { return r.name; }, ascFirst: true },
          { key: 'share', label: 'share', num: true, fmt: function (r) { return bar(d ? r.time / d : 0); }, sort: function (r) { return r.time; } },
          { key: 'time', label: edges.unit === 'bytes' ? 'bytes' : 'time', num: true, fmt: function (r) { return fmtUnit(r.time, edges.unit); }, sort: function (r) { return r.time; } },
          { key: 'calls', label: 'calls', num: true, fmt: function (r) { return has(r.calls) ? fmtCount(r.calls) : '-'; }, sort: function (r) { return num(r.calls); } }
        ], list, { sortKey: 'time', limit: 100, onRow: function (r) { select(r.name, 'callgraph'); } }) : h('p', { cls: 'absent', text: 'none' })]);
      }
      holder.appendChild(h('div', { cls: 'two' }, [side('callers', edges.callers, 0), side('callees', edges.callees, edges.total)]));
      holder.appendChild(h('div', { cls: 'notes', text: 'source: ' + edges.source + '; callers\' shares are of all calls into the function, callees\' of its inclusive total' }));
    }
    subtitle(heading, 'of the selected function');
    onSelect(function (name) { render(name); });
    render(null);
  });

  // Anything with a time: spans {start_ns, duration_ns|end_ns, thread} and
  // instants {time_ns}. session.json mostly holds totals; the timeline draws
  // what it finds, aggregated per pixel column.
  panel('timeline', 'Timeline', function (body, heading) {
    if (!S) { absent(body, 'A timeline'); return; }
    var threads = arr(S.threads);
    var rows = [];
    var rowByKey = {};
    function row(key, label) {
      if (!rowByKey[key]) { rowByKey[key] = { key: key, label: label, spans: [], marks: [], series: null }; rows.push(rowByKey[key]); }
      return rowByKey[key];
    }
    threads.forEach(function (t) { row('t' + t.index, (t.name || 'thread') + ' (' + fmtCount(t.events) + ' events' + (t.exited ? ', exited' : '') + ')'); });
    function threadRow(x) {
      if (has(x.thread) && rowByKey['t' + x.thread]) { return rowByKey['t' + x.thread]; }
      var byName = threads.filter(function (t) { return t.name === x.thread || t.os_tid === x.os_tid; })[0];
      return byName ? rowByKey['t' + byName.index] : row('other', 'unattributed');
    }
    var spanCount = 0;
    // Instants only where time_ns is a point in time (marks); in the I/O and
    // import rows time_ns is a total.
    function collect(list, kind, instants) {
      arr(list).forEach(function (x) {
        if (!x || typeof x !== 'object') { return; }
        if (has(x.start_ns)) {
          var end = has(x.end_ns) ? num(x.end_ns) : num(x.start_ns) + num(x.duration_ns);
          threadRow(x).spans.push({ a: num(x.start_ns), b: end, kind: kind, label: x.module || x.operation || x.name || kind });
          spanCount++;
        } else if (instants && has(x.time_ns)) {
          threadRow(x).marks.push({ t: num(x.time_ns), kind: kind, label: x.name || x.metric || kind });
          spanCount++;
        }
        if (Array.isArray(x.children)) { collect(x.children, kind, instants); }
      });
    }
    if (S.gc) { collect(S.gc.events, 'gc', false); }
    collect(S.imports, 'import', false);
    collect(S.io, 'io', false);
    collect(S.marks, 'mark', true);
    var alerts = S.system ? arr(S.system.alerts) : [];
    if (alerts.length || (S.system && S.system.series)) {
      var sysRow = row('system', 'system');
      alerts.forEach(function (al) { sysRow.marks.push({ t: num(al.time_ns), kind: 'alert', label: 'alert ' + al.metric + ' ' + (al.rule || '') + ' = ' + al.value }); spanCount++; });
    }
    var memSeries = S.memory ? (S.memory.timeline || S.memory.series || null) : null;
    if (Array.isArray(memSeries) && memSeries.length) {
      row('memory', 'live Python heap').series = memSeries.map(function (p) { return Array.isArray(p) ? [num(p[0]), num(p[1])] : [num(p.time_ns), num(has(p.live_bytes) ? p.live_bytes : p.bytes)]; });
      spanCount++;
    }
    if (S.memory && has(S.memory.peak_time_ns)) {
      var peakRow = threads.filter(function (t) { return t.name === S.memory.peak_thread; })[0];
      (peakRow ? rowByKey['t' + peakRow.index] : row('memory', 'memory')).marks.push({ t: num(S.memory.peak_time_ns), kind: 'peak', label: 'memory peak ' + fmtBytes(S.memory.peak_bytes) });
      spanCount++;
    }
    if (!rows.length) { absent(body, 'Threads'); return; }
    var labelW = 220, rowH = 26, width = Math.max(500, (main.clientWidth || 1000) - 60);
    var plotW = width - labelW - 10;
    var duration = DURATION || 1;
    var svg = s('svg', { 'class': 'chart', viewBox: '0 0 ' + width + ' ' + (rows.length * rowH + 24), width: width });
    var colors = { gc: '#ef4444', 'import': '#8b5cf6', io: '#0ea5e9', mark: '#111827', alert: '#b42318', peak: '#f59e0b' };
    rows.forEach(function (r, i) {
      var y = i * rowH + 4;
      svg.appendChild(s('text', { x: 4, y: y + 15 }, r.label.length > 34 ? r.label.slice(0, 33) + '~' : r.label));
      svg.appendChild(s('line', { 'class': 'axis', x1: labelW, x2: labelW + plotW, y1: y + rowH - 4, y2: y + rowH - 4 }));
      // Spans merged per pixel column, so a million spans draw as at most plotW rects.
      var cols = {};
      r.spans.forEach(function (sp) {
        var x0 = Math.floor(plotW * sp.a / duration), x1 = Math.max(x0, Math.floor(plotW * sp.b / duration));
        for (var x = x0; x <= x1 && x <= plotW; x++) { cols[x] = sp.kind; }
      });
      Object.keys(cols).forEach(function (x) {
        svg.appendChild(s('rect', { x: labelW + Number(x), y: y + 4, width: 1.2, height: rowH - 10, fill: colors[cols[x]] || '#64748b' }));
      });
      r.marks.slice(0, 2000).forEach(function (m) {
        var x = labelW + plotW * Math.min(1, m.t / duration);
        var mark = s('line', { x1: x, x2: x, y1: y + 2, y2: y + rowH - 4, stroke: colors[m.kind] || '#111827', 'stroke-width': 2 });
        mark.appendChild(s('title', {}, m.label + ' at ' + fmtNs(m.t)));
        svg.appendChild(mark);
      });
      if (r.series) {
        var max = Math.max.apply(null, r.series.map(function (p) { return p[1]; })) || 1;
        var pts = r.series.map(function (p) { return (labelW + plotW * Math.min(1, p[0] / duration)).toFixed(1) + ',' + (y + rowH - 5 - (rowH - 9) * p[1] / max).toFixed(1); });
        svg.appendChild(s('polyline', { 'class': 'line', points: pts.join(' ') }));
      }
    });
    var axisY = rows.length * rowH + 18;
    for (var k = 0; k <= 4; k++) {
      svg.appendChild(s('text', { x: labelW + plotW * k / 4 - (k === 4 ? 40 : 0), y: axisY }, fmtNs(duration * k / 4)));
    }
    body.appendChild(svg);
    if (!spanCount) {
      body.appendChild(h('p', { cls: 'absent', text: 'Per-event times not recorded in this run: session.json holds totals per thread, and the Chrome trace (trace.json) holds every event for ui.perfetto.dev.' }));
    }
    subtitle(heading, 'per thread; GC, imports, I/O, alerts and the memory peak where their times were recorded');
  });

  var hotTable = null;
  panel('hotspots', 'Hotspots', function (body, heading) {
    if (!FUNCS.length) { absent(body, 'Functions'); return; }
    var sampled = FUNC_UNIT === 'samples';
    var total = FUNC_TOTAL || 1;
    var filter = h('input', { type: 'search', placeholder: 'filter by name or file' });
    var kinds = {};
    FUNCS.forEach(function (f) { kinds[f.kind] = true; });
    var kindSel = h('select', null, [h('option', { value: '', text: 'all kinds' })].concat(Object.keys(kinds).map(function (k) { return h('option', { value: k, text: k }); })));
    body.appendChild(h('div', { cls: 'controls' }, [filter, kindSel]));
    var rowsAll = FUNCS.slice();
    var cols = [
      { key: 'name', label: 'function', cls: 'name', sort: function (r) { return r.name; }, ascFirst: true },
      { key: 'loc', label: 'location', cls: 'loc', fmt: function (r) { return where(shortPath(r.file), r.line); }, sort: function (r) { return r.file + ':' + r.line; }, ascFirst: true },
      { key: 'kind', label: 'kind', sort: function (r) { return r.kind; }, ascFirst: true },
      { key: 'calls', label: 'calls', num: true, fmt: function (r) { return sampled ? '-' : fmtCount(r.calls); }, sort: function (r) { return r.calls; } },
      { key: 'self', label: sampled ? 'self samples' : 'self', num: true, fmt: function (r) { return sampled ? fmtCount(r.self) : fmtNs(r.self); }, sort: function (r) { return r.self; } },
      { key: 'selfpct', label: 'self %', num: true, fmt: function (r) { return bar(r.self / total); }, sort: function (r) { return r.self; } },
      { key: 'incl', label: sampled ? 'total samples' : 'inclusive', num: true, fmt: function (r) { return sampled ? fmtCount(r.incl) : fmtNs(r.incl); }, sort: function (r) { return r.incl; } },
      { key: 'inclpct', label: 'incl %', num: true, fmt: function (r) { return fmtPct(r.incl / total); }, sort: function (r) { return r.incl; } },
      sampled ? null : { key: 'per', label: 'per call', num: true, fmt: function (r) { return r.calls ? fmtNs(r.incl / r.calls) : '-'; }, sort: function (r) { return r.calls ? r.incl / r.calls : 0; } },
      { key: 'sev', label: 'severity', fmt: function (r) { return sevBadge(r.severity); }, sort: function (r) { return ({ critical: 4, high: 3, medium: 2, low: 1 })[String(r.severity).toLowerCase()] || 0; } }
    ].filter(Boolean);
    var kind = '';
    var rows = rowsAll;
    var t = table(cols, rows, {
      sortKey: 'self', limit: 300, rowName: function (r) { return r.name; },
      filterText: function (r) { return r.name + ' ' + r.file; },
      accept: function (r) { return !kind || r.kind === kind; },
      onRow: function (r) { select(r.name, 'hotspots'); }
    });
    filter.addEventListener('input', function () { t.setFilter(filter.value); });
    kindSel.addEventListener('change', function () { kind = kindSel.value; t.redraw(); });
    body.appendChild(t);
    hotTable = t;
    onSelect(function () { t.markSelected(); });
    subtitle(heading, FUNCS.length + ' functions; click a column to sort, a row to select' + (sampled ? ' (sampled)' : ''));
  });

  // Per-line facts by file: time, hits, samples, allocations, findings.
  var sourceApi = null;
  function showSource(file, line) { if (sourceApi) { sourceApi.show(file, line); } }
  panel('source', 'Source heatmap', function (body, heading) {
    if (!SOURCES.length) { absent(body, 'Source of the profiled files'); return; }
    var perFile = {};
    function facts(file) { if (!perFile[file]) { perFile[file] = {}; } return perFile[file]; }
    function add(file, line, key, value) {
      if (!file || !(line > 0)) { return; }
      var f = facts(file);
      var l = f[line] || (f[line] = {});
      l[key] = (l[key] || 0) + value;
    }
    if (S) {
      arr(S.lines).forEach(function (l) { add(l.file, l.line, 'time', num(l.time_ns)); add(l.file, l.line, 'hits', num(l.hits)); });
      if (S.hotspots && !Array.isArray(S.hotspots)) { arr(S.hotspots.lines).forEach(function (l) { add(l.file, l.line, 'samples', num(l.samples)); }); }
      if (S.memory) { arr(S.memory.sites).forEach(function (m) { add(m.file, m.line, 'alloc', num(m.bytes)); add(m.file, m.line, 'allocs', num(m.count)); }); }
    }
    var defs = {};
    FUNCS.forEach(function (f) { if (f.file && f.line > 0) { (defs[f.file + ':' + f.line] = defs[f.file + ':' + f.line] || []).push(f); } });
    var notes = {};
    (FINDINGS || []).concat(RECOMMENDATIONS || []).forEach(function (f) {
      if (f && f.file && f.line > 0) { (notes[f.file + ':' + f.line] = notes[f.file + ':' + f.line] || []).push(f); }
    });
    var metrics = [['time', 'line time'], ['hits', 'line hits'], ['samples', 'samples'], ['alloc', 'allocated bytes'], ['self', 'function self time']];
    var fileSel = h('select', null, SOURCES.map(function (src, i) { return h('option', { value: i, text: shortPath(src.path) + (src.truncated ? ' (truncated)' : '') }); }));
    var metricSel = h('select', null, metrics.map(function (m) { return h('option', { value: m[0], text: m[1] }); }));
    var info = h('span', { cls: 'info' });
    body.appendChild(h('div', { cls: 'controls' }, [h('label', null, ['file ', fileSel]), h('label', null, ['colour by ', metricSel]), info]));
    var holder = h('div', { cls: 'scroll', style: 'max-height:560px' });
    body.appendChild(holder);
    var current = 0;
    function value(file, line, metric) {
      if (metric === 'self') { return (defs[file + ':' + line] || []).reduce(function (a, f) { return a + f.self; }, 0); }
      var l = (perFile[file] || {})[line];
      return l ? num(l[metric]) : 0;
    }
    function fmtMetric(v, metric) {
      if (!v) { return ''; }
      if (metric === 'time' || (metric === 'self' && FUNC_UNIT === 'ns')) { return fmtNs(v); }
      if (metric === 'alloc') { return fmtBytes(v); }
      return fmtCount(v);
    }
    function pickMetric(file) {
      var best = null;
      ['time', 'samples', 'alloc', 'hits', 'self'].forEach(function (m) {
        if (best) { return; }
        var lines = SOURCES[current].text.split('\n').length;
        for (var i = 1; i <= lines; i++) { if (value(file, i, m) > 0) { best = m; return; } }
      });
      return best || 'time';
    }
    var rendered = { file: -1, metric: '', rows: [] };
    function mark(line) {
      var target = null;
      rendered.rows.forEach(function (tr, i) {
        var on = i + 1 === line;
        if (on !== tr.classList.contains('selected')) { tr.classList.toggle('selected', on); }
        if (on) { target = tr; }
      });
      // Rows have a fixed height (no wrapping), so no layout is needed to find one.
      if (target) { holder.scrollTop = Math.max(0, (line - 1) * 16 - 80); }
    }
    function render(line) {
      if (rendered.file === current && rendered.metric === metricSel.value) { mark(line); return; }
      var src = SOURCES[current];
      var file = src.path;
      var metric = metricSel.value;
      var lines = String(src.text).split('\n');
      if (lines.length && lines[lines.length - 1] === '') { lines.pop(); }
      var max = 0;
      for (var i = 1; i <= lines.length; i++) { max = Math.max(max, value(file, i, metric)); }
      var tbody = h('tbody');
      var rows = [];
      lines.forEach(function (text, index) {
        var n = index + 1;
        var v = value(file, n, metric);
        var l = (perFile[file] || {})[n];
        var d = defs[file + ':' + n];
        var code = h('td', { cls: 'code' }, [text]);
        if (d) { d.forEach(function (f) { code.appendChild(h('span', { cls: 'def', text: f.name + ': self ' + fmtUnit(f.self, FUNC_UNIT) + (f.calls ? ', ' + fmtCount(f.calls) + ' calls' : '') })); }); }
        (notes[file + ':' + n] || []).forEach(function (f) { code.appendChild(h('span', { cls: 'badge', text: (f.severity ? f.severity + ': ' : '') + (f.kind ? f.kind + ' - ' : '') + (f.message || ''), title: f.suggestion || '' })); });
        var extra = l ? [l.hits ? fmtCount(l.hits) + ' hits' : '', l.alloc ? fmtBytes(l.alloc) + ' in ' + fmtCount(l.allocs) + ' allocations' : '', l.samples ? fmtCount(l.samples) + ' samples' : ''].filter(Boolean).join(', ') : '';
        var tr = h('tr', { cls: v > 0 || l ? 'hit' : '', title: extra }, [h('td', { cls: 'ln', text: n }), h('td', { cls: 'm', text: fmtMetric(v, metric) }), code]);
        if (v > 0 && max > 0) { tr.style.background = 'rgba(234, 88, 12, ' + (0.08 + 0.6 * Math.sqrt(v / max)).toFixed(3) + ')'; }
        if (d) { tr.style.cursor = 'pointer'; tr.addEventListener('click', function () { select(d[0].name, 'source'); }); }
        tbody.appendChild(tr);
        rows.push(tr);
      });
      holder.textContent = '';
      holder.appendChild(h('table', { cls: 'src' }, [tbody]));
      info.textContent = lines.length + ' lines' + (src.truncated ? ' (file truncated in this page)' : '') + ' - ' + src.path;
      rendered = { file: current, metric: metricSel.value, rows: rows };
      mark(line);
    }
    fileSel.addEventListener('change', function () { current = Number(fileSel.value); metricSel.value = pickMetric(SOURCES[current].path); render(0); });
    metricSel.addEventListener('change', function () { render(0); });
    metricSel.value = pickMetric(SOURCES[0].path);
    render(0);
    sourceApi = {
      holder: holder,
      show: function (file, line) {
        for (var i = 0; i < SOURCES.length; i++) {
          if (SOURCES[i].path === file) {
            if (current !== i) { current = i; fileSel.value = String(i); }
            render(line);
            return true;
          }
        }
        return false;
      }
    };
    onSelect(function (name, origin) { var f = funcByName[name]; if (f && origin !== 'source') { sourceApi.show(f.file, f.line); } });
    subtitle(heading, SOURCES.length + ' file(s), read when the report was written');
  });

  function lineChart(points, opts) {
    var w = 900, hgt = 200, pad = 46;
    var svg = s('svg', { 'class': 'chart', viewBox: '0 0 ' + w + ' ' + hgt });
    var xs = points.map(function (p) { return p[0]; }), ys = points.map(function (p) { return p[1]; });
    var x0 = opts.x0 !== undefined ? opts.x0 : Math.min.apply(null, xs), x1 = Math.max.apply(null, xs.concat([opts.x1 || 0]));
    var y1 = Math.max.apply(null, ys) || 1;
    function X(x) { return pad + (w - pad - 10) * (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5); }
    function Y(y) { return hgt - 22 - (hgt - 32) * y / y1; }
    svg.appendChild(s('line', { 'class': 'axis', x1: pad, x2: w - 10, y1: hgt - 22, y2: hgt - 22 }));
    svg.appendChild(s('text', { x: 2, y: 14 }, opts.fy(y1)));
    svg.appendChild(s('text', { x: pad, y: hgt - 6 }, opts.fx(x0)));
    svg.appendChild(s('text', { x: w - 80, y: hgt - 6 }, opts.fx(x1)));
    svg.appendChild(s('polyline', { 'class': 'line', points: points.map(function (p) { return X(p[0]).toFixed(1) + ',' + Y(p[1]).toFixed(1); }).join(' ') }));
    var step = Math.max(1, Math.ceil(points.length / 400));
    points.forEach(function (p, i) {
      if (i % step) { return; }
      var c = s('circle', { 'class': 'pt', cx: X(p[0]).toFixed(1), cy: Y(p[1]).toFixed(1), r: 2.2 });
      c.appendChild(s('title', {}, opts.fx(p[0]) + ': ' + opts.fy(p[1])));
      svg.appendChild(c);
    });
    (opts.marks || []).forEach(function (m) {
      var l = s('line', { 'class': 'alert', x1: X(m.x), x2: X(m.x), y1: 8, y2: hgt - 22 });
      l.appendChild(s('title', {}, m.label));
      svg.appendChild(l);
    });
    return svg;
  }
  function barChart(labels, values, fy) {
    var w = 900, hgt = 180, pad = 46;
    var svg = s('svg', { 'class': 'chart', viewBox: '0 0 ' + w + ' ' + hgt });
    var max = Math.max.apply(null, values) || 1;
    var bw = (w - pad - 10) / Math.max(values.length, 1);
    svg.appendChild(s('text', { x: 2, y: 14 }, fy(max)));
    values.forEach(function (v, i) {
      var bh = (hgt - 40) * v / max;
      var r = s('rect', { 'class': 'pt', x: (pad + i * bw + 1).toFixed(1), y: (hgt - 22 - bh).toFixed(1), width: Math.max(bw - 2, 1).toFixed(1), height: bh.toFixed(1) });
      r.appendChild(s('title', {}, labels[i] + ': ' + fy(v)));
      svg.appendChild(r);
      if (i % Math.ceil(values.length / 12) === 0) { svg.appendChild(s('text', { x: (pad + i * bw).toFixed(1), y: hgt - 6 }, labels[i])); }
    });
    return svg;
  }

  var memoryTables = [];
  panel('memory', 'Memory', function (body, heading) {
    var m = S && S.memory;
    if (!m) { absent(body, 'Memory (allocation tracking)'); return; }
    body.appendChild(cards([
      { k: 'mode', v: String(m.mode || (m.sampling && m.sampling.mode) || '-') },
      { k: 'peak', v: fmtBytes(m.peak_bytes), s: has(m.peak_time_ns) ? 'at ' + fmtNs(m.peak_time_ns) + (m.peak_thread ? ' on ' + m.peak_thread : '') : '' },
      { k: 'live at stop', v: fmtBytes(m.live_bytes_at_stop), s: fmtCount(m.live_count_at_stop) + ' blocks' },
      { k: 'allocations', v: fmtCount(m.allocations), s: fmtCount(m.frees) + ' frees' }
    ]));
    var series = m.timeline || m.series;
    body.appendChild(h('h3', { text: 'Live bytes over time' }));
    if (Array.isArray(series) && series.length) {
      var pts = series.map(function (p) { return Array.isArray(p) ? [num(p[0]), num(p[1])] : [num(p.time_ns), num(has(p.live_bytes) ? p.live_bytes : p.bytes)]; });
      body.appendChild(lineChart(pts, { x0: 0, x1: DURATION, fx: fmtNs, fy: fmtBytes, marks: has(m.peak_time_ns) ? [{ x: num(m.peak_time_ns), label: 'peak ' + fmtBytes(m.peak_bytes) }] : [] }));
    } else {
      absent(body, 'A live-bytes series (' + fmtCount(m.snapshots) + ' snapshots were taken; session.json keeps their per-site growth below)');
    }
    // Lifetimes: every site's log2(ns) histogram summed.
    var bins = [];
    arr(m.sites).forEach(function (site) { arr(site.lifetime_log2_ns).forEach(function (c, i) { bins[i] = (bins[i] || 0) + num(c); }); });
    body.appendChild(h('h3', { text: 'Allocation lifetimes (freed blocks, log2 buckets)' }));
    if (bins.length && bins.some(function (b) { return b > 0; })) {
      var labels = bins.map(function (_, i) { return fmtNs(Math.pow(2, i)); });
      body.appendChild(barChart(labels, bins.map(num), fmtCount));
    } else {
      absent(body, 'Lifetimes');
    }
    var peak = arr(m.peak_stack);
    if (peak.length) {
      body.appendChild(h('h3', { text: 'Stack at the peak' }));
      body.appendChild(h('div', { cls: 'crumbs mono', text: peak.map(function (f) { return f.name || f.function; }).join(' > ') }));
    }
    function siteTable(title, list, extra) {
      body.appendChild(h('h3', { text: title }));
      if (!Array.isArray(list)) { absent(body, title); return; }
      if (!list.length) { body.appendChild(h('p', { cls: 'absent', text: 'None.' })); return; }
      var cols = [
        { key: 'function', label: 'function', cls: 'name', fmt: function (r) { return r.function || ''; }, sort: function (r) { return String(r.function || ''); }, ascFirst: true },
        { key: 'loc', label: 'location', cls: 'loc', fmt: function (r) { return where(shortPath(r.file), r.line); } }
      ].concat(extra);
      var t = table(cols, list, { sortKey: extra[0].key, limit: 100, rowName: function (r) { return r.function; }, onRow: function (r) { if (r.function) { select(String(r.function), 'memory'); } showSource(r.file, r.line); } });
      memoryTables.push(t);
      body.appendChild(t);
    }
    siteTable('Top allocation sites', m.sites, [
      { key: 'bytes', label: 'allocated', num: true, fmt: function (r) { return fmtBytes(r.bytes); }, sort: function (r) { return num(r.bytes); } },
      { key: 'count', label: 'count', num: true, fmt: function (r) { return fmtCount(r.count); }, sort: function (r) { return num(r.count); } },
      { key: 'live', label: 'live at stop', num: true, fmt: function (r) { return fmtBytes(r.live_bytes); }, sort: function (r) { return num(r.live_bytes); } }
    ]);
    siteTable('Leaks (still growing at stop)', m.leaks, [
      { key: 'growth', label: 'growth', num: true, fmt: function (r) { return fmtBytes(has(r.growth_bytes) ? r.growth_bytes : r.bytes); }, sort: function (r) { return num(has(r.growth_bytes) ? r.growth_bytes : r.bytes); } },
      { key: 'slope', label: 'slope', num: true, fmt: function (r) { return has(r.slope_bytes_per_s) ? fmtBytes(r.slope_bytes_per_s) + '/s' : ''; }, sort: function (r) { return num(r.slope_bytes_per_s); } }
    ]);
    siteTable('Growth over the run', m.growth, [
      { key: 'growth', label: 'growth', num: true, fmt: function (r) { return fmtBytes(r.growth_bytes); }, sort: function (r) { return num(r.growth_bytes); } },
      { key: 'slope', label: 'slope', num: true, fmt: function (r) { return fmtBytes(r.slope_bytes_per_s) + '/s'; }, sort: function (r) { return num(r.slope_bytes_per_s); } },
      { key: 'r2', label: 'r2', num: true, fmt: function (r) { return num(r.r2).toFixed(2); }, sort: function (r) { return num(r.r2); } },
      { key: 'state', label: 'state', fmt: function (r) { return r.still_growing ? 'still growing' : r.steady ? 'steady' : ''; } }
    ]);
    onSelect(function () { memoryTables.forEach(function (t) { t.markSelected(); }); });
    subtitle(heading, 'Python allocator: peak, sites, leaks, lifetimes');
  });

  panel('imports', 'Imports', function (body, heading) {
    if (!S || !Array.isArray(S.imports)) { absent(body, 'Imports'); return; }
    if (!S.imports.length) { body.appendChild(h('p', { cls: 'absent', text: 'No imports were timed.' })); return; }
    var count = 0;
    function node(imp) {
      count++;
      var label = [h('span', { cls: 'mono', text: imp.module }), h('span', { cls: 't', text: fmtNs(imp.cumulative_ns) + ' cumulative, ' + fmtNs(imp.self_ns) + ' self' + (imp.failed ? ', FAILED' : '') })];
      var kids = arr(imp.children).slice().sort(function (a, b) { return num(b.cumulative_ns) - num(a.cumulative_ns); });
      if (!kids.length) { return h('div', { cls: 'leaf' }, label); }
      return h('details', { cls: 'imp' }, [h('summary', null, label)].concat(kids.map(node)));
    }
    var roots = S.imports.slice().sort(function (a, b) { return num(b.cumulative_ns) - num(a.cumulative_ns); });
    var total = roots.reduce(function (a, r) { return a + num(r.cumulative_ns); }, 0);
    roots.forEach(function (r) { body.appendChild(node(r)); });
    subtitle(heading, count + ' modules, ' + fmtNs(total) + ' at the top level');
  });

  function simpleTable(body, list, what, cols, sortKey) {
    if (!S || !Array.isArray(list)) { absent(body, what); return; }
    if (!list.length) { body.appendChild(h('p', { cls: 'absent', text: 'None recorded.' })); return; }
    body.appendChild(table(cols, list, { sortKey: sortKey, limit: 300, rowName: function (r) { return r.function; },
      onRow: function (r) { if (r.function) { select(String(r.function), 'table'); } showSource(r.file, r.line); } }));
  }
  var fnCol = { key: 'function', label: 'function', cls: 'name', fmt: function (r) { return r.function || ''; }, sort: function (r) { return String(r.function || ''); }, ascFirst: true };
  var locCol = { key: 'loc', label: 'location', cls: 'loc', fmt: function (r) { return where(shortPath(r.file), r.line); } };

  panel('io', 'I/O', function (body) {
    simpleTable(body, S && S.io, 'I/O', [
      { key: 'op', label: 'operation', cls: 'name', fmt: function (r) { return r.operation || ''; }, sort: function (r) { return String(r.operation || ''); }, ascFirst: true },
      fnCol, locCol,
      { key: 'count', label: 'count', num: true, fmt: function (r) { return fmtCount(r.count); }, sort: function (r) { return num(r.count); } },
      { key: 'time', label: 'time', num: true, fmt: function (r) { return fmtNs(r.time_ns); }, sort: function (r) { return num(r.time_ns); } },
      { key: 'bytes', label: 'bytes', num: true, fmt: function (r) { return fmtBytes(r.bytes); }, sort: function (r) { return num(r.bytes); } }
    ], 'time');
  });

  panel('exceptions', 'Exceptions', function (body) {
    simpleTable(body, S && S.exceptions, 'Exceptions', [
      { key: 'type', label: 'type', cls: 'name', fmt: function (r) { return r.type || ''; }, sort: function (r) { return String(r.type || ''); }, ascFirst: true },
      fnCol, locCol,
      { key: 'raised', label: 'raised', num: true, fmt: function (r) { return fmtCount(r.raised); }, sort: function (r) { return num(r.raised); } },
      { key: 'caught', label: 'caught', num: true, fmt: function (r) { return fmtCount(r.caught); }, sort: function (r) { return num(r.caught); } },
      { key: 'uncaught', label: 'uncaught', num: true, fmt: function (r) { return fmtCount(r.uncaught); }, sort: function (r) { return num(r.uncaught); } },
      { key: 'handler', label: 'mean raise to handler', num: true, fmt: function (r) { return has(r.mean_raise_to_handler_ns) ? fmtNs(r.mean_raise_to_handler_ns) : '-'; }, sort: function (r) { return num(r.mean_raise_to_handler_ns); } }
    ], 'raised');
  });

  panel('gc', 'GC', function (body) {
    var gc = S && S.gc;
    if (!gc) { absent(body, 'Garbage collection'); return; }
    body.appendChild(cards([
      { k: 'collections', v: fmtCount(gc.collections) }, { k: 'time', v: fmtNs(gc.time_ns), s: fmtPct(gc.share) + ' of the run' },
      { k: 'collected', v: fmtCount(gc.collected), s: fmtCount(gc.uncollectable) + ' uncollectable' }
    ]));
    if (Array.isArray(gc.generations)) {
      body.appendChild(table([
        { key: 'generation', label: 'generation', num: true },
        { key: 'collections', label: 'collections', num: true, fmt: function (r) { return fmtCount(r.collections); } },
        { key: 'time', label: 'time', num: true, fmt: function (r) { return fmtNs(r.time_ns); } },
        { key: 'max', label: 'longest', num: true, fmt: function (r) { return fmtNs(r.max_ns); } },
        { key: 'collected', label: 'collected', num: true, fmt: function (r) { return fmtCount(r.collected); } }
      ], gc.generations, { limit: 10 }));
    }
  });

  panel('system', 'System', function (body, heading) {
    var sys = S && S.system;
    if (!sys || sys.supported === false) { absent(body, 'System counters'); return; }
    var metrics = sys.metrics || {};
    var names = Object.keys(metrics);
    function fmtMetric(name, v) { return /bytes/.test(name) ? fmtBytes(v) : /percent/.test(name) ? num(v).toFixed(1) + '%' : fmtCount(v); }
    if (names.length) {
      body.appendChild(table([
        { key: 'name', label: 'metric', cls: 'name', fmt: function (r) { return r.name; } },
        { key: 'min', label: 'min', num: true, fmt: function (r) { return fmtMetric(r.name, r.m.min); } },
        { key: 'mean', label: 'mean', num: true, fmt: function (r) { return fmtMetric(r.name, r.m.mean); } },
        { key: 'max', label: 'max', num: true, fmt: function (r) { return fmtMetric(r.name, r.m.max); } },
        { key: 'range', label: 'mean / max', num: true, fmt: function (r) { return bar(num(r.m.max) ? num(r.m.mean) / num(r.m.max) : 0); } },
        { key: 'samples', label: 'samples', num: true, fmt: function (r) { return fmtCount(r.m.samples); } }
      ], names.map(function (n) { return { name: n, m: metrics[n] }; }), { limit: 50 }));
    }
    var series = sys.series && typeof sys.series === 'object' ? sys.series : null;
    var alerts = arr(sys.alerts);
    if (series) {
      Object.keys(series).forEach(function (name) {
        var pts = arr(series[name]).map(function (p) { return Array.isArray(p) ? [num(p[0]), num(p[1])] : [num(p.time_ns), num(p.value)]; });
        if (!pts.length) { return; }
        body.appendChild(h('h3', { text: name }));
        body.appendChild(lineChart(pts, { x0: 0, x1: DURATION, fx: fmtNs, fy: function (v) { return fmtMetric(name, v); },
          marks: alerts.filter(function (a) { return name.indexOf(String(a.metric)) === 0; }).map(function (a) { return { x: num(a.time_ns), label: 'alert: ' + a.rule }; }) }));
      });
    } else {
      body.appendChild(h('p', { cls: 'absent', text: 'Counter series over time not recorded in this run (session.json keeps min / mean / max; trace.json has every sample).' }));
    }
    body.appendChild(h('h3', { text: 'Alerts' }));
    if (alerts.length) {
      body.appendChild(table([
        { key: 'metric', label: 'metric', cls: 'name' }, { key: 'rule', label: 'rule' },
        { key: 'value', label: 'value', num: true, fmt: function (r) { return fmtMetric(String(r.metric), r.value); } },
        { key: 'time', label: 'at', num: true, fmt: function (r) { return fmtNs(r.time_ns); } }
      ], alerts, { limit: 100 }));
    } else {
      body.appendChild(h('p', { cls: 'absent', text: 'No alert fired.' }));
    }
    if (arr(sys.unavailable).length) { body.appendChild(h('p', { cls: 'notes', text: 'unavailable: ' + arr(sys.unavailable).join(', ') })); }
    subtitle(heading, 'sampled every ' + num(sys.interval_ms) + ' ms, ' + fmtCount(sys.samples) + ' samples');
  });

  panel('complexity', 'Complexity', function (body) {
    var c = S && (S.complexity || (S.health && S.health.complexity));
    // `--complexity FUNC` writes one fit: {function, best, r2, error, points: [[n, seconds]], models}.
    var fits = c ? (Array.isArray(c) ? c : (has(c.function) ? [c] : arr(c.fits || c.functions))) : null;
    if (!fits) { absent(body, 'Complexity fits'); return; }
    if (!fits.length) { body.appendChild(h('p', { cls: 'absent', text: 'No function had enough sizes to fit.' })); return; }
    fits.slice(0, 12).forEach(function (fit) {
      var name = fit.function || fit.name || '';
      var model = fit.best || fit.model || fit.complexity || fit.fit || fit.big_o || fit.error || '';
      var toNs = Array.isArray(fit.models) ? 1e9 : 1; // that fit's points are in seconds
      body.appendChild(h('h3', null, [h('span', { cls: 'mono', text: name }), ' ', h('span', { cls: 'notes', text: String(model) + (has(fit.r2) ? ' (r2 ' + num(fit.r2).toFixed(2) + ')' : '') + ' ' + where(fit.file, fit.line) })]));
      var pts = arr(fit.points || fit.samples).map(function (p) { return Array.isArray(p) ? [num(p[0]), num(p[1]) * toNs] : [num(has(p.n) ? p.n : p.size), num(has(p.time_ns) ? p.time_ns : p.time)]; });
      if (pts.length) { body.appendChild(lineChart(pts, { fx: function (v) { return 'n=' + fmtCount(v); }, fy: fmtNs })); }
    });
  });

  /* ---------- initial selection and self test ---------- */

  var hottest = FUNCS.filter(function (f) { return f.name !== '<module>'; }).sort(function (a, b) { return b.self - a.self; })[0];
  var selectStart = performance.now();
  if (HASH.select) { select(HASH.select, 'hash'); } else if (hottest) { select(hottest.name, 'initial'); }
  panelMs.select = Math.round(performance.now() - selectStart);
  var renderMs = Math.round(performance.now() - startedAt);

  if (has(HASH.selftest)) {
    var result = { listener_ms: listenerMs, parse_ms: Math.round(parseMs), render_ms: renderMs, panel_ms: panelMs, panels: panelStatus, errors: consoleErrors };
    try {
      var hot = HASH.hot || (hottest && hottest.name) || '';
      result.hot = hot;
      if (flameApi) {
        flameApi.state.zoom = null;
        flameApi.draw();
        result.flame_boxes = flameApi.boxes().length;
        result.flame_hot_boxes = flameApi.boxes().filter(function (b) { return b.node.name === hot; }).length;
        var clicked = flameApi.clickName(hot);
        result.flame_clicked = !!clicked;
        var zoomBox = flameApi.boxes().filter(function (b) { return b.node === flameApi.state.zoom; })[0];
        result.flame_zoom = flameApi.state.zoom ? flameApi.state.zoom.name : null;
        result.flame_zoom_full_width = !!zoomBox && Math.abs(zoomBox.w - parseFloat(flameApi.canvas.style.width)) < 1;
        flameApi.search.value = hot.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        flameApi.search.dispatchEvent(new Event('input'));
        result.flame_search = document.querySelector('#panel-flame .info').textContent;
        flameApi.search.value = '';
        flameApi.search.dispatchEvent(new Event('input'));
      }
      result.selected = selected;
      result.hotspot_rows = document.querySelectorAll('#panel-hotspots tbody tr').length;
      result.hotspot_selected_rows = document.querySelectorAll('#panel-hotspots tbody tr.selected').length;
      result.callgraph_rows = document.querySelectorAll('#panel-callgraph tbody tr').length;
      result.heatmap_lines = document.querySelectorAll('#panel-source table.src tr').length;
      result.heatmap_hot_lines = document.querySelectorAll('#panel-source table.src tr.hit').length;
      result.memory_points = document.querySelectorAll('#panel-memory svg .pt').length;
      result.memory_rows = document.querySelectorAll('#panel-memory tbody tr').length;
      result.timeline_marks = document.querySelectorAll('#panel-timeline svg line, #panel-timeline svg rect').length;
      result.findings = document.querySelectorAll('#panel-overview ul.advice li').length;
      result.source_badges = document.querySelectorAll('#panel-source .badge').length;
      result.injected = document.querySelectorAll('img, iframe, object, embed, [onerror], [onload], [onclick]').length;
      result.scripts = document.scripts.length;
    } catch (e) {
      consoleErrors.push('selftest: ' + (e.stack || e.message));
    }
    result.errors = consoleErrors;
    var pre = h('pre', { id: 'pycroscope-selftest' });
    pre.textContent = JSON.stringify(result);
    document.body.appendChild(pre);
  }
})();
