// The Profile page: every toggle per channel per kind, time zone, locale, the whole-day
// notification time, browser push and Google Calendar. Saved with PATCH settings.

import {userPath} from './api.js';
import {clear, h, icon, ICONS} from './dom.js';
import {formatFull, parseInstant} from './format.js';
import {label, LOCALES, t} from './i18n.js';
import {enablePush, pushState} from './push.js';

const CHANNEL_ORDER = ['email', 'browser', 'mobile'];
const KIND_ORDER = ['task_assigned', 'task_due', 'task_overdue', 'task_completed', 'calendar_disconnected'];
const CALENDAR_STATES = ['off', 'connecting', 'on', 'needs_reconnect', 'paused'];

function ordered(words, order) {
  const known = order.filter((w) => words.includes(w));
  return known.concat(words.filter((w) => !order.includes(w)).sort());
}

function zones(current) {
  let list = [];
  try {
    list = Intl.supportedValuesOf('timeZone');
  } catch (err) {
    list = [];
  }
  const all = new Set(list);
  all.add('UTC');
  if (current) all.add(current);
  return [...all].sort((a, b) => (a === 'UTC' ? -1 : b === 'UTC' ? 1 : a.localeCompare(b)));
}

function draftOf(settings) {
  return {
    timezone: settings.timezone,
    locale: settings.locale,
    all_day_notify_at: (settings.all_day_notify_at || '09:00').slice(0, 5),
    channels: structuredClone(settings.channels || {}),
  };
}

/** Only what changed goes to the server, so two tabs editing different switches both win. */
function changes(saved, draft) {
  const body = {};
  for (const key of ['timezone', 'locale', 'all_day_notify_at']) {
    if (draft[key] !== saved[key]) body[key] = draft[key];
  }
  const channels = {};
  for (const [ch, kinds] of Object.entries(draft.channels)) {
    for (const [kind, on] of Object.entries(kinds)) {
      if ((saved.channels[ch] || {})[kind] !== on) (channels[ch] ||= {})[kind] = on;
    }
  }
  if (Object.keys(channels).length) body.channels = channels;
  return body;
}

export function renderProfile(app, view) {
  const saved = draftOf(app.settings);
  const draft = draftOf(app.settings);
  const uid = app.userId;

  // -- general ---------------------------------------------------------------------------
  const localeSelect = h('select', {id: 'locale', name: 'locale',
    onchange: () => { draft.locale = localeSelect.value; update(); }},
  Object.entries(LOCALES).map(([code, name]) => h('option', {value: code, selected: code === draft.locale, text: name})));
  const tzSelect = h('select', {id: 'timezone', name: 'timezone',
    onchange: () => { draft.timezone = tzSelect.value; update(); }},
  zones(draft.timezone).map((z) => h('option', {value: z, selected: z === draft.timezone, text: z.replaceAll('_', ' ')})));
  const timeInput = h('input', {id: 'all-day-at', name: 'all_day_notify_at', type: 'time', required: true,
    value: draft.all_day_notify_at,
    oninput: () => { if (timeInput.value) draft.all_day_notify_at = timeInput.value; update(); }});

  const general = h('section', {class: 'card', 'aria-labelledby': 'general-h'},
    h('h2', {id: 'general-h', text: t('general')}),
    h('div', {class: 'form-grid'},
      h('label', {for: 'locale', text: t('language')}), localeSelect,
      h('label', {for: 'timezone', text: t('timezone')}), tzSelect,
      h('label', {for: 'all-day-at', text: t('all_day_at')}),
      h('div', {class: 'field-with-hint'}, timeInput, h('span', {class: 'hint', text: t('all_day_hint')}))));

  // -- the toggles: one row per kind, one column per channel -------------------------------
  const channels = ordered(Object.keys(draft.channels), CHANNEL_ORDER);
  const kinds = ordered([...new Set(channels.flatMap((ch) => Object.keys(draft.channels[ch])))], KIND_ORDER);
  const table = h('table', {class: 'toggles'},
    h('thead', {}, h('tr', {},
      h('th', {scope: 'col', text: t('kind')}),
      channels.map((ch) => h('th', {scope: 'col', text: label('channel', ch)})))),
    h('tbody', {}, kinds.map((kind) => h('tr', {},
      h('th', {scope: 'row', text: label('kind', kind)}),
      channels.map((ch) => {
        if (!Object.hasOwn(draft.channels[ch], kind)) {
          return h('td', {class: 'na', title: t('not_carried')}, h('span', {'aria-label': t('not_carried'), text: '—'}));
        }
        const box = h('input', {type: 'checkbox', class: 'switch', name: `${ch}.${kind}`,
          checked: Boolean(draft.channels[ch][kind]),
          'aria-label': `${label('channel', ch)}: ${label('kind', kind)}`,
          onchange: () => { draft.channels[ch][kind] = box.checked; update(); }});
        return h('td', {}, box);
      })))));

  const pushStatus = h('p', {class: 'status-line', id: 'push-status', role: 'status'});
  const pushButton = h('button', {type: 'button', class: 'button', id: 'push-enable', text: t('push_enable'),
    onclick: async () => {
      pushButton.disabled = true;
      pushStatus.textContent = t('push_working');
      pushStatus.className = 'status-line';
      const result = await enablePush(app);
      pushStatus.textContent = result.message;
      pushStatus.className = `status-line ${result.ok ? 'ok' : 'warn'}`;
      pushButton.disabled = result.ok;
    }});
  pushState().then((state) => {
    if (state === 'subscribed') {
      pushStatus.textContent = t('push_enabled');
      pushStatus.className = 'status-line ok';
    } else if (state === 'unsupported') {
      pushStatus.textContent = t('push_unsupported');
      pushButton.disabled = true;
    }
  });

  const saveButton = h('button', {type: 'submit', class: 'button primary', id: 'save', text: t('save'), disabled: true});
  const saveStatus = h('span', {class: 'status-line', id: 'save-status', role: 'status'});
  const form = h('form', {class: 'profile-form', novalidate: true,
    onsubmit: async (ev) => {
      ev.preventDefault();
      const body = changes(saved, draft);
      if (!Object.keys(body).length) return;
      saveButton.disabled = true;
      saveStatus.textContent = t('saving');
      saveStatus.className = 'status-line';
      try {
        const settings = await app.api.patch(userPath(uid, '/settings'), body);
        app.applySettings(settings, {rerender: true});
        app.flash(t('saved'));
      } catch (err) {
        saveStatus.textContent = t('save_failed', {msg: err.message});
        saveStatus.className = 'status-line warn';
        saveButton.disabled = false;
      }
    }},
  general,
  h('section', {class: 'card', 'aria-labelledby': 'toggles-h'},
    h('h2', {id: 'toggles-h', text: t('task_notifications')}),
    h('p', {class: 'hint', text: t('notifications_hint')}),
    h('div', {class: 'table-scroll'}, table),
    h('div', {class: 'push'},
      h('div', {},
        h('h3', {text: t('push_title')}),
        h('p', {class: 'hint', text: t('push_hint')})),
      h('div', {class: 'push-actions'}, pushButton, pushStatus))),
  h('div', {class: 'save-bar'}, saveButton, saveStatus));

  function update() {
    const dirty = Object.keys(changes(saved, draft)).length > 0;
    saveButton.disabled = !dirty;
    saveStatus.textContent = dirty ? t('unsaved') : '';
    saveStatus.className = 'status-line';
  }

  const calendar = renderCalendar(app);

  clear(view);
  view.append(h('div', {class: 'page profile'},
    h('h1', {text: t('profile_title')}),
    h('p', {class: 'who'},
      h('span', {class: 'who-name', text: app.user.name || app.userId}),
      app.user.email ? h('span', {class: 'who-email', text: app.user.email}) : null),
    form,
    calendar.el));
  return {dispose: calendar.dispose};
}

// -- Google Calendar ----------------------------------------------------------------------

function renderCalendar(app) {
  const uid = app.userId;
  const pill = h('span', {class: 'pill', id: 'gc-state'});
  const details = h('div', {class: 'gc-details'});
  const actions = h('div', {class: 'gc-actions'});
  const message = h('p', {class: 'status-line', id: 'gc-message', role: 'status'});
  let info = {state: (app.settings.google_calendar || {}).state || 'off'};
  let poll = null;
  let disposed = false;

  const el = h('section', {class: 'card calendar', 'aria-labelledby': 'gc-h'},
    h('div', {class: 'card-head'},
      h('h2', {id: 'gc-h'}, icon(ICONS.calendar), h('span', {text: t('gc_title')})),
      pill),
    h('p', {class: 'hint', text: t('gc_hint')}),
    details, actions, message);

  function say(text, kind = '') {
    message.textContent = text || '';
    message.className = `status-line ${kind}`;
  }

  function draw() {
    const state = CALENDAR_STATES.includes(info.state) ? info.state : 'off';
    pill.textContent = label('gc_state', info.state);
    pill.className = `pill state-${state}`;
    pill.dataset.state = info.state;
    clear(details);
    const tz = app.timezone();
    const syncs = [info.last_push_at, info.last_pull_at, info.last_sync_at].filter(Boolean)
      .sort((a, b) => parseInstant(b) - parseInstant(a));
    if (syncs.length) details.append(h('p', {text: t('gc_last_sync', {when: formatFull(syncs[0], tz)})}));
    if (state === 'paused' && info.paused_until) {
      details.append(h('p', {text: t('gc_paused_until', {when: formatFull(info.paused_until, tz)})}));
    }
    const lastError = typeof info.last_error === 'object' && info.last_error ? info.last_error.message : info.last_error;
    if (lastError) details.append(h('p', {class: 'warn', text: t('gc_last_error', {msg: lastError})}));
    clear(actions);
    if (state === 'off' || state === 'needs_reconnect') {
      actions.append(h('button', {type: 'button', class: 'button primary', id: 'gc-connect',
        text: t(state === 'off' ? 'gc_connect' : 'gc_reconnect'), onclick: connect}));
    }
    if (state !== 'off') {
      actions.append(h('button', {type: 'button', class: 'button', id: 'gc-disconnect',
        text: t('gc_disconnect'), onclick: confirmDisconnect}));
    }
    clearTimeout(poll);
    if (state === 'connecting' && !disposed) poll = setTimeout(load, 3000);
  }

  async function load() {
    try {
      info = await app.api.get(userPath(uid, '/calendar'));
    } catch (err) {
      // Not on this server yet (404): the settings carry the state.
      if (err.status !== 404) say(t('gc_failed', {msg: err.message}), 'warn');
      info = {state: (app.settings.google_calendar || {}).state || 'off'};
    }
    if (!disposed) draw();
  }

  async function connect(ev) {
    ev.currentTarget.disabled = true;
    say(t('gc_redirecting'));
    try {
      const res = await app.api.post(userPath(uid, '/calendar/connect'));
      const url = new URL(res.authorization_url, location.href);
      if (!['https:', 'http:'].includes(url.protocol)) throw new Error('bad authorization_url');
      location.assign(url.href);
    } catch (err) {
      say(err.status === 404 ? t('gc_unavailable') : t('gc_failed', {msg: err.message}), 'warn');
      draw();
    }
  }

  function confirmDisconnect() {
    clear(actions);
    actions.append(
      h('span', {class: 'confirm-text', text: t('gc_confirm')}),
      h('button', {type: 'button', class: 'button danger', id: 'gc-disconnect-confirm', text: t('gc_disconnect'),
        onclick: disconnect}),
      h('button', {type: 'button', class: 'button', text: t('cancel'), onclick: draw}));
  }

  async function disconnect(ev) {
    ev.currentTarget.disabled = true;
    try {
      const res = await app.api.post(userPath(uid, '/calendar/disconnect'));
      say('');
      if (res && res.state) info = res; else await load();
    } catch (err) {
      say(err.status === 404 ? t('gc_unavailable') : t('gc_failed', {msg: err.message}), 'warn');
    }
    draw();
  }

  draw();
  load();
  return {el, dispose: () => { disposed = true; clearTimeout(poll); }};
}
