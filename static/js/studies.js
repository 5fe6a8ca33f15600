// The study browser: one patient's header and their studies, newest first,
// each with an "Open" link to the viewer.

import {
  appUrl, el, errorText, getJSON, modalityBadges, patientNameText, showMessage, WORKLIST_QUERY_KEY,
} from "./api.js";

const NOT_FOUND = "This patient does not exist or you may not see it.";

const $ = (id) => document.getElementById(id);
const browser = $("study-browser");
const errorBox = $("studies-error");

/** Point the back link at the worklist as the user left it (same tab only). */
function restoreBackLink() {
  let query = "";
  try {
    query = window.sessionStorage.getItem(WORKLIST_QUERY_KEY) || "";
  } catch {
    query = "";
  }
  if (query.startsWith("?")) {
    const link = $("back-to-worklist");
    link.href = link.getAttribute("href").split("?")[0] + query;
  }
}

/** Return a DICOM time (HHMMSS.FFFFFF, HHMM, or HH:MM:SS) as HH:MM, or "". */
function shortTime(value) {
  const digits = String(value || "").replaceAll(":", "");
  if (!/^\d{4}/.test(digits)) return digits.length === 2 ? `${digits}:00` : "";
  return `${digits.slice(0, 2)}:${digits.slice(2, 4)}`;
}

/** Return the key that orders studies newest first (unknown dates last). */
function newestFirst(a, b) {
  const key = (study) => `${study.studyDate || "0000-00-00"} ${shortTime(study.studyTime) || "00:00"}`;
  return key(b).localeCompare(key(a));
}

/** Build the table row of one study; every DICOM value goes in as text. */
function studyRow(study) {
  const description = el("td", { className: "study-description", text: study.description });
  if (!study.isStable) {
    description.append(el("span", {
      className: "badge text-bg-warning ms-2",
      text: "incoming",
      attrs: { title: "The PACS is still receiving this study" },
    }));
  }
  if (study.isNew) {
    description.append(el("span", {
      className: "badge text-bg-success ms-2",
      text: "new",
      attrs: { title: "New since your last login" },
    }));
  }
  const open = el("a", {
    className: "btn btn-primary btn-sm",
    text: "Open",
    attrs: { href: appUrl("/viewer?studyUID=" + encodeURIComponent(study.studyUID)) },
  });
  return el("tr", { attrs: { "data-study-uid": study.studyUID } },
    el("td", { className: "study-date text-nowrap", text: study.studyDate }),
    el("td", { className: "study-time", text: shortTime(study.studyTime) }),
    description,
    modalityBadges(study.modalities),
    el("td", { text: study.accessionNumber }),
    el("td", { text: study.referringPhysician }),
    el("td", { className: "text-end", text: study.seriesCount }),
    el("td", { className: "text-end", text: study.instanceCount }),
    el("td", { className: "text-end" }, open));
}

/** Show the patient header. */
function showPatient(patient, studyCount) {
  const name = patientNameText(patient.patientName);
  $("patient-name").textContent = name;
  $("patient-name").classList.toggle("fst-italic", name !== patient.patientName);
  $("patient-id").textContent = patient.patientID || "—";
  $("patient-birth-date").textContent = patient.birthDate || "—";
  $("patient-sex").textContent = patient.sex || "—";
  $("patient-study-count").textContent = `${studyCount} ${studyCount === 1 ? "study" : "studies"}`;
  $("patient-header").hidden = false;
  document.title = `${name} · pacs_lite`;
}

/** Load and show the patient's studies. */
async function loadStudies() {
  try {
    const data = await getJSON("/api/study_list_api", { patientId: browser.dataset.patientId });
    const studies = [...data.studies].sort(newestFirst);
    showPatient(data.patient, studies.length);
    $("study-rows").replaceChildren(...studies.map(studyRow));
    $("studies-list").hidden = studies.length === 0;
    $("studies-empty").hidden = studies.length > 0;
  } catch (error) {
    showMessage(errorBox, error.status === 404 ? NOT_FOUND : errorText(error));
  } finally {
    $("studies-loading").hidden = true;
  }
}

restoreBackLink();
loadStudies();
