// The HTTP API under /api/v1: JSON in and out; errors are RFC 9457 problem details, thrown as
// ApiError. Writes made with the session cookie carry the session's CSRF token.

let csrfToken = null;

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || "";
    this.problem = problem;
  }
}

export function setCsrfToken(token) {
  csrfToken = token;
}

export function csrf() {
  return csrfToken || "";
}

export async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json() : { detail: await response.text() };
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// Sends a Blob (a recording, a CSV file) as the raw body of a POST.
export async function upload(path, blob) {
  const response = await fetch(`/api/v1${path}`, {
    method: "POST",
    headers: { Accept: "application/json", "Content-Type": blob.type || "application/octet-stream", "X-CSRF-Token": csrfToken || "" },
    body: blob,
    credentials: "same-origin",
  });
  const data = await response.json().catch(() => ({ detail: `HTTP ${response.status}` }));
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body ?? {});
export const put = (path, body) => call("PUT", path, body ?? {});
export const del = (path) => call("DELETE", path);

// Every item of a paged list, following next_cursor (for short lists such as tokens).
export async function page(path, cursor) {
  const sep = path.includes("?") ? "&" : "?";
  return get(cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path);
}
