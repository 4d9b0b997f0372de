// Thin client for the control plane's /api/v1: JSON in and out, CSRF header on changes.

let csrfToken = null;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function readCookie(name) {
  const found = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") {
    // double submit: the token from login (or its cookie) goes back in a header
    const token = csrfToken || readCookie("confide_csrf");
    if (token) headers["X-CSRF-Token"] = token;
  }
  const resp = await fetch("/api/v1" + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const data = resp.headers.get("Content-Type")?.includes("application/json")
    ? await resp.json()
    : await resp.text();
  if (!resp.ok) {
    const err = data && data.error ? data.error : { code: "http_error", message: resp.statusText };
    throw new ApiError(resp.status, err.code, err.message);
  }
  return data;
}

export function setCsrf(token) {
  csrfToken = token;
}

export async function login(username, password) {
  const data = await api("POST", "/auth/login", { username, password });
  setCsrf(data.csrf_token);
  return data.user;
}

export async function me() {
  const data = await api("GET", "/auth/me");
  setCsrf(data.csrf_token);
  return data.user;
}

export async function logout() {
  await api("POST", "/auth/logout", {});
  setCsrf(null);
}
