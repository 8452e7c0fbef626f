// The live stream (SSE). EventSource cannot set headers, so the token rides as access_token.
// The browser reconnects by itself after a dropped connection; when the server refuses one
// (an HTTP error closes the EventSource for good) we retry with backoff. Every connection
// starts with the server's unread_count, so the counter is right again after any gap.

export class Stream {
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers; // {notification, unread_count, removed, status, reopened, refused}
    this.es = null;
    this.opened = false;
    this.delay = 1000;
    this.timer = null;
    this.stopped = true;
    this.onOnline = () => this.kick();
    this.onVisible = () => { if (document.visibilityState === 'visible') this.kick(); };
  }

  start() {
    this.stopped = false;
    window.addEventListener('online', this.onOnline);
    document.addEventListener('visibilitychange', this.onVisible);
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    window.removeEventListener('online', this.onOnline);
    document.removeEventListener('visibilitychange', this.onVisible);
    if (this.es) this.es.close();
    this.es = null;
  }

  /** Reconnect now if we are waiting out a backoff. */
  kick() {
    if (this.stopped || (this.es && this.es.readyState !== EventSource.CLOSED)) return;
    clearTimeout(this.timer);
    this.connect();
  }

  connect() {
    if (this.stopped) return;
    if (this.es) this.es.close();
    const es = new EventSource(this.url);
    this.es = es;
    this.status('connecting');
    es.addEventListener('open', () => {
      this.delay = 1000;
      this.status('live');
      if (this.opened) this.handlers.reopened?.();
      this.opened = true;
    });
    for (const name of ['notification', 'unread_count', 'removed']) {
      es.addEventListener(name, (ev) => {
        let data;
        try {
          data = JSON.parse(ev.data);
        } catch (err) {
          return;
        }
        this.handlers[name]?.(data);
      });
    }
    es.addEventListener('error', () => {
      if (es !== this.es) return;
      this.status('reconnecting');
      if (es.readyState === EventSource.CLOSED) {
        es.close();
        this.handlers.refused?.();
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.connect(), this.delay * (0.75 + Math.random() / 2));
        this.delay = Math.min(this.delay * 2, 30000);
      }
    });
  }

  status(state) {
    this.handlers.status?.(state);
  }
}
