// Times in the user's own time zone and locale.

import {getLocale, t} from './i18n.js';

/** The user's language in the browser's regional spelling (en + en-GB browser → en-GB). */
function intlLocale() {
  const lang = getLocale();
  const langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language];
  return langs.find((l) => l && l.toLowerCase().split('-')[0] === lang) || lang;
}

/** The API's instants carry an offset; a bare one is UTC. */
export function parseInstant(iso) {
  if (!iso) return null;
  const s = /([zZ]|[+-]\d\d:?\d\d)$/.test(iso) ? iso : `${iso}Z`;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? null : d;
}

function fmt(options, tz) {
  try {
    return new Intl.DateTimeFormat(intlLocale(), {...options, timeZone: tz || undefined});
  } catch (err) { // an unknown zone: fall back to the browser's
    return new Intl.DateTimeFormat(intlLocale(), options);
  }
}

/** "just now", "5 minutes ago", "14:05", "3 Mar, 14:05", "3 Mar 2025, 14:05". */
export function formatWhen(iso, tz, now = new Date()) {
  const d = parseInstant(iso);
  if (!d) return '';
  const seconds = (now.getTime() - d.getTime()) / 1000;
  if (seconds < 45) return t('just_now');
  if (seconds < 3600) {
    return new Intl.RelativeTimeFormat(intlLocale(), {numeric: 'auto'})
      .format(-Math.max(1, Math.round(seconds / 60)), 'minute');
  }
  const day = fmt({year: 'numeric', month: '2-digit', day: '2-digit'}, tz);
  if (day.format(d) === day.format(now)) return fmt({hour: '2-digit', minute: '2-digit'}, tz).format(d);
  const sameYear = fmt({year: 'numeric'}, tz).format(d) === fmt({year: 'numeric'}, tz).format(now);
  return fmt({day: 'numeric', month: 'short', year: sameYear ? undefined : 'numeric',
    hour: '2-digit', minute: '2-digit'}, tz).format(d);
}

export function formatFull(iso, tz) {
  const d = parseInstant(iso);
  return d ? fmt({dateStyle: 'full', timeStyle: 'short'}, tz).format(d) : '';
}
