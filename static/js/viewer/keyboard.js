// Keyboard shortcuts of the viewer, and the help overlay that lists them.
// The table below is the one source of both.

import { el } from "../api.js";

/**
 * [keys shown in the help, what it does, the KeyboardEvent.key values, action(viewer, event)].
 * `viewer` is the controller main.js passes to bindShortcuts.
 */
const SHORTCUTS = [
  ["W", "Window/level tool on the left button", ["w", "W"], (v) => v.chooseTool("WindowLevel")],
  ["Z", "Zoom tool", ["z", "Z"], (v) => v.chooseTool("Zoom")],
  ["M", "Pan (move) tool", ["m", "M"], (v) => v.chooseTool("Pan")],
  ["L", "Length", ["l", "L"], (v) => v.chooseTool("Length")],
  ["A", "Angle", ["a", "A"], (v) => v.chooseTool("Angle")],
  ["R", "Rectangle ROI (mean, std)", ["r", "R"], (v) => v.chooseTool("RectangleROI")],
  ["E", "Ellipse ROI (mean, std)", ["e", "E"], (v) => v.chooseTool("EllipticalROI")],
  ["P", "Probe (value of one pixel)", ["p", "P"], (v) => v.chooseTool("Probe")],
  ["1 – 5", "W/L presets (1 = the file's window)", ["1", "2", "3", "4", "5"], (v, e) => v.preset(Number(e.key) - 1)],
  ["I", "Invert", ["i", "I"], (v) => v.invert()],
  ["] / [", "Rotate 90° clockwise / anticlockwise", ["]", "["], (v, e) => v.rotate(e.key === "]" ? 90 : -90)],
  ["H", "Flip horizontally", ["h", "H"], (v) => v.flip("horizontal")],
  ["V", "Flip vertically", ["v", "V"], (v) => v.flip("vertical")],
  ["0", "Reset the view", ["0"], (v) => v.reset()],
  ["↓ → / ↑ ←", "Next / previous image", ["ArrowDown", "ArrowRight", "ArrowUp", "ArrowLeft"],
    (v, e) => v.step(e.key === "ArrowDown" || e.key === "ArrowRight" ? 1 : -1)],
  ["PgDn / PgUp", "10 images on / back", ["PageDown", "PageUp"], (v, e) => v.step(e.key === "PageDown" ? 10 : -10)],
  ["Home / End", "First / last image", ["Home", "End"], (v, e) => v.jump(e.key === "Home" ? "first" : "last")],
  ["Space", "Cine: play / pause", [" "], (v) => v.toggleCine()],
  [", / .", "Cine: slower / faster", [",", "."], (v, e) => v.changeFps(e.key === "." ? 1 : -1)],
  ["Delete", "Delete the selected measurement", ["Delete", "Backspace"], (v) => v.deleteSelected()],
  ["C", "Delete every measurement of the viewport", ["c", "C"], (v) => v.clearMeasurements()],
  ["S", "Sync scrolling on / off (side by side)", ["s", "S"], (v) => v.toggleSync()],
  ["Tab", "Other viewport (side by side)", ["Tab"], (v) => v.otherPane()],
  ["?", "This help", ["?"], (v) => v.toggleHelp()],
];

/** Tell whether a key press belongs to a form control rather than to the viewer. */
function typedIntoControl(event) {
  const target = event.target;
  if (!(target instanceof Element)) return false;
  if (target.closest("input[type=number], input[type=text], input[type=search], select, textarea")) return true;
  // The slider moves itself with the arrows; buttons, links and summaries answer Space and Enter.
  if (target.matches("input[type=range]") && event.key.startsWith("Arrow")) return true;
  return event.key === " " && Boolean(target.closest("button, a, summary, input[type=checkbox]"));
}

/** Listen to the keyboard for the whole page and run the viewer's actions. */
export function bindShortcuts(viewer) {
  const byKey = new Map();
  for (const [, , keys, action] of SHORTCUTS) for (const key of keys) byKey.set(key, action);
  document.addEventListener("keydown", (event) => {
    // Not event.defaultPrevented: Cornerstone prevents the default of every key pressed on a viewport.
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typedIntoControl(event)) return;
    const action = byKey.get(event.key);
    if (!action) return;
    if (event.key === "Tab" && !viewer.comparing()) return; // keep Tab for focus moves
    if (viewer.helpOpen() && event.key !== "?") return; // the dialog handles Esc itself
    event.preventDefault();
    action(viewer, event);
  });
}

/** Fill the help overlay's table of keys. */
export function fillHelp(tbody) {
  tbody.replaceChildren(...SHORTCUTS.map(([keys, text]) =>
    el("tr", {}, el("th", {}, ...keys.split(" ").map((part) =>
      part === "/" || part === "–" ? ` ${part} ` : el("kbd", { text: part }))), el("td", { text }))));
}
