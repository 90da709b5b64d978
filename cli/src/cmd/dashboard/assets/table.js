// One table row per resource, in the layout and number formats of `mesh stat`.

// The stat columns: the JSON field each shows, and how it prints there.
export const COLUMNS = [
  { field: 'meshed', format: (v) => v },
  { field: 'success', format: (v) => `${(v * 100).toFixed(2)}%` },
  { field: 'rps', format: (v) => `${v.toFixed(1)}rps` },
  { field: 'latency_ms_p50', format: (v) => `${v}ms` },
  { field: 'latency_ms_p95', format: (v) => `${v}ms` },
  { field: 'latency_ms_p99', format: (v) => `${v}ms` },
  { field: 'tcp_open_connections', format: (v) => `${v}` },
];

// A row's identity across refreshes.
export function rowKey(row) {
  return `${row.kind}/${row.namespace}/${row.name}`;
}

// A <tr> for one row of `/api/stat`, every cell carrying its field and raw value so that
// the numbers can be read back exactly. `charts` are appended as further cells.
export function tableRow(row, charts, onTap) {
  const tr = document.createElement('tr');
  tr.dataset.kind = row.kind;
  tr.dataset.namespace = row.namespace;
  tr.dataset.name = row.name;
  const name = document.createElement('td');
  name.className = 'name';
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'link';
  button.title = 'watch its requests live';
  button.textContent = row.name;
  button.addEventListener('click', () => onTap(row.name));
  name.append(button);
  tr.append(name);
  for (const column of COLUMNS) {
    const td = document.createElement('td');
    const value = row[column.field];
    td.dataset.field = column.field;
    if (value === null || value === undefined) {
      td.textContent = '-';
    } else {
      td.dataset.value = `${value}`;
      td.textContent = column.format(value);
    }
    tr.append(td);
  }
  for (const chart of charts) {
    const td = document.createElement('td');
    td.className = 'chart';
    td.append(chart);
    tr.append(td);
  }
  return tr;
}
