// Pop-ups next to the bell for new entries: they close by themselves after a few seconds
// (not while the pointer rests on one), on their × button, or when their entry goes away.

import {h, icon, ICONS} from './dom.js';
import {formatWhen} from './format.js';
import {t} from './i18n.js';

const LIFETIME_MS = 7000; // <body data-popup-ms> overrides it (the tests do)
const MAX_VISIBLE = 3;

export class Popups {
  constructor(app, root) {
    this.app = app;
    this.root = root;
    this.open = new Map(); // entry id -> {el, timer}
  }

  show(entry) {
    if (this.open.has(entry.id)) return;
    const close = h('button', {class: 'popup-close', type: 'button', 'aria-label': t('close'),
      title: t('close'), onclick: (ev) => { ev.stopPropagation(); this.dismiss(entry.id); }},
    icon(ICONS.close));
    const el = h('div', {class: 'popup', role: 'status', dataset: {id: entry.id, kind: entry.kind},
      tabindex: '0',
      onclick: () => { this.app.center.markRead(entry.id); this.dismiss(entry.id); },
      onmouseenter: () => this.pause(entry.id),
      onmouseleave: () => this.resume(entry.id)},
    h('div', {class: 'popup-head'},
      h('span', {class: 'popup-icon'}, icon(ICONS.bell)),
      h('span', {class: 'popup-title', text: entry.title}),
      close),
    h('div', {class: 'popup-body', text: entry.body}),
    h('div', {class: 'popup-time', text: formatWhen(entry.created_at, this.app.timezone())}));
    this.root.prepend(el);
    requestAnimationFrame(() => el.classList.add('shown'));
    this.open.set(entry.id, {el, timer: null});
    this.resume(entry.id);
    const ids = [...this.open.keys()];
    for (const old of ids.slice(0, Math.max(0, ids.length - MAX_VISIBLE))) this.dismiss(old);
  }

  pause(id) {
    const p = this.open.get(id);
    if (p) clearTimeout(p.timer);
  }

  resume(id) {
    const p = this.open.get(id);
    if (!p) return;
    clearTimeout(p.timer);
    p.timer = setTimeout(() => this.dismiss(id), Number(document.body.dataset.popupMs) || LIFETIME_MS);
  }

  dismiss(id) {
    const p = this.open.get(id);
    if (!p) return;
    clearTimeout(p.timer);
    this.open.delete(id);
    p.el.classList.remove('shown');
    p.el.classList.add('leaving');
    setTimeout(() => p.el.remove(), 180);
  }

  remove(ids) {
    for (const id of ids) this.dismiss(id);
  }

  clearAll() {
    for (const id of [...this.open.keys()]) this.dismiss(id);
  }
}
