// The dashboard page: pickers, a stat table refreshed every few seconds, charts of each
// resource's recent numbers kept in this page's memory, and the edges of the chosen kind.

import { rowKey, tableRow } from './table.js';
import { sparkline } from './chart.js';
import { closeTap, openTap } from './tap.js';
import { getJSON } from './api.js';
import { showEdges } from './edges.js';

// How often the table is read again after an answer.
const REFRESH_MS = 3000;
// How many readings each chart keeps.
const HISTORY = 60;

const state = {
  namespace: '',
  kind: 'deployment',
  window: '',
  // Bumped on every change of picker, so that a late answer for the old choice is dropped.
  generation: 0,
  // rowKey -> [{ success, rps, p95 }], oldest first.
  history: new Map(),
};

const $ = (id) => document.getElementById(id);

function status(text, error = false) {
  $('status').textContent = text;
  $('status').className = error ? 'error' : '';
}

function fillSelect(select, values, chosen) {
  select.replaceChildren(
    ...values.map((value) => {
      const option = document.createElement('option');
      option.value = value;
      option.textContent = value;
      option.selected = value === chosen;
      return option;
    }),
  );
}

function charts(key) {
  const points = state.history.get(key) ?? [];
  return [
    sparkline(points.map((p) => p.success), {
      min: 0, max: 1, name: 'success', label: (v) => `${(v * 100).toFixed(2)}%`,
    }),
    sparkline(points.map((p) => p.rps), {
      name: 'rps', label: (v) => `${v.toFixed(1)} rps`,
    }),
    sparkline(points.map((p) => p.p95), {
      name: 'p95', label: (v) => `${v} ms`,
    }),
  ];
}

function render(body) {
  const seen = new Set();
  const rows = body.rows.map((row) => {
    const key = rowKey(row);
    seen.add(key);
    const points = state.history.get(key) ?? [];
    points.push({ success: row.success, rps: row.rps, p95: row.latency_ms_p95 });
    if (points.length > HISTORY) points.shift();
    state.history.set(key, points);
    return tableRow(row, charts(key), tap);
  });
  for (const key of state.history.keys()) {
    if (!seen.has(key)) state.history.delete(key);
  }
  document.querySelector('#workloads tbody').replaceChildren(...rows);
  const empty = $('empty');
  empty.hidden = rows.length > 0;
  empty.textContent = `No meshed ${state.kind}s in namespace ${state.namespace}.`;
  const unread = $('unread');
  unread.hidden = body.unread.length === 0;
  const one = body.unread.length === 1;
  unread.textContent = body.unread.length === 0 ? '' : [
    `could not read ${body.unread.length} ${one ? 'pod; its traffic is' : 'pods; their traffic is'} not counted:`,
    ...body.unread.map((u) => `  ${u.pod}: ${u.error}`),
  ].join('\n');
  const at = new Date().toLocaleTimeString();
  status(`updated ${at}, over the last ${body.seconds.toFixed(1)}s`);
}

async function loop() {
  const generation = ++state.generation;
  state.history = new Map();
  document.querySelector('#workloads tbody').replaceChildren();
  status(`sampling… ${state.window}`);
  showEdges({ kind: state.kind, namespace: state.namespace });
  const query = new URLSearchParams({
    kind: state.kind, namespace: state.namespace, window: state.window,
  });
  while (generation === state.generation) {
    try {
      const body = await getJSON(`/api/stat?${query}`);
      if (generation !== state.generation) return;
      render(body);
    } catch (e) {
      if (generation !== state.generation) return;
      status(e.message, true);
    }
    await new Promise((resolve) => { setTimeout(resolve, REFRESH_MS); });
  }
}

function tap(name) {
  const params = new URLSearchParams(location.search);
  params.set('tap', name);
  history.replaceState(null, '', `?${params}`);
  openTap({ kind: state.kind, namespace: state.namespace, name });
}

function choose() {
  closeTap();
  state.namespace = $('namespace').value;
  state.kind = $('kind').value;
  const params = new URLSearchParams({
    namespace: state.namespace, kind: state.kind, window: state.window,
  });
  history.replaceState(null, '', `?${params}`);
  loop();
}

async function start() {
  const params = new URLSearchParams(location.search);
  const settings = await getJSON('/api/settings');
  state.namespace = params.get('namespace') || settings.namespace;
  state.kind = params.get('kind') || 'deployment';
  state.window = params.get('window') || settings.window;
  fillSelect($('kind'), settings.kinds, state.kind);
  let namespaces = [state.namespace];
  try {
    namespaces = (await getJSON('/api/namespaces')).namespaces;
    if (!namespaces.includes(state.namespace)) namespaces.unshift(state.namespace);
  } catch (e) {
    status(e.message, true);
  }
  fillSelect($('namespace'), namespaces, state.namespace);
  $('namespace').addEventListener('change', choose);
  $('kind').addEventListener('change', choose);
  $('tap-close').addEventListener('click', () => {
    closeTap();
    const now = new URLSearchParams(location.search);
    now.delete('tap');
    history.replaceState(null, '', `?${now}`);
  });
  loop();
  if (params.get('tap')) tap(params.get('tap'));
}

start().catch((e) => status(e.message, true));
