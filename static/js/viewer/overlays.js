// The four corner overlays of a viewport: who and when (from the study's
// JSON), where in the series, slice geometry, and the current window and zoom.

import { patientNameText } from "../api.js";
import { tagNumber } from "./dicom.js";
import { currentWindow, fmt } from "./presets.js";

/** Return the magnification of a viewport: screen (CSS) pixels per image pixel, or null. */
export function magnification(viewport) {
  try {
    const { imageData } = viewport.getImageData() || {};
    if (!imageData) return null;
    const a = viewport.worldToCanvas(imageData.indexToWorld([0, 0, 0]));
    const b = viewport.worldToCanvas(imageData.indexToWorld([1, 0, 0]));
    const scale = Math.hypot(b[0] - a[0], b[1] - a[1]);
    return Number.isFinite(scale) && scale > 0 ? scale : null;
  } catch {
    return null;
  }
}

/** Return [row spacing, column spacing, note] from the file's PixelSpacing or ImagerPixelSpacing, or null. */
function pixelSpacing(cs, imageId) {
  for (const [keyword, note] of [["PixelSpacing", ""], ["ImagerPixelSpacing", " (detector)"]]) {
    const row = tagNumber(cs, imageId, keyword, 0);
    const column = tagNumber(cs, imageId, keyword, 1);
    if (row > 0 && column > 0) return [row, column, note];
  }
  return null;
}

/** Return a millimetre value as short text. */
function mm(value) {
  return `${Number(value.toFixed(2))} mm`;
}

/** Return the lines of each corner for the image a pane shows now. */
export function overlayLines(cs, pane) {
  const { study, patient } = pane.studyData;
  const viewport = pane.viewport;
  const index = pane.currentIndex;
  const entry = pane.stack[index];
  const imageId = entry ? entry.imageId : null;
  const series = pane.series || {};

  const topLeft = [
    patientNameText(patient && patient.patientName),
    patient && patient.patientID ? `ID ${patient.patientID}` : "",
    [study.studyDate, (study.studyTime || "").replace(/^(\d\d)(\d\d).*/, "$1:$2")].filter(Boolean).join(" "),
    study.description || "",
  ];

  const topRight = [
    [series.modality, series.seriesNumber != null ? `Se ${series.seriesNumber}` : ""].filter(Boolean).join(" · "),
    series.seriesDescription || "",
    entry ? `Im ${index + 1}/${pane.stack.length}` : "",
    entry && entry.frames > 1 ? `Fr ${entry.frame}/${entry.frames} of #${entry.instanceNumber ?? "?"}` : "",
  ];

  // From the file itself: the metadata modules report 0 when these tags are absent.
  const location = imageId ? tagNumber(cs, imageId, "SliceLocation") : null;
  const thickness = imageId ? tagNumber(cs, imageId, "SliceThickness") : null;
  const bottomLeft = [];
  if (location !== null) bottomLeft.push(`Loc ${mm(location)}`);
  if (thickness !== null && thickness > 0) bottomLeft.push(`Thick ${mm(thickness)}`);
  const spacing = imageId ? pixelSpacing(cs, imageId) : null;
  if (spacing) bottomLeft.push(`Pixel ${Number(spacing[1].toFixed(3))} × ${Number(spacing[0].toFixed(3))} mm${spacing[2]}`);

  const bottomRight = [];
  const voi = viewport && imageId ? currentWindow(cs, viewport) : null;
  if (voi) bottomRight.push(`W ${fmt(voi.width)} L ${fmt(voi.center)}`);
  const zoom = viewport && imageId ? magnification(viewport) : null;
  if (zoom) bottomRight.push(`Zoom ${zoom.toFixed(2)}×`);
  const presentation = viewport && imageId ? viewport.getViewPresentation() : null;
  if (presentation) {
    const marks = [];
    if (presentation.rotation) marks.push(`Rot ${Math.round(presentation.rotation)}°`);
    if (presentation.flipHorizontal) marks.push("Flip H");
    if (presentation.flipVertical) marks.push("Flip V");
    if (pane.inverted) marks.push("Inverted");
    if (marks.length) bottomRight.push(marks.join(" · "));
  }

  return { tl: topLeft, tr: topRight, bl: bottomLeft, br: bottomRight };
}

/** Write each corner's lines into its overlay element, one line per div, as text. */
export function renderOverlays(elements, lines) {
  for (const corner of ["tl", "tr", "bl", "br"]) {
    const wanted = lines[corner].filter((line) => line);
    const box = elements[corner];
    // Rebuilding only what changed keeps scrolling cheap (this runs on every render).
    if (box.dataset.text === wanted.join("\n")) continue;
    box.dataset.text = wanted.join("\n");
    box.replaceChildren(...wanted.map((line) => {
      const row = document.createElement("div");
      row.textContent = line;
      return row;
    }));
  }
}
