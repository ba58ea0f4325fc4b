/**
 * The console's REST client: every call carries the access token as a
 * Bearer header, answers are JSON, and a refused or failed call rejects with
 * an Error whose message is the master's own (`error` of its JSON body).
 */

/** @typedef {Record<string, string | number | boolean | undefined | null>} Query */

/** @param {Query} [query] */
export function queryString(query = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === '') continue;
    params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

export class ApiError extends Error {
  /** @param {number} status @param {string} message @param {string | undefined} code */
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** @param {Response} res */
async function failure(res) {
  let message = `${res.status} ${res.statusText}`;
  let code;
  try {
    const body = await res.json();
    if (body && typeof body.error === 'string') message = body.error;
    if (body && typeof body.code === 'string') code = body.code;
  } catch {
    // Not JSON: the status line says enough.
  }
  return new ApiError(res.status, message, code);
}

/**
 * @param {() => string} getToken the token in use ('' when none)
 */
export function createApi(getToken) {
  /** @param {string} method @param {string} path @param {unknown} [body] */
  async function call(method, path, body) {
    const headers = /** @type {Record<string, string>} */ ({ accept: 'application/json' });
    const token = getToken();
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw await failure(res);
    return res.status === 204 ? undefined : res.json();
  }

  return {
    /** GET `path` with `query`: the parsed JSON answer. @param {string} path @param {Query} [query] */
    get: (path, query) => call('GET', `${path}${queryString(query)}`),
    /** @param {'POST' | 'PATCH' | 'PUT' | 'DELETE'} method @param {string} path @param {unknown} [body] */
    send: (method, path, body) => call(method, path, body),
    /**
     * Fetches `path` (e.g. `?format=csv`) with the token and saves it as
     * `filename` through a download link, so the browser's download flow runs.
     * @param {string} path @param {Query} query @param {string} filename
     */
    async download(path, query, filename) {
      const headers = /** @type {Record<string, string>} */ ({});
      const token = getToken();
      if (token) headers.authorization = `Bearer ${token}`;
      const res = await fetch(`${path}${queryString(query)}`, { headers });
      if (!res.ok) throw await failure(res);
      const url = URL.createObjectURL(await res.blob());
      const link = document.createElement('a');
      link.href = url;
      link.download = filename;
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    },
  };
}
