// "Enable browser notifications": a service worker plus a Web Push subscription with the
// server's VAPID key, registered with POST /v1/users/{id}/webpush. Every step may be missing
// (an old browser, a server without Web Push configured): each ends in a plain message.

import {userPath} from './api.js';
import {t} from './i18n.js';

const SW_URL = '/static/sw.js';

function supported() {
  return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window
    && window.isSecureContext;
}

function keyBytes(base64url) {
  const pad = '='.repeat((4 - (base64url.length % 4)) % 4);
  const raw = atob((base64url + pad).replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function sameKey(subscription, key) {
  const current = subscription.options && subscription.options.applicationServerKey;
  if (!current) return true;
  const a = new Uint8Array(current);
  return a.length === key.length && a.every((v, i) => v === key[i]);
}

/** 'unsupported' | 'subscribed' | 'none' */
export async function pushState() {
  if (!supported()) return 'unsupported';
  try {
    const reg = await navigator.serviceWorker.getRegistration('/');
    const sub = reg && await reg.pushManager.getSubscription();
    return sub && Notification.permission === 'granted' ? 'subscribed' : 'none';
  } catch (err) {
    return 'none';
  }
}

export async function enablePush(app) {
  if (!supported()) return {ok: false, message: t('push_unsupported')};
  let publicKey;
  try {
    const res = await app.api.get('/v1/webpush/public-key');
    publicKey = res && (res.public_key || res.publicKey || res.key || res.vapid_public_key);
    if (!publicKey) return {ok: false, message: t('push_unavailable')};
  } catch (err) {
    const absent = [404, 405, 501, 503].includes(err.status);
    return {ok: false, message: absent ? t('push_unavailable') : t('push_failed', {msg: err.message})};
  }
  try {
    const permission = await Notification.requestPermission();
    if (permission !== 'granted') return {ok: false, message: t('push_denied')};
    await navigator.serviceWorker.register(SW_URL, {scope: '/'});
    const reg = await navigator.serviceWorker.ready;
    const key = keyBytes(publicKey);
    let sub = await reg.pushManager.getSubscription();
    if (sub && !sameKey(sub, key)) {
      await sub.unsubscribe();
      sub = null;
    }
    sub = sub || await reg.pushManager.subscribe({userVisibleOnly: true, applicationServerKey: key});
    const json = sub.toJSON();
    // The subscription as the Push API spells it: {endpoint, keys: {p256dh, auth}}.
    await app.api.post(userPath(app.userId, '/webpush'), {endpoint: json.endpoint, keys: json.keys});
    return {ok: true, message: t('push_enabled')};
  } catch (err) {
    if (err.status === 404 || err.status === 405) return {ok: false, message: t('push_unavailable')};
    return {ok: false, message: t('push_failed', {msg: err.message || String(err)})};
  }
}
