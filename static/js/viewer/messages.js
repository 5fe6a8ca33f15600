// What the viewer tells the user when something fails: a study that cannot
// be opened, an image that cannot be fetched or decoded, an ended session.

import { ApiError, errorText, getJSON } from "../api.js";

export const STUDY_NOT_FOUND =
  "This study was not found: it may have been deleted from the PACS, or you may not see it.";
export const PACS_DOWN =
  "The PACS (Orthanc) is not reachable, so the images cannot be shown. Try again in a minute.";
export const VIEWER_BROKEN =
  "The image viewer could not start in this browser. Reload the page; if it keeps failing, " +
  "ask the administrator to rebuild the viewer files (npm run build).";
const SESSION_ENDED = "Your session has ended. Log in again.";
const NOT_REACHABLE = "The server could not be reached. Check the network connection and try again.";

// Names of the compressed transfer syntaxes, for the "could not be decoded" message.
const TRANSFER_SYNTAXES = {
  "1.2.840.10008.1.2.4.50": "JPEG baseline",
  "1.2.840.10008.1.2.4.51": "JPEG extended",
  "1.2.840.10008.1.2.4.57": "JPEG lossless",
  "1.2.840.10008.1.2.4.70": "JPEG lossless SV1",
  "1.2.840.10008.1.2.4.80": "JPEG-LS lossless",
  "1.2.840.10008.1.2.4.81": "JPEG-LS near-lossless",
  "1.2.840.10008.1.2.4.90": "JPEG 2000 lossless",
  "1.2.840.10008.1.2.4.91": "JPEG 2000",
  "1.2.840.10008.1.2.4.201": "HTJ2K lossless",
  "1.2.840.10008.1.2.4.203": "HTJ2K",
  "1.2.840.10008.1.2.5": "RLE lossless",
  "1.2.840.10008.1.2.1.99": "deflated little endian",
};

/** Return the message for a failed load_study_fast or study_list_api call. */
export function studyErrorText(error) {
  if (error instanceof ApiError) {
    if (error.status === 404) return STUDY_NOT_FOUND;
    if (error.status === 502 || error.status === 504) return PACS_DOWN;
  }
  return errorText(error);
}

/** Return the HTTP status carried by an image loading error (an XHR, or the loader's error), or null. */
export function requestStatus(error) {
  if (error && typeof error === "object" && "status" in error && typeof error.status === "number") {
    return error.status;
  }
  if (error && error.request && typeof error.request.status === "number") return error.request.status;
  return null;
}

/** Return why one image could not be shown, in the user's words. */
export function imageErrorText(cs, error, imageId) {
  if (error && !(error instanceof Error) && typeof error === "object" && error.error) {
    return imageErrorText(cs, error.error, imageId); // an IMAGE_LOAD_ERROR event's detail
  }
  const status = requestStatus(error);
  if (status === 401) return SESSION_ENDED;
  if (status === 404) return "This image is no longer in the PACS, or you may not see it.";
  if (status === 502 || status === 503 || status === 504) return PACS_DOWN;
  if (status === 0) return NOT_REACHABLE;
  if (status !== null && status >= 400) return `The server refused this image (HTTP ${status}).`;
  let syntax = "";
  try {
    const uid = (cs.core.metaData.get("transferSyntax", imageId) || {}).transferSyntaxUID;
    if (uid) syntax = ` (${TRANSFER_SYNTAXES[uid] || "transfer syntax " + uid})`;
  } catch {
    syntax = "";
  }
  const detail = error && error.message ? `: ${error.message}` : "";
  return `This image could not be decoded${syntax}${detail}.`;
}

let sessionCheck = null;

/**
 * After an image request failed, ask the server whether the session still lives;
 * when it ended, api.js sends the browser to the login form, which comes back here.
 */
export function checkSession() {
  if (!sessionCheck) {
    sessionCheck = getJSON("/auth/check_session")
      .catch(() => null)
      .finally(() => {
        sessionCheck = null;
      });
  }
  return sessionCheck;
}
