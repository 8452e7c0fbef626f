// The notification center: newest first, paged by next_cursor, kept live by the stream.

import {userPath} from './api.js';
import {clear, h} from './dom.js';
import {formatFull, formatWhen} from './format.js';
import {t} from './i18n.js';

const PAGE = 20;

export class Center {
  constructor(app, els) {
    this.app = app;
    this.panel = els.panel;   // the dropdown
    this.list = els.list;     // <ul>
    this.more = els.more;     // "Load more"
    this.status = els.status; // empty / loading / error line
    this.markAll = els.markAll;
    this.bell = els.bell;
    this.entries = new Map(); // id -> {entry, el}
    this.nextCursor = null;
    this.loaded = false;
    this.loading = null;
    this.buffer = [];         // live events that arrive while the first page is on its way
    this.more.addEventListener('click', () => this.loadMore());
    this.markAll.addEventListener('click', () => this.markAllRead());
  }

  get isOpen() {
    return !this.panel.hidden;
  }

  toggle() {
    if (this.isOpen) this.close(); else this.open();
  }

  open() {
    this.panel.hidden = false;
    this.bell.setAttribute('aria-expanded', 'true');
    this.app.popups.clearAll();
    if (!this.loaded) this.reload();
    this.refreshTimes();
  }

  close() {
    this.panel.hidden = true;
    this.bell.setAttribute('aria-expanded', 'false');
  }

  /** (Re)load the first page: on first open, after a reconnect, on retry. */
  reload() {
    const token = {};
    this.loading = token;
    this.reloading = true;
    this.buffer = [];
    if (!this.loaded) this.setStatus(t('loading'));
    this.fetchPage(null).then((page) => {
      if (this.loading !== token) return;
      this.loading = null;
      this.reloading = false;
      this.entries.clear();
      clear(this.list);
      this.loaded = true;
      this.append(page);
      for (const [op, arg] of this.buffer.splice(0)) this[op](arg);
    }).catch((err) => {
      if (this.loading !== token) return;
      this.loading = null;
      this.reloading = false;
      this.buffer = [];
      this.showError(err, () => this.reload());
    });
  }

  async loadMore() {
    if (!this.nextCursor || this.loading) return;
    const token = {};
    this.loading = token;
    this.more.disabled = true;
    try {
      const page = await this.fetchPage(this.nextCursor);
      if (this.loading === token) this.append(page);
    } catch (err) {
      this.showError(err, () => this.loadMore());
    } finally {
      if (this.loading === token) this.loading = null;
      this.more.disabled = false;
    }
  }

  fetchPage(cursor) {
    const q = new URLSearchParams({limit: String(PAGE)});
    if (cursor) q.set('cursor', cursor);
    return this.app.api.get(userPath(this.app.userId, `/notifications?${q}`));
  }

  append(page) {
    for (const entry of page.items) {
      if (this.entries.has(entry.id)) continue;
      const el = this.render(entry);
      this.entries.set(entry.id, {entry, el});
      this.list.appendChild(el);
    }
    this.nextCursor = page.next_cursor;
    this.more.hidden = !this.nextCursor;
    this.updateStatus();
  }

  /** A live `notification` event: newest first, so it goes on top. */
  add(entry) {
    if (this.reloading) {
      this.buffer.push(['add', entry]);
      return;
    }
    if (!this.loaded || this.entries.has(entry.id)) return;
    const el = this.render(entry);
    this.entries.set(entry.id, {entry, el});
    const newer = [...this.entries.values()].filter((x) => x.entry.id > entry.id && x.el.isConnected);
    const after = newer.length ? newer.reduce((a, b) => (a.entry.id < b.entry.id ? a : b)).el : null;
    if (after) after.after(el); else this.list.prepend(el);
    if (this.isOpen) {
      el.classList.add('fresh');
      setTimeout(() => el.classList.remove('fresh'), 2000);
    }
    this.updateStatus();
  }

  /** A `removed` event: the entries leave the list at once. */
  remove(ids) {
    if (this.reloading) this.buffer.push(['remove', ids]);
    for (const id of ids) {
      const item = this.entries.get(id);
      if (!item) continue;
      item.el.remove();
      this.entries.delete(id);
    }
    this.updateStatus();
  }

  async markRead(id) {
    const item = this.entries.get(id);
    if (item && item.entry.read_at) return;
    if (item) this.setRead(item, new Date().toISOString());
    try {
      const entry = await this.app.api.post(userPath(this.app.userId, `/notifications/${id}/read`));
      if (item) this.setRead(item, entry.read_at);
      this.app.refreshUnread();
    } catch (err) {
      if (item && err.status !== 404) this.setRead(item, null);
      if (err.status === 404) this.remove([id]);
    }
  }

  async markAllRead() {
    this.markAll.disabled = true;
    try {
      await this.app.api.post(userPath(this.app.userId, '/notifications/read-all'));
      this.allRead();
      this.app.setUnread(0);
    } catch (err) {
      this.markAll.disabled = false;
      this.showError(err, () => this.markAllRead());
    }
  }

  /** Counter reached 0 (here or in another tab): nothing listed is unread any more. */
  allRead() {
    const now = new Date().toISOString();
    for (const item of this.entries.values()) if (!item.entry.read_at) this.setRead(item, now);
  }

  setRead(item, readAt) {
    item.entry.read_at = readAt;
    item.el.classList.toggle('unread', !readAt);
    item.el.setAttribute('aria-label', this.ariaLabel(item.entry));
  }

  setUnread(n) {
    this.markAll.disabled = n === 0;
  }

  render(entry) {
    const tz = this.app.timezone();
    const el = h('li', {class: `entry${entry.read_at ? '' : ' unread'}`,
      dataset: {id: entry.id, kind: entry.kind}},
    h('button', {type: 'button', class: 'entry-button', 'aria-label': this.ariaLabel(entry),
      onclick: () => this.markRead(entry.id)},
    h('span', {class: 'entry-dot', 'aria-hidden': 'true'}),
    h('span', {class: 'entry-main'},
      h('span', {class: 'entry-head'},
        h('span', {class: 'entry-title', text: entry.title}),
        h('time', {class: 'entry-time', datetime: entry.created_at, title: formatFull(entry.created_at, tz),
          text: formatWhen(entry.created_at, tz)})),
      h('span', {class: 'entry-body', text: entry.body}))));
    return el;
  }

  ariaLabel(entry) {
    return `${entry.read_at ? '' : `${t('unread')}: `}${entry.title}. ${entry.body}`;
  }

  refreshTimes() {
    const tz = this.app.timezone();
    for (const {entry, el} of this.entries.values()) {
      const time = el.querySelector('.entry-time');
      time.textContent = formatWhen(entry.created_at, tz);
      time.title = formatFull(entry.created_at, tz);
    }
  }

  /** The locale or time zone changed: words and times again. */
  relabel() {
    for (const item of this.entries.values()) {
      item.el.querySelector('.entry-button').setAttribute('aria-label', this.ariaLabel(item.entry));
    }
    this.refreshTimes();
    this.updateStatus();
  }

  updateStatus() {
    if (!this.loaded) return;
    if (this.entries.size === 0 && !this.nextCursor) this.setStatus(t('empty'));
    else this.setStatus(null);
  }

  setStatus(text, retry) {
    clear(this.status);
    this.status.hidden = !text;
    if (!text) return;
    this.status.appendChild(h('span', {text}));
    if (retry) {
      this.status.appendChild(h('button', {type: 'button', class: 'link-button', text: t('retry'),
        onclick: retry}));
    }
  }

  showError(err, retry) {
    this.setStatus(`${t('load_failed')} ${err.message || ''}`.trim(), retry);
  }

  /** Signed out or a new user: forget everything. */
  reset() {
    this.loading = null;
    this.reloading = false;
    this.buffer = [];
    this.entries.clear();
    clear(this.list);
    this.loaded = false;
    this.nextCursor = null;
    this.more.hidden = true;
    this.close();
  }
}
