// The JSON API client of the console: bearer tokens, one refresh on 401, and every error
// turned into words (RFC 9457 problem+json `detail` plus its field errors).

const TOKENS_KEY = "canvass.tokens";

export class ApiError extends Error {
  constructor(status, problem, path) {
    super(describeProblem(status, problem, path));
    this.status = status;
    this.problem = problem;
    this.path = path;
  }
}

/** A sentence for a failed request: the problem's detail and each field error. */
export function describeProblem(status, problem, path) {
  let text = (problem && (problem.detail || problem.title)) || `The server answered ${status}.`;
  if (status === 404 && problem && /not found/i.test(text) && path) {
    text = `${path} is not available on this server (404): this part of the API may not be built yet.`;
  }
  if (status === 405 && path) text = `${path} does not accept this request (405).`;
  const errors = (problem && Array.isArray(problem.errors)) ? problem.errors : [];
  if (errors.length) {
    text += "\n" + errors.map((e) => `• ${e.field ? e.field + ": " : ""}${e.message}`).join("\n");
  }
  return text;
}

export function loadTokens() {
  try { return JSON.parse(sessionStorage.getItem(TOKENS_KEY) || "null"); } catch { return null; }
}

export function saveTokens(tokens) {
  if (tokens) sessionStorage.setItem(TOKENS_KEY, JSON.stringify(tokens));
  else sessionStorage.removeItem(TOKENS_KEY);
}

let onSignedOut = () => {};
export function setSignedOutHandler(handler) { onSignedOut = handler; }

async function readProblem(response) {
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) {
    try { return await response.json(); } catch { return null; }
  }
  const text = await response.text().catch(() => "");
  return text ? { detail: text.slice(0, 300) } : null;
}

async function refreshTokens() {
  const tokens = loadTokens();
  if (!tokens || !tokens.refresh_token) return false;
  const response = await fetch("/api/auth/refresh", {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ refresh_token: tokens.refresh_token }),
  });
  if (!response.ok) return false;
  saveTokens(await response.json());
  return true;
}

/** Send a request; returns the raw Response when ok, throws ApiError otherwise. */
export async function request(method, path, { body, query, retry = true } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const headers = {};
  const tokens = loadTokens();
  if (tokens) headers.authorization = `Bearer ${tokens.access_token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, { detail: `Could not reach the server (${err.message}). Check the connection and try again.` }, path);
  }
  if (response.status === 401 && retry && tokens && !path.startsWith("/api/auth/")) {
    if (await refreshTokens()) return request(method, path, { body, query, retry: false });
    saveTokens(null);
    onSignedOut("Your session has ended; sign in again.");
  }
  if (!response.ok) throw new ApiError(response.status, await readProblem(response), url.pathname);
  return response;
}

export async function getJSON(path, query) { return (await request("GET", path, { query })).json(); }
export async function postJSON(path, body, query) {
  const response = await request("POST", path, { body, query });
  return response.status === 204 ? null : response.json();
}
export async function del(path) { await request("DELETE", path); }

/** Download a file that needs the bearer token (PDF sheets, exports) and save it under its name. */
export async function download(path, fallbackName) {
  const response = await request("GET", path);
  const disposition = response.headers.get("content-disposition") || "";
  const match = /filename="?([^";]+)"?/.exec(disposition);
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = match ? match[1] : fallbackName;
  document.body.append(link);
  link.click();
  setTimeout(() => { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
  return link.download;
}
