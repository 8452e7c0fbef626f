// UI text in the user's locale (en, ru). Every string lands in textContent, never in markup.

const STRINGS = {
  en: {
    app_title: 'Notifications',
    brand: 'Tasks & notifications',
    menu: 'Menu',
    menu_home: 'Notifications',
    menu_profile: 'Profile',
    menu_sign_out: 'Sign out',
    bell: 'Notifications',
    bell_unread: {one: '{n} unread notification', other: '{n} unread notifications'},
    center_title: 'Notifications',
    mark_all: 'Mark all as read',
    load_more: 'Load more',
    empty: 'No notifications yet',
    loading: 'Loading…',
    load_failed: 'Could not load notifications.',
    retry: 'Retry',
    close: 'Close',
    unread: 'Unread',
    just_now: 'just now',
    live: 'Live',
    reconnecting: 'Reconnecting…',
    network_error: 'The server cannot be reached.',
    error_generic: 'Something went wrong.',
    signin_title: 'Sign in from your CRM',
    signin_text: 'Open this page with the link your CRM gives you: it carries your personal access token.',
    signin_expired: 'Your sign-in link is no longer valid. Open the page again from your CRM.',
    signin_api_key: 'This link carries a server API key, not a user token.',
    signed_out: 'You have signed out.',
    boot_failed: 'The page could not start: {msg}',
    home_hello: 'Hello, {name}',
    home_unread: {one: 'You have {n} unread notification.', other: 'You have {n} unread notifications.'},
    home_none: 'You are all caught up.',
    home_hint: 'New tasks, deadlines and completed tasks appear at the bell in the top-left corner.',
    open_center: 'Open notifications',
    open_profile: 'Notification settings',
    profile_title: 'Profile',
    general: 'General',
    language: 'Language',
    timezone: 'Time zone',
    all_day_at: 'Whole-day tasks notify at',
    all_day_hint: 'Local time on the day the task is due.',
    task_notifications: 'Task notifications',
    notifications_hint: 'The notification center always keeps every notification; these switches silence a channel only.',
    kind: 'Notification',
    channel_email: 'Email',
    channel_browser: 'Browser',
    channel_mobile: 'Mobile app',
    kind_task_assigned: 'New task',
    kind_task_due: 'Time to do the task',
    kind_task_overdue: 'Task overdue',
    kind_task_completed: 'Your task was completed',
    kind_calendar_disconnected: 'Google Calendar disconnected',
    not_carried: 'not sent by this channel',
    save: 'Save changes',
    saving: 'Saving…',
    saved: 'Saved',
    unsaved: 'Unsaved changes',
    save_failed: 'Could not save: {msg}',
    push_title: 'Browser notifications',
    push_hint: 'Let this browser show task notifications even when the page is closed.',
    push_enable: 'Enable browser notifications',
    push_working: 'Enabling…',
    push_enabled: 'Browser notifications are on in this browser.',
    push_unsupported: 'This browser cannot show push notifications.',
    push_unavailable: 'Browser push is not set up on this server yet.',
    push_denied: 'Notifications are blocked for this site in the browser settings.',
    push_failed: 'Could not enable browser notifications: {msg}',
    gc_title: 'Google Calendar',
    gc_hint: 'Mirror your tasks into a dedicated calendar in your Google account, with a reminder before each deadline. Marking an event done there completes the task.',
    gc_state: 'Status',
    gc_state_off: 'Off',
    gc_state_connecting: 'Connecting…',
    gc_state_on: 'On',
    gc_state_needs_reconnect: 'Needs reconnecting',
    gc_state_paused: 'Paused',
    gc_connect: 'Connect Google Calendar',
    gc_reconnect: 'Reconnect Google Calendar',
    gc_disconnect: 'Disconnect',
    gc_confirm: 'Disconnect Google Calendar? Your tasks stop syncing with it.',
    cancel: 'Cancel',
    gc_last_sync: 'Last sync: {when}',
    gc_last_error: 'Last error: {msg}',
    gc_paused_until: 'Paused until {when} (Google quota).',
    gc_connected: 'Google Calendar connected.',
    gc_unavailable: 'Google Calendar is not set up on this server.',
    gc_failed: 'Google Calendar: {msg}',
    gc_redirecting: 'Opening Google…',
  },
  ru: {
    app_title: 'Уведомления',
    brand: 'Задачи и уведомления',
    menu: 'Меню',
    menu_home: 'Уведомления',
    menu_profile: 'Профиль',
    menu_sign_out: 'Выйти',
    bell: 'Уведомления',
    bell_unread: {one: '{n} непрочитанное уведомление', few: '{n} непрочитанных уведомления', many: '{n} непрочитанных уведомлений', other: '{n} непрочитанного уведомления'},
    center_title: 'Уведомления',
    mark_all: 'Прочитать все',
    load_more: 'Показать ещё',
    empty: 'Уведомлений пока нет',
    loading: 'Загрузка…',
    load_failed: 'Не удалось загрузить уведомления.',
    retry: 'Повторить',
    close: 'Закрыть',
    unread: 'Не прочитано',
    just_now: 'только что',
    live: 'В сети',
    reconnecting: 'Переподключение…',
    network_error: 'Сервер недоступен.',
    error_generic: 'Что-то пошло не так.',
    signin_title: 'Войдите через CRM',
    signin_text: 'Откройте эту страницу по ссылке из вашей CRM: в ней ваш личный ключ доступа.',
    signin_expired: 'Ссылка для входа больше не действует. Откройте страницу заново из CRM.',
    signin_api_key: 'В ссылке ключ API сервера, а не ключ пользователя.',
    signed_out: 'Вы вышли.',
    boot_failed: 'Страница не запустилась: {msg}',
    home_hello: 'Здравствуйте, {name}',
    home_unread: {one: 'У вас {n} непрочитанное уведомление.', few: 'У вас {n} непрочитанных уведомления.', many: 'У вас {n} непрочитанных уведомлений.', other: 'У вас {n} непрочитанного уведомления.'},
    home_none: 'Все уведомления прочитаны.',
    home_hint: 'Новые задачи, сроки и выполненные задачи появляются у колокольчика в левом верхнем углу.',
    open_center: 'Открыть уведомления',
    open_profile: 'Настройки уведомлений',
    profile_title: 'Профиль',
    general: 'Общие',
    language: 'Язык',
    timezone: 'Часовой пояс',
    all_day_at: 'Уведомлять о задачах на весь день в',
    all_day_hint: 'Местное время в день срока задачи.',
    task_notifications: 'Уведомления о задачах',
    notifications_hint: 'Центр уведомлений сохраняет все уведомления; переключатели отключают только канал.',
    kind: 'Уведомление',
    channel_email: 'Почта',
    channel_browser: 'Браузер',
    channel_mobile: 'Мобильное приложение',
    kind_task_assigned: 'Новая задача',
    kind_task_due: 'Пора выполнить задачу',
    kind_task_overdue: 'Задача просрочена',
    kind_task_completed: 'Ваша задача выполнена',
    kind_calendar_disconnected: 'Google Календарь отключён',
    not_carried: 'этот канал такое не отправляет',
    save: 'Сохранить',
    saving: 'Сохранение…',
    saved: 'Сохранено',
    unsaved: 'Есть несохранённые изменения',
    save_failed: 'Не удалось сохранить: {msg}',
    push_title: 'Уведомления в браузере',
    push_hint: 'Браузер будет показывать уведомления о задачах, даже когда страница закрыта.',
    push_enable: 'Включить уведомления в браузере',
    push_working: 'Включаем…',
    push_enabled: 'Уведомления в этом браузере включены.',
    push_unsupported: 'Этот браузер не умеет показывать push-уведомления.',
    push_unavailable: 'Push-уведомления на этом сервере ещё не настроены.',
    push_denied: 'Уведомления для этого сайта запрещены в настройках браузера.',
    push_failed: 'Не удалось включить уведомления: {msg}',
    gc_title: 'Google Календарь',
    gc_hint: 'Задачи попадают в отдельный календарь вашего аккаунта Google с напоминанием перед сроком. Отметка о выполнении там закрывает задачу.',
    gc_state: 'Состояние',
    gc_state_off: 'Выключен',
    gc_state_connecting: 'Подключение…',
    gc_state_on: 'Включён',
    gc_state_needs_reconnect: 'Нужно подключить заново',
    gc_state_paused: 'Приостановлен',
    gc_connect: 'Подключить Google Календарь',
    gc_reconnect: 'Подключить заново',
    gc_disconnect: 'Отключить',
    gc_confirm: 'Отключить Google Календарь? Задачи перестанут с ним синхронизироваться.',
    cancel: 'Отмена',
    gc_last_sync: 'Последняя синхронизация: {when}',
    gc_last_error: 'Последняя ошибка: {msg}',
    gc_paused_until: 'Приостановлен до {when} (квота Google).',
    gc_connected: 'Google Календарь подключён.',
    gc_unavailable: 'Google Календарь на этом сервере не настроен.',
    gc_failed: 'Google Календарь: {msg}',
    gc_redirecting: 'Открываем Google…',
  },
};

export const LOCALES = {en: 'English', ru: 'Русский'};

let current = 'en';

export function setLocale(locale) {
  current = Object.hasOwn(STRINGS, locale) ? locale : 'en';
  document.documentElement.lang = current;
}

export function getLocale() {
  return current;
}

export function guessLocale() {
  return (navigator.language || '').toLowerCase().startsWith('ru') ? 'ru' : 'en';
}

export function t(key, params = {}) {
  let s = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  if (typeof s === 'object') {
    const rule = new Intl.PluralRules(current).select(Number(params.n ?? 0));
    s = s[rule] ?? s.other;
  }
  return s.replace(/\{(\w+)\}/g, (_, k) => (params[k] ?? '').toString());
}

/** Label a kind or a channel; a word the UI does not know yet shows as itself. */
export function label(prefix, word) {
  const key = `${prefix}_${word}`;
  return STRINGS[current][key] ?? STRINGS.en[key] ?? word;
}

/** Fill [data-i18n] (text), [data-i18n-label] (aria-label) and [data-i18n-title] (title). */
export function applyStatic(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-label]')) el.setAttribute('aria-label', t(el.dataset.i18nLabel));
  for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
}
