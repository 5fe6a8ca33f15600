// The small helpers every page module shares: calling the JSON API, showing
// its errors, and building DOM nodes without ever parsing DICOM text as HTML.

// The study browser's back link returns to the worklist with the query string kept under this key.
export const WORKLIST_QUERY_KEY = "pacs_lite.worklistQuery";

const NOT_REACHABLE = "The server could not be reached. Check the network connection and try again.";

/** An API call that failed; `message` is meant for the user. */
export class ApiError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/** Return the content of a <meta name=...> tag of the page, or "". */
function metaContent(name) {
  const meta = document.querySelector(`meta[name="${name}"]`);
  return meta ? meta.getAttribute("content") || "" : "";
}

/** Return a same-site URL for an app path, keeping the prefix the app is served under. */
export function appUrl(path) {
  return metaContent("app-root") + path;
}

/** Send the browser to the login form, coming back to this page afterwards. */
export function goToLogin() {
  const here = window.location.pathname + window.location.search;
  window.location.assign(appUrl("/auth/login?next=" + encodeURIComponent(here)));
}

/** Read a fetch response as the API's JSON envelope; throw an ApiError for every failure. */
async function readEnvelope(response) {
  if (response.status === 401) {
    goToLogin();
    throw new ApiError("Your session has ended. Log in again.", 401);
  }
  let body = null;
  if ((response.headers.get("Content-Type") || "").includes("application/json")) {
    try {
      body = await response.json();
    } catch {
      body = null;
    }
  }
  if (!response.ok || !body || body.success === false) {
    const message = body && body.error
      ? body.error
      : `The server answered with an error (${response.status} ${response.statusText}). Try again in a minute.`;
    throw new ApiError(message, response.status);
  }
  return body;
}

/** Fetch one API URL and return its JSON; an AbortError passes through untouched. */
async function call(url, init) {
  let response;
  try {
    response = await fetch(url, { credentials: "same-origin", ...init });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(NOT_REACHABLE);
  }
  return readEnvelope(response);
}

/** GET an API path with query parameters (empty values left out); return the JSON body. */
export function getJSON(path, params = {}, { signal } = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(key, String(value));
  }
  const text = query.toString();
  return call(appUrl(path) + (text ? "?" + text : ""), {
    headers: { Accept: "application/json" },
    signal,
  });
}

/** POST a JSON body to an API path with the page's CSRF token; return the JSON body. */
export function postJSON(path, body) {
  return call(appUrl(path), {
    method: "POST",
    headers: {
      Accept: "application/json",
      "Content-Type": "application/json",
      "X-CSRFToken": metaContent("csrf-token"),
    },
    body: JSON.stringify(body),
  });
}

/** Show a message in an alert element (or hide it when the text is empty). */
export function showMessage(element, text) {
  element.textContent = text || "";
  element.hidden = !text;
}

/** Return the message to show for an error thrown by getJSON/postJSON or by our own code. */
export function errorText(error) {
  if (error instanceof ApiError) return error.message;
  console.error(error);
  return "Something went wrong in this page. Reload it and try again.";
}

/**
 * Build an element: el("td", {className: "x", text: value}, child, ...).
 * Text always goes in through textContent, so DICOM values can never become markup.
 */
export function el(tag, { text, className, attrs } = {}, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

/** Return a cell holding one badge per modality. */
export function modalityBadges(modalities) {
  const cell = el("td", { className: "modalities" });
  for (const modality of modalities || []) {
    cell.append(el("span", { className: "badge text-bg-secondary me-1", text: modality }));
  }
  return cell;
}

/** Return the text to show for a patient name (the empty name is shown as such). */
export function patientNameText(name) {
  return name && name.trim() ? name : "(no name)";
}
