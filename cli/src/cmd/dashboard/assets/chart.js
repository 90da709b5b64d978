// Sparklines as inline SVG: no chart library, nothing to download.

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 120;
const HEIGHT = 28;

// A line through `values` (numbers or null for "no traffic"), scaled to [min, max] or, with
// max undefined, to the largest value. `label` titles the chart with its latest value.
export function sparkline(values, { min = 0, max, label, name }) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('width', `${WIDTH}`);
  svg.setAttribute('height', `${HEIGHT}`);
  svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
  svg.dataset.chart = name;
  svg.dataset.points = `${values.length}`;
  const known = values.filter((v) => v !== null);
  const top = max ?? Math.max(...known, 0);
  const span = top - min || 1;
  const step = values.length > 1 ? WIDTH / (values.length - 1) : 0;
  const points = [];
  values.forEach((v, i) => {
    if (v === null) return;
    const y = HEIGHT - 2 - ((v - min) / span) * (HEIGHT - 4);
    points.push(`${(i * step).toFixed(1)},${y.toFixed(1)}`);
  });
  const title = document.createElementNS(SVG, 'title');
  const latest = known.length ? known[known.length - 1] : null;
  title.textContent = latest === null ? `${name}: no traffic` : `${name}: ${label(latest)}`;
  svg.append(title);
  if (points.length === 1) {
    const [x, y] = points[0].split(',');
    const dot = document.createElementNS(SVG, 'circle');
    dot.setAttribute('cx', x);
    dot.setAttribute('cy', y);
    dot.setAttribute('r', '2');
    svg.append(dot);
  } else if (points.length > 1) {
    const line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('points', points.join(' '));
    line.setAttribute('fill', 'none');
    svg.append(line);
  }
  return svg;
}
