// The worklist page: search as one types, sort, filter by modality and study
// date, page through the patients, and open one with the mouse or the keyboard.
// Its state lives in the URL query string, so reload and back keep it.

import {
  appUrl, el, errorText, getJSON, modalityBadges, patientNameText, postJSON, showMessage, WORKLIST_QUERY_KEY,
} from "./api.js";

const SEARCH_DELAY_MS = 250;
const CACHE_AGE_REFRESH_MS = 30_000;
// The columns the API sorts by, each with the order a first click gives.
const SORT_ORDERS = { name: "asc", patient_id: "asc", last_study_date: "desc" };
const DEFAULT_SORT = "last_study_date";
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

const $ = (id) => document.getElementById(id);
const searchInput = $("search");
const modalitySelect = $("modality");
const dateFromInput = $("date-from");
const dateToInput = $("date-to");
const presetButtons = [...document.querySelectorAll("#date-presets [data-preset]")];
const sortHeaders = [...document.querySelectorAll("#patients-table th[data-sort]")];
const table = $("patients-table");
const rowsBody = $("patient-rows");
const errorBox = $("worklist-error");
const emptyNote = $("worklist-empty");
const loadingNote = $("worklist-loading");
const pager = $("worklist-pager");
const previousButton = $("page-previous");
const nextButton = $("page-next");
const pageOf = $("page-of");
const summary = $("worklist-summary");
const cacheAge = $("cache-age");
const cacheWarning = $("cache-warning");

const state = readState(new URLSearchParams(window.location.search));
let pageCount = 1;
let highlighted = -1;
let searchTimer = 0;
let inFlight = null;
let cache = null; // {syncedAt, ageSeconds, orthancError} and when we received it
// Where pages start: the nextCursor of the page before each, for the list they were read from. With a
// cursor the server seeks to the page along its index instead of counting every row before it.
const pageCursors = { list: "", byPage: new Map() };

// ------------------------------------------------------------------ state

/** Return the worklist state a query string describes, ignoring what is not valid. */
function readState(params) {
  const sortParam = params.get("sort") || "";
  const sort = Object.hasOwn(SORT_ORDERS, sortParam) ? sortParam : DEFAULT_SORT;
  const orderParam = params.get("order");
  const page = Number.parseInt(params.get("page") || "1", 10);
  const date = (name) => (ISO_DATE.test(params.get(name) || "") ? params.get(name) : "");
  return {
    search: (params.get("search") || "").trim(),
    modality: (params.get("modality") || "").trim().toUpperCase(),
    date_from: date("date_from"),
    date_to: date("date_to"),
    sort,
    order: orderParam === "asc" || orderParam === "desc" ? orderParam : SORT_ORDERS[sort],
    page: Number.isFinite(page) && page >= 1 ? page : 1,
  };
}

/** Return the query string of the state, leaving out what is at its default. */
function queryString() {
  const params = new URLSearchParams();
  for (const key of ["search", "modality", "date_from", "date_to"]) {
    if (state[key]) params.set(key, state[key]);
  }
  if (state.sort !== DEFAULT_SORT || state.order !== SORT_ORDERS[state.sort]) {
    params.set("sort", state.sort);
    params.set("order", state.order);
  }
  if (state.page > 1) params.set("page", String(state.page));
  const text = params.toString();
  return text ? "?" + text : "";
}

/** Put the state in the address bar (without a new history entry) and remember it for the back link. */
function saveState() {
  const query = queryString();
  window.history.replaceState(null, "", window.location.pathname + query);
  try {
    window.sessionStorage.setItem(WORKLIST_QUERY_KEY, query);
  } catch {
    // Storage can be off (private mode, policy); the back link then goes to the plain worklist.
  }
}

/** Apply a change of the state: URL, controls, then the list. */
function stateChanged() {
  saveState();
  showControls();
  loadPatients();
}

// --------------------------------------------------------------- controls

/** Return a local date as YYYY-MM-DD, `daysAgo` days before today. */
function localDate(daysAgo = 0) {
  const day = new Date();
  day.setDate(day.getDate() - daysAgo);
  const pad = (n) => String(n).padStart(2, "0");
  return `${day.getFullYear()}-${pad(day.getMonth() + 1)}-${pad(day.getDate())}`;
}

/** Return the [from, to] dates of a preset button. */
function presetRange(preset) {
  switch (preset) {
    case "today": return [localDate(0), localDate(0)];
    case "yesterday": return [localDate(1), localDate(1)];
    case "7": return [localDate(6), localDate(0)];
    case "30": return [localDate(29), localDate(0)];
    default: return ["", ""];
  }
}

/** Make the form controls and column headers show the state. */
function showControls() {
  if (document.activeElement !== searchInput) searchInput.value = state.search;
  if (state.modality && !modalitySelect.querySelector(`option[value="${CSS.escape(state.modality)}"]`)) {
    modalitySelect.append(el("option", { text: state.modality, attrs: { value: state.modality } }));
  }
  modalitySelect.value = state.modality;
  dateFromInput.value = state.date_from;
  dateToInput.value = state.date_to;
  for (const button of presetButtons) {
    const [from, to] = presetRange(button.dataset.preset);
    const active = from === state.date_from && to === state.date_to;
    button.classList.toggle("active", active);
    button.setAttribute("aria-pressed", String(active));
  }
  for (const header of sortHeaders) {
    const button = header.querySelector("button");
    if (header.dataset.sort === state.sort) {
      header.setAttribute("aria-sort", state.order === "asc" ? "ascending" : "descending");
    } else {
      header.removeAttribute("aria-sort");
    }
    const next = header.dataset.sort === state.sort && state.order === "asc" ? "descending" : "ascending";
    button.title = `Sort by ${button.textContent.trim().toLowerCase()}, ${next}`;
  }
}

/** Take the search box's text into the state once the user pauses typing. */
function applySearch() {
  window.clearTimeout(searchTimer);
  const text = searchInput.value.trim();
  if (text === state.search) return;
  state.search = text;
  state.page = 1;
  stateChanged();
}

searchInput.addEventListener("input", () => {
  clearHighlight(); // Enter must not open a row of the list the user is typing away from
  window.clearTimeout(searchTimer);
  searchTimer = window.setTimeout(applySearch, SEARCH_DELAY_MS);
});

$("worklist-filters").addEventListener("submit", (event) => {
  event.preventDefault();
  applySearch();
});

modalitySelect.addEventListener("change", () => {
  state.modality = modalitySelect.value;
  state.page = 1;
  stateChanged();
});

for (const [input, key] of [[dateFromInput, "date_from"], [dateToInput, "date_to"]]) {
  input.addEventListener("change", () => {
    // A date input holds "" until the date typed in it is complete and valid.
    if (input.value === state[key]) return;
    state[key] = input.value;
    state.page = 1;
    stateChanged();
  });
}

for (const button of presetButtons) {
  button.addEventListener("click", () => {
    [state.date_from, state.date_to] = presetRange(button.dataset.preset);
    state.page = 1;
    stateChanged();
  });
}

$("clear-filters").addEventListener("click", () => {
  Object.assign(state, { search: "", modality: "", date_from: "", date_to: "", page: 1 });
  searchInput.value = "";
  stateChanged();
  searchInput.focus();
});

for (const header of sortHeaders) {
  header.querySelector("button").addEventListener("click", () => {
    const column = header.dataset.sort;
    if (state.sort === column) {
      state.order = state.order === "asc" ? "desc" : "asc";
    } else {
      state.sort = column;
      state.order = SORT_ORDERS[column];
    }
    state.page = 1;
    stateChanged();
  });
}

previousButton.addEventListener("click", () => {
  if (state.page <= 1) return;
  state.page -= 1;
  stateChanged();
});

nextButton.addEventListener("click", () => {
  if (state.page >= pageCount) return;
  state.page += 1;
  stateChanged();
});

// ------------------------------------------------------------------ list

/** Return what identifies the list shown: the state without the page. */
function listKey() {
  return JSON.stringify([state.search, state.modality, state.date_from, state.date_to, state.sort, state.order]);
}

/** Return the cursor of a page of the current list, or "" when it has none yet. */
function cursorOf(page) {
  return pageCursors.list === listKey() ? pageCursors.byPage.get(page) || "" : "";
}

/** Remember where the page after this one starts. */
function rememberCursor(page, nextCursor) {
  if (pageCursors.list !== listKey()) {
    pageCursors.list = listKey();
    pageCursors.byPage.clear();
  }
  if (nextCursor) pageCursors.byPage.set(page + 1, nextCursor);
}

/** Return the study browser URL of a patient. */
function studiesUrl(patient) {
  return appUrl("/studies?patientId=" + encodeURIComponent(patient.orthancId));
}

/** Build the table row of one patient; every DICOM value goes in as text. */
function patientRow(patient) {
  const href = studiesUrl(patient);
  const link = el("a", { text: patientNameText(patient.patientName), attrs: { href } });
  if (!patient.patientName || !patient.patientName.trim()) link.classList.add("fst-italic");
  const nameCell = el("td", { className: "patient-name" }, link);
  if (patient.hasNewStudies) {
    nameCell.append(el("span", {
      className: "badge text-bg-success ms-2",
      text: "new",
      attrs: { title: "New studies since your last login" },
    }));
  }
  return el("tr", { attrs: { "data-href": href } },
    nameCell,
    el("td", { className: "patient-id", text: patient.patientID }),
    el("td", { text: patient.birthDate }),
    el("td", { text: patient.sex }),
    modalityBadges(patient.modalities),
    el("td", { className: "text-end", text: patient.studyCount }),
    el("td", { className: "last-study-date", text: patient.lastStudyDate }));
}

/** Show one page of the API's answer. */
function showPatients(data) {
  const total = Number(data.total) || 0;
  const perPage = Number(data.per_page) || data.patients.length || 1;
  const page = Number(data.page) || state.page;
  pageCount = Math.max(1, Math.ceil(total / perPage));

  // A refresh of the same list keeps the highlighted patient highlighted.
  const keep = highlighted >= 0 ? rows()[highlighted]?.dataset.href : null;
  rowsBody.replaceChildren(...data.patients.map(patientRow));
  highlighted = -1;
  const again = keep ? rows().findIndex((row) => row.dataset.href === keep) : -1;
  if (again >= 0) highlight(again);
  emptyNote.hidden = data.patients.length > 0;
  table.hidden = data.patients.length === 0;

  pageOf.textContent = `Page ${page} of ${pageCount}`;
  previousButton.disabled = page <= 1;
  nextButton.disabled = page >= pageCount;
  const noun = total === 1 ? "patient" : "patients";
  if (data.patients.length === 0) {
    summary.textContent = `0 of ${total} ${noun}`;
  } else {
    const first = (page - 1) * perPage + 1;
    summary.textContent = `${first}–${first + data.patients.length - 1} of ${total} ${noun}`;
  }
  pager.hidden = total === 0;

  cache = data.cache ? { ...data.cache, receivedAt: Date.now() } : null;
  showCacheAge();
}

/** Fetch the worklist for the current state; a newer request cancels an older one. */
async function loadPatients() {
  if (inFlight) inFlight.abort();
  const controller = new AbortController();
  inFlight = controller;
  table.setAttribute("aria-busy", "true");
  try {
    const data = await getJSON("/api/patient_list_api", {
      search: state.search,
      sort: state.sort,
      order: state.order,
      modality: state.modality,
      date_from: state.date_from,
      date_to: state.date_to,
      page: state.page,
      cursor: cursorOf(state.page),
    }, { signal: controller.signal });
    if (controller.signal.aborted) return;
    const perPage = Number(data.per_page) || 1;
    if (data.patients.length === 0 && data.total > 0 && state.page > 1) {
      // The list shrank under a remembered page number: show its last page instead.
      state.page = Math.max(1, Math.ceil(data.total / perPage));
      saveState();
      loadPatients();
      return;
    }
    showMessage(errorBox, "");
    rememberCursor(state.page, data.nextCursor);
    showPatients(data);
  } catch (error) {
    if (error.name === "AbortError") return;
    rowsBody.replaceChildren();
    highlighted = -1;
    table.hidden = true;
    emptyNote.hidden = true;
    pager.hidden = true;
    showMessage(errorBox, errorText(error));
  } finally {
    if (inFlight === controller) {
      inFlight = null;
      table.removeAttribute("aria-busy");
      loadingNote.hidden = true;
    }
  }
}

// ------------------------------------------------------------ cache age

/** Return "just now", "4 min ago", "3 h ago" or "2 days ago" for an age in seconds. */
function ago(seconds) {
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 2 * 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} days ago`;
}

/** Show how old the cache is, and warn when the last sync could not reach the PACS. */
function showCacheAge() {
  if (!cache) {
    cacheAge.textContent = "";
    showMessage(cacheWarning, "");
    return;
  }
  if (!cache.syncedAt) {
    cacheAge.textContent = "Not synced with the PACS yet";
    cacheAge.removeAttribute("title");
  } else {
    const elapsed = (Date.now() - cache.receivedAt) / 1000;
    // The server's own age avoids trusting this computer's clock; syncedAt is the fallback.
    const age = Number.isFinite(cache.ageSeconds)
      ? cache.ageSeconds + elapsed
      : (Date.now() - Date.parse(cache.syncedAt)) / 1000;
    cacheAge.textContent = `Updated ${ago(Math.max(0, age))}`;
    cacheAge.title = `Last synced with the PACS: ${new Date(cache.syncedAt).toLocaleString()}`;
  }
  showMessage(cacheWarning, cache.orthancError
    ? `The PACS is not reachable; the list may be out of date: ${cache.orthancError}`
    : "");
}

window.setInterval(showCacheAge, CACHE_AGE_REFRESH_MS);

// ------------------------------------------------- opening a patient

/** Return the rows of the list. */
function rows() {
  return [...rowsBody.querySelectorAll("tr[data-href]")];
}

/** Remove the highlight from every row. */
function clearHighlight() {
  for (const row of rows()) {
    row.classList.remove("table-active", "row-highlight");
    row.removeAttribute("aria-current");
  }
  highlighted = -1;
}

/** Highlight the row at this index (clamped to the list). */
function highlight(index) {
  const all = rows();
  if (all.length === 0) return;
  const next = Math.min(Math.max(index, 0), all.length - 1);
  clearHighlight();
  highlighted = next;
  all[next].classList.add("table-active", "row-highlight");
  all[next].setAttribute("aria-current", "true");
  all[next].scrollIntoView({ block: "nearest" });
}

/** Open a row's study browser, in a new tab when asked. */
function openRow(row, newTab) {
  const href = row.dataset.href;
  if (newTab) {
    window.open(href, "_blank", "noopener");
  } else {
    window.location.assign(href);
  }
}

rowsBody.addEventListener("click", (event) => {
  if (event.target.closest("a, button")) return; // the name link behaves as a link
  if (String(window.getSelection() || "")) return; // the user is selecting text to copy
  const row = event.target.closest("tr[data-href]");
  if (row) openRow(row, event.ctrlKey || event.metaKey || event.shiftKey);
});

rowsBody.addEventListener("auxclick", (event) => {
  if (event.button !== 1 || event.target.closest("a, button")) return;
  const row = event.target.closest("tr[data-href]");
  if (row) openRow(row, true);
});

/** Tell whether the user is typing in a field (where keys belong to the field). */
function isTyping(target) {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable) return true;
  if (target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return true;
  return target instanceof HTMLInputElement && !["button", "checkbox", "radio", "submit", "reset"].includes(target.type);
}

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || event.isComposing) return;
  const target = event.target;
  const typing = isTyping(target);
  const inSearch = target === searchInput;
  const inBreakGlass = target instanceof Element && target.closest("#break-glass");
  if (event.key === "/" && !typing) {
    event.preventDefault();
    searchInput.focus();
    searchInput.select();
  } else if (inBreakGlass) {
    // Keys in the break-glass panel are its own.
  } else if ((event.key === "ArrowDown" && (inSearch || !typing)) || (event.key === "j" && !typing)) {
    event.preventDefault();
    highlight(highlighted + 1);
  } else if ((event.key === "ArrowUp" && (inSearch || !typing)) || (event.key === "k" && !typing)) {
    event.preventDefault();
    highlight(highlighted - 1);
  } else if (event.key === "Enter" && highlighted >= 0 && (inSearch || target === document.body)) {
    const row = rows()[highlighted];
    if (row) {
      event.preventDefault();
      openRow(row, event.shiftKey);
    }
  } else if (event.key === "Escape" && inSearch) {
    searchInput.blur();
  }
});

// ------------------------------------------------------------ break-glass

const breakGlassForm = $("break-glass-form");
if (breakGlassForm) {
  const breakGlassError = $("break-glass-error");
  breakGlassForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const patientID = $("break-glass-patient-id").value.trim();
    const reason = $("break-glass-reason").value.trim();
    if (!patientID) {
      showMessage(breakGlassError, "Enter the patient ID.");
      return;
    }
    if (reason.length < 10) {
      showMessage(breakGlassError, "Give a reason of at least 10 characters.");
      return;
    }
    const button = breakGlassForm.querySelector("button[type=submit]");
    button.disabled = true;
    showMessage(breakGlassError, "");
    try {
      const data = await postJSON("/api/break_glass", { patientID, reason });
      window.location.assign(appUrl("/studies?patientId=" + encodeURIComponent(data.patientId)));
    } catch (error) {
      showMessage(breakGlassError, errorText(error));
      button.disabled = false;
    }
  });
}

// ---------------------------------------------------------------- start

// A page restored from the back-forward cache shows an old list; fetch it again.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) loadPatients();
});

// Text typed into Search before this module ran (the page was still loading) is a search too.
const typedEarly = searchInput.value.trim();
if (typedEarly && typedEarly !== state.search) {
  state.search = typedEarly;
  state.page = 1;
}

saveState();
showControls();
loadPatients();
