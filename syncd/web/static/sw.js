// The service worker for Web Push: shows the notification the server sent and, on a click,
// focuses the page (or opens it). The payload is JSON {title, body, ...}; anything else shows
// as plain text. Notifications render text only, so task text stays text here too.

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('push', (event) => {
  let data = {};
  if (event.data) {
    try {
      data = event.data.json();
    } catch (err) {
      data = {body: event.data.text()};
    }
  }
  const title = String(data.title || 'Notification').slice(0, 200);
  const entryId = data.entry_id ?? data.id;
  const options = {
    body: String(data.body || '').slice(0, 1000),
    tag: entryId != null ? `syncd-${entryId}` : undefined,
    data: {url: data.url || data.entity_url || '/', entry_id: entryId},
    lang: data.locale || undefined,
  };
  event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const target = new URL((event.notification.data && event.notification.data.url) || '/', self.location.origin);
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({type: 'window', includeUncontrolled: true});
    for (const client of windows) {
      if (new URL(client.url).origin === self.location.origin && 'focus' in client) {
        if (target.origin === self.location.origin && target.pathname !== '/') client.navigate(target.href);
        return client.focus();
      }
    }
    return self.clients.openWindow(target.href);
  })());
});
