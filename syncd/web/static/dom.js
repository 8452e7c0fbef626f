// A tiny DOM builder. Data only ever becomes text nodes or attribute values: there is no
// innerHTML anywhere on this page, so task text cannot turn into markup.

const SVG_NS = 'http://www.w3.org/2000/svg';
const PROPS = new Set(['checked', 'value', 'disabled', 'selected', 'hidden', 'indeterminate']);

/** h('div', {class: 'x', onclick: fn, dataset: {id: 1}}, 'text', child, [more]) */
export function h(tag, props, ...children) {
  const svg = tag.startsWith('svg:');
  const el = svg ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (PROPS.has(key)) {
      el[key] = value;
    } else if (value == null || value === false) {
      continue;
    } else if (key === 'text') {
      el.textContent = String(value);
    } else if (key === 'dataset') {
      for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    } else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else {
      el.setAttribute(key === 'className' ? 'class' : key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** An icon from a list of SVG path strings (24×24, stroked). */
export function icon(paths, cls = 'icon') {
  return h('svg:svg', {class: cls, viewBox: '0 0 24 24', 'aria-hidden': 'true', focusable: 'false'},
    paths.map((d) => h('svg:path', {d})));
}

export const ICONS = {
  bell: ['M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9', 'M10.3 21a1.94 1.94 0 0 0 3.4 0'],
  close: ['M18 6 6 18', 'M6 6l12 12'],
  check: ['M20 6 9 17l-5-5'],
  user: ['M20 21v-2a4 4 0 0 0-4-4H8a4 4 0 0 0-4 4v2', 'M12 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8z'],
  calendar: ['M8 2v4', 'M16 2v4', 'M3 10h18', 'M5 4h14a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z'],
};
