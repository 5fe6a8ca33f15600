// Window/level presets: the file's own windows first (the default), then the
// usual CT windows in Hounsfield units, and the image's full range.

import { tagText } from "./dicom.js";

// Common CT windows (width, centre in HU); keys 2–5 choose them.
const CT_PRESETS = [
  { key: "brain", label: "Brain", width: 80, center: 40 },
  { key: "lung", label: "Lung", width: 1500, center: -600 },
  { key: "bone", label: "Bone", width: 2000, center: 400 },
  { key: "abdomen", label: "Abdomen", width: 400, center: 50 },
];

/** Return the window centres/widths written in an image's file, with their explanations. */
export function fileWindows(cs, imageId) {
  const voi = cs.core.metaData.get("voiLutModule", imageId) || {};
  const centers = [].concat(voi.windowCenter ?? []);
  const widths = [].concat(voi.windowWidth ?? []);
  const windows = [];
  for (let i = 0; i < Math.min(centers.length, widths.length); i += 1) {
    if (!Number.isFinite(centers[i]) || !(widths[i] > 0)) continue;
    const explanation = tagText(cs, imageId, "WindowCenterWidthExplanation", i);
    windows.push({ center: centers[i], width: widths[i], explanation });
  }
  return windows;
}

/**
 * Return the presets offered for an image: [{key, label, width?, center?}]. The file's window comes
 * first (key 1), then for CT the four usual windows (keys 2–5), then the file's other windows and the full range.
 */
export function presetsFor(cs, modality, imageId) {
  const windows = fileWindows(cs, imageId);
  const fromFile = windows.map((w, i) => {
    const name = w.explanation || (windows.length > 1 ? `window ${i + 1}` : "");
    return {
      key: i === 0 ? "default" : `file-${i}`,
      label: `${i === 0 ? "Default" : "File"}${name ? " " + name : ""} (${fmt(w.width)} / ${fmt(w.center)})`,
      width: w.width,
      center: w.center,
    };
  });
  const range = imageRange(cs, imageId);
  const presets = fromFile.length ? [fromFile[0]] : [{ key: "default", label: "Default (full range)", range }];
  if (modality === "CT") {
    for (const p of CT_PRESETS) presets.push({ ...p, label: `${p.label} (${p.width} / ${p.center})` });
  }
  presets.push(...fromFile.slice(1));
  if (fromFile.length && range) presets.push({ key: "full", label: "Full range", range });
  return presets;
}

/** Return a number as short text for the W/L labels. */
export function fmt(value) {
  if (!Number.isFinite(value)) return "–";
  return Math.abs(value) >= 100 || Number.isInteger(value) ? String(Math.round(value)) : value.toFixed(1);
}

/** Return the full range {lower, upper} of a loaded image, in modality units, or null. */
function imageRange(cs, imageId) {
  const image = cs.core.cache.getImage(imageId);
  if (!image || !Number.isFinite(image.minPixelValue) || !Number.isFinite(image.maxPixelValue)) return null;
  const lower = image.minPixelValue;
  const upper = image.maxPixelValue;
  return { lower, upper: upper > lower ? upper : lower + 1 };
}

/** Apply a preset to a stack viewport and draw it. */
export function applyPreset(cs, viewport, preset) {
  const voiRange = preset.width > 0
    ? cs.core.utilities.windowLevel.toLowHighRange(preset.width, preset.center)
    : preset.range;
  if (!voiRange) return;
  viewport.setProperties({ voiRange });
  viewport.render();
}

/** Tell whether a viewport's window is this preset's. */
export function presetMatches(cs, viewport, preset) {
  const { voiRange } = viewport.getProperties() || {};
  if (!voiRange) return false;
  const wanted = preset.width > 0
    ? cs.core.utilities.windowLevel.toLowHighRange(preset.width, preset.center)
    : preset.range;
  return Boolean(wanted) && Math.abs(wanted.lower - voiRange.lower) < 0.5 && Math.abs(wanted.upper - voiRange.upper) < 0.5;
}

/** Return the viewport's window as {width, center} (DICOM's definition), or null before an image is shown. */
export function currentWindow(cs, viewport) {
  const { voiRange } = viewport.getProperties() || {};
  if (!voiRange || !Number.isFinite(voiRange.lower) || !Number.isFinite(voiRange.upper)) return null;
  const { windowWidth, windowCenter } = cs.core.utilities.windowLevel.toWindowLevel(voiRange.lower, voiRange.upper);
  return { width: windowWidth, center: windowCenter };
}
