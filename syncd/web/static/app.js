// The page: sign-in by token, the bell and its counter, the center, pop-ups, the profile.
// Live state comes from the SSE stream; nothing here builds markup from strings.

import {Api, userPath} from './api.js';
import {Center} from './center.js';
import {clear, h} from './dom.js';
import {applyStatic, guessLocale, setLocale, t} from './i18n.js';
import {Popups} from './popups.js';
import {renderProfile} from './profile.js';
import {Stream} from './stream.js';

const TOKEN_KEY = 'syncd.token';
const $ = (id) => document.getElementById(id);

const app = {
  api: null,
  userId: null,
  user: null,
  settings: null,
  unread: 0,
  stream: null,
  current: null, // the rendered view: {name, dispose?}
  center: null,
  popups: null,
  calendarReturn: null,

  timezone() {
    return this.settings ? this.settings.timezone : undefined;
  },

  setUnread(n) {
    const count = Math.max(0, Number(n) || 0);
    const grew = count > this.unread;
    this.unread = count;
    const badge = $('badge');
    badge.hidden = count === 0;
    badge.textContent = count > 99 ? '99+' : String(count);
    badge.dataset.count = String(count);
    const bell = $('bell');
    bell.setAttribute('aria-label', count ? t('bell_unread', {n: count}) : t('bell'));
    if (grew) {
      bell.classList.remove('ring');
      void bell.offsetWidth; // restart the animation
      bell.classList.add('ring');
    }
    document.title = count ? `(${count}) ${t('app_title')}` : t('app_title');
    this.center.setUnread(count);
    if (count === 0) this.center.allRead();
    const summary = $('home-summary');
    if (summary) summary.textContent = count ? t('home_unread', {n: count}) : t('home_none');
  },

  /** After a read: the stream brings the new count; without a live stream, ask for it. */
  async refreshUnread() {
    if (document.body.dataset.stream === 'live') return;
    try {
      const {count} = await this.api.get(userPath(this.userId, '/notifications/unread-count'));
      this.setUnread(count);
    } catch (err) {
      // the next stream connection re-syncs it
    }
  },

  browserAllows(kind) {
    const browser = (this.settings && this.settings.channels && this.settings.channels.browser) || {};
    return browser[kind] !== false;
  },

  applySettings(settings, {rerender = false} = {}) {
    const relabel = !this.settings || settings.locale !== this.settings.locale
      || settings.timezone !== this.settings.timezone;
    this.settings = settings;
    setLocale(settings.locale);
    if (relabel) {
      applyStatic();
      this.center.relabel();
      this.setUnread(this.unread);
    }
    if (rerender) route();
  },

  flash(text) {
    const toast = $('toast');
    toast.textContent = text;
    toast.hidden = false;
    clearTimeout(this.flashTimer);
    this.flashTimer = setTimeout(() => { toast.hidden = true; }, 2500);
  },
};

// -- sign-in ----------------------------------------------------------------------------

/** The CRM opens the page as /?token=…: keep it, and take it out of the address bar. */
function takeToken() {
  const url = new URL(location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl) {
    localStorage.setItem(TOKEN_KEY, fromUrl);
    url.searchParams.delete('token');
  }
  // Back from Google's consent (the OAuth callback redirects to /?calendar=connected#profile).
  app.calendarReturn = url.searchParams.get('calendar');
  url.searchParams.delete('calendar');
  if (fromUrl || app.calendarReturn) {
    history.replaceState(history.state, '', url.pathname + url.search + url.hash);
  }
  return localStorage.getItem(TOKEN_KEY);
}

function showGate(title, text, retry) {
  $('topbar').hidden = true;
  const view = $('view');
  clear(view);
  view.append(h('div', {class: 'page gate'},
    h('div', {class: 'card gate-card'},
      h('h1', {text: title}),
      h('p', {text}),
      retry ? h('button', {type: 'button', class: 'button primary', text: t('retry'), onclick: retry}) : null)));
}

function signOut(reason) {
  if (app.stream) app.stream.stop();
  app.stream = null;
  localStorage.removeItem(TOKEN_KEY);
  if (app.current && app.current.dispose) app.current.dispose();
  app.current = null;
  app.center.reset();
  app.popups.clearAll();
  document.body.dataset.stream = 'off';
  document.body.dataset.signedIn = 'false';
  showGate(t('signin_title'), reason ? t(reason) : t('signin_text'));
}

// -- views ------------------------------------------------------------------------------

function renderHome(view) {
  const name = (app.user && app.user.name) || app.userId;
  clear(view);
  view.append(h('div', {class: 'page home'},
    h('div', {class: 'card'},
      h('h1', {text: t('home_hello', {name})}),
      h('p', {id: 'home-summary', class: 'summary',
        text: app.unread ? t('home_unread', {n: app.unread}) : t('home_none')}),
      h('p', {class: 'hint', text: t('home_hint')}),
      h('div', {class: 'actions'},
        h('button', {type: 'button', class: 'button primary', text: t('open_center'),
          onclick: (ev) => { ev.stopPropagation(); app.center.open(); }}),
        h('a', {class: 'button', href: '#/profile', text: t('open_profile')})))));
  return {};
}

function route() {
  if (!app.userId) return;
  const name = location.hash.replace(/^#\/?/, '') === 'profile' ? 'profile' : 'home';
  if (app.current && app.current.dispose) app.current.dispose();
  const view = $('view');
  app.current = {name, ...(name === 'profile' ? renderProfile(app, view) : renderHome(view))};
  document.body.dataset.view = name;
  closeMenu();
  app.center.close();
}

// -- chrome -----------------------------------------------------------------------------

function closeMenu() {
  $('menu').hidden = true;
  $('menu-button').setAttribute('aria-expanded', 'false');
}

function wireChrome() {
  const menu = $('menu');
  $('menu-button').addEventListener('click', () => {
    menu.hidden = !menu.hidden;
    $('menu-button').setAttribute('aria-expanded', String(!menu.hidden));
    if (!menu.hidden) app.center.close();
  });
  for (const item of menu.querySelectorAll('[data-route]')) {
    item.addEventListener('click', () => {
      const target = item.dataset.route ? `#/${item.dataset.route}` : '#/';
      if (location.hash === target) route(); else location.hash = target;
      closeMenu();
    });
  }
  $('sign-out').addEventListener('click', () => signOut('signed_out'));
  $('bell').addEventListener('click', () => {
    closeMenu();
    app.center.toggle();
  });
  document.addEventListener('click', (ev) => {
    if (!ev.target.closest('.menu-wrap')) closeMenu();
    if (!ev.target.closest('.bell-wrap')) app.center.close();
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape') return;
    if (!menu.hidden) closeMenu();
    else if (app.center.isOpen) { app.center.close(); $('bell').focus(); }
  });
  window.addEventListener('hashchange', route);
  setInterval(() => { if (app.center.isOpen) app.center.refreshTimes(); }, 30000);
}

function showUser() {
  const name = (app.user && app.user.name) || app.userId;
  const initials = name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join('');
  $('avatar').textContent = initials || '?';
  $('menu-name').textContent = name;
  $('menu-email').textContent = (app.user && app.user.email) || '';
  $('topbar').hidden = false;
}

function startStream(token) {
  const url = `${userPath(app.userId, '/stream')}?access_token=${encodeURIComponent(token)}`;
  app.stream = new Stream(url, {
    notification: (entry) => {
      app.center.add(entry);
      if (entry.popup && app.browserAllows(entry.kind) && !app.center.isOpen) app.popups.show(entry);
    },
    unread_count: ({count}) => app.setUnread(count),
    removed: ({ids}) => {
      app.center.remove(ids || []);
      app.popups.remove(ids || []);
    },
    reopened: () => { if (app.center.loaded) app.center.reload(); },
    refused: () => { app.api.get('/v1/me').catch(() => {}); }, // a dead token signs out (401)
    status: (state) => {
      document.body.dataset.stream = state;
      $('conn').textContent = state === 'reconnecting' ? t('reconnecting') : '';
      $('conn').className = `conn ${state}`;
    },
  });
  app.stream.start();
}

async function boot() {
  setLocale(guessLocale());
  applyStatic();
  const token = takeToken();
  if (!token) {
    showGate(t('signin_title'), t('signin_text'));
    return;
  }
  app.api = new Api(token, {onUnauthorized: () => signOut('signin_expired')});
  try {
    const me = await app.api.get('/v1/me');
    app.userId = me.user_id;
    const [user, settings] = await Promise.all([
      app.api.get(userPath(app.userId)),
      app.api.get(userPath(app.userId, '/settings')),
    ]);
    app.user = user;
    app.applySettings(settings);
  } catch (err) {
    if (err.status === 401) return; // signOut has shown the gate
    if (err.status === 403) {
      localStorage.removeItem(TOKEN_KEY);
      showGate(t('signin_title'), t('signin_api_key'));
      return;
    }
    showGate(t('error_generic'), t('boot_failed', {msg: err.message}), () => location.reload());
    return;
  }
  applyStatic();
  showUser();
  document.body.dataset.signedIn = 'true';
  app.setUnread(0);
  startStream(token);
  route();
  if (app.calendarReturn === 'connected') app.flash(t('gc_connected'));
}

app.center = new Center(app, {
  panel: $('center'), list: $('center-list'), more: $('load-more'), status: $('center-status'),
  markAll: $('mark-all'), bell: $('bell'),
});
app.popups = new Popups(app, $('popups'));
wireChrome();
boot();
