// The edges view: which workloads of the chosen kind send traffic to which, and the
// identities each side verified, as `mesh edges KIND -o wide` shows them. Edges count since
// the proxies started, so each reading replaces the table.

import { getJSON } from './api.js';

// How often the edges are read again after an answer.
const REFRESH_MS = 5000;
// Kinds with no pods of their own, which have no edges.
const NO_EDGES = new Set(['authority', 'namespace', 'service']);

// Bumped on every change of choice, so that a late answer for the old one is dropped.
let generation = 0;

const $ = (id) => document.getElementById(id);

// An identity as `mesh edges` shows it: its service account and namespace.
function shortId(id) {
  const labels = id.split('.');
  return labels.length > 2 ? labels.slice(0, 2).join('.') : id;
}

function cell(field, value, text = value) {
  const td = document.createElement('td');
  td.className = 'name';
  td.dataset.field = field;
  td.dataset.value = `${value}`;
  td.textContent = text === '' ? '-' : text;
  return td;
}

function edgeRow(edge) {
  const tr = document.createElement('tr');
  tr.dataset.src = edge.src;
  tr.dataset.dst = edge.dst;
  const dst = edge.dst_kind === 'service' ? `svc/${edge.dst}` : edge.dst;
  const secured = cell('secured', edge.secured, edge.secured ? '√' : '×');
  secured.className = '';
  tr.append(
    cell('src', edge.src),
    cell('dst', edge.dst, dst),
    cell('src_namespace', edge.src_namespace),
    cell('dst_namespace', edge.dst_namespace),
    secured,
    cell('client_id', edge.client_id, shortId(edge.client_id)),
    cell('server_id', edge.server_id, shortId(edge.server_id)),
    cell('no_tls_reason', edge.no_tls_reason),
  );
  return tr;
}

function status(text, error = false) {
  $('edges-status').textContent = text;
  $('edges-status').className = error ? 'error' : '';
}

function render(body, kind) {
  $('edge-rows').querySelector('tbody').replaceChildren(...body.rows.map(edgeRow));
  const unread = body.unread.map((u) => `\n  ${u.pod}: ${u.error}`).join('');
  const what = body.rows.length === 0 ? `No edges from ${kind}s here.` : '';
  const missing = unread === '' ? '' : `could not read ${body.unread.length} pods; their edges are missing:${unread}`;
  status([what, missing].filter((t) => t !== '').join('\n'));
}

// Shows the edges of `kind` in `namespace` until the next call.
export function showEdges({ kind, namespace }) {
  const mine = ++generation;
  $('edge-rows').querySelector('tbody').replaceChildren();
  const section = $('edges');
  section.hidden = NO_EDGES.has(kind);
  if (section.hidden) return;
  status('reading…');
  const query = new URLSearchParams({ kind, namespace });
  (async () => {
    while (mine === generation) {
      try {
        const body = await getJSON(`/api/edges?${query}`);
        if (mine !== generation) return;
        render(body, kind);
      } catch (e) {
        if (mine !== generation) return;
        status(e.message, true);
      }
      await new Promise((resolve) => { setTimeout(resolve, REFRESH_MS); });
    }
  })();
}
