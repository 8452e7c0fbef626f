// The REST API with the user's token. Errors arrive as {"error": {code, message, field}}.

import {t} from './i18n.js';

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

export class Api {
  constructor(token, {onUnauthorized} = {}) {
    this.token = token;
    this.onUnauthorized = onUnauthorized;
  }

  async request(method, path, body) {
    const headers = {Authorization: `Bearer ${this.token}`, Accept: 'application/json'};
    const init = {method, headers, cache: 'no-store', credentials: 'omit'};
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (err) {
      throw new ApiError(0, 'network', t('network_error'));
    }
    if (res.status === 204) return null;
    let data = null;
    try {
      data = await res.json();
    } catch (err) {
      data = null;
    }
    if (!res.ok) {
      const e = (data && data.error) || {};
      if (res.status === 401 && this.onUnauthorized) this.onUnauthorized();
      throw new ApiError(res.status, e.code || 'error', e.message || res.statusText || t('error_generic'), e.field);
    }
    return data;
  }

  get(path) { return this.request('GET', path); }
  post(path, body) { return this.request('POST', path, body === undefined ? {} : body); }
  patch(path, body) { return this.request('PATCH', path, body); }
}

/** Path segments are ids from the CRM: always encode them. */
export function userPath(userId, rest = '') {
  return `/v1/users/${encodeURIComponent(userId)}${rest}`;
}
