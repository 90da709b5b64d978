// The live request view: `/api/tap` read as server-sent events through fetch, so that an
// error answer (tap off, no pods) can be shown as the server words it.

// How many requests the view keeps, newest first.
const KEEP = 50;

const $ = (id) => document.getElementById(id);

let current = null;

function say(text, error = false) {
  $('tap-status').textContent = text;
  $('tap-status').className = error ? 'error' : '';
}

function requestRow(event) {
  const tr = document.createElement('tr');
  const status = event.error ? `error: ${event.error}` : (event.status ?? '-');
  const cells = [
    ['name', event.pod], ['name', event.direction], ['name', event.method],
    ['name', event.authority], ['name', event.path], ['', `${status}`],
    ['', `${Math.round(event.latency_us / 1000)}ms`], ['', `${event.response_bytes}B`],
  ];
  for (const [cls, text] of cells) {
    const td = document.createElement('td');
    if (cls) td.className = cls;
    td.textContent = text;
    tr.append(td);
  }
  tr.dataset.path = event.path;
  return tr;
}

function frame(text) {
  let kind = 'message';
  const data = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('event: ')) kind = line.slice(7);
    else if (line.startsWith('data: ')) data.push(line.slice(6));
  }
  if (data.length === 0) return;
  const value = JSON.parse(data.join('\n'));
  if (kind === 'pods') {
    say(`tapping ${value.length} ${value.length === 1 ? 'pod' : 'pods'}: ${value.join(', ')}`);
    return;
  }
  const body = document.querySelector('#requests tbody');
  body.prepend(requestRow(value));
  while (body.children.length > KEEP) body.lastElementChild.remove();
}

export function closeTap() {
  if (current) current.abort();
  current = null;
  $('tap').hidden = true;
}

// Streams the requests of `name` until closed or another is opened.
export async function openTap({ kind, namespace, name }) {
  closeTap();
  const controller = new AbortController();
  current = controller;
  $('tap').hidden = false;
  $('tap-name').textContent = `${kind}/${name}`;
  document.querySelector('#requests tbody').replaceChildren();
  say('opening the tap streams…');
  const query = new URLSearchParams({ kind, namespace, name });
  try {
    const response = await fetch(`/api/tap?${query}`, { signal: controller.signal });
    if (!response.ok) {
      const body = await response.json();
      say(body.error || response.statusText, true);
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffered = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffered.indexOf('\n\n')) >= 0) {
        frame(buffered.slice(0, end));
        buffered = buffered.slice(end + 2);
      }
    }
    if (current === controller) say('the tap streams ended', true);
  } catch (e) {
    if (current === controller) say(e.message, true);
  }
}
