// The JSON API client of the console: bearer tokens, one refresh on 401, and every error
// turned into words (RFC 9457 problem+json `detail` plus its field errors).
//
// Tokens: the short-lived access token lives only in this module's memory (never in
// sessionStorage or localStorage, where injected script could read it). The refresh token
// never reaches script at all: sign-in, join and refresh send the console's header and the
// server answers it as an HttpOnly, SameSite=Strict cookie scoped to /api/auth. A reload
// gets a new access token from that cookie. See SECURITY.md ("The console").

const CONSOLE_MODE = { "x-canvass-refresh-cookie": "1" };
let accessToken = null;

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

/** True while the console holds an access token (in memory). */
export function signedIn() { return accessToken !== null; }

/** Keep an access token from a token response (the refresh token is in the HttpOnly cookie), or forget it. */
export function saveTokens(tokens) { accessToken = tokens && tokens.access_token ? tokens.access_token : null; }

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

let refreshing = null;

/** Swap the refresh cookie for a new access token; false when there is no valid sign-in.
 * One refresh at a time: parallel 401s share it (a second use of a spent refresh token
 * would make the server revoke the whole sign-in). */
export function refreshTokens() {
  refreshing = refreshing || (async () => {
    try {
      const response = await fetch("/api/auth/refresh", { method: "POST", headers: CONSOLE_MODE, credentials: "same-origin" });
      saveTokens(response.ok ? await response.json() : null);
      return response.ok;
    } catch {
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** Send a request; returns the raw Response when ok, throws ApiError otherwise. */
export async function request(method, path, { body, query, retry = true } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const headers = path.startsWith("/api/auth/") ? { ...CONSOLE_MODE } : {};
  const token = accessToken;
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, { detail: `Could not reach the server (${err.message}). Check the connection and try again.` }, path);
  }
  if (response.status === 401 && retry && token && !path.startsWith("/api/auth/")) {
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
