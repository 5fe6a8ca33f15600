// The viewer page: one study's header, series panel and viewport, and a second
// viewport for a prior study side by side. It asks for the study (one
// load_study_fast call) while the Cornerstone bundle loads, shows the first
// image as soon as it is decoded, then loads the mouse tools, the thumbnails
// and the rest of the series behind it.
//
// `npm run build` bundles this module and its imports into static/vendor/viewer/viewer.js,
// the file the page loads.

import { appUrl, getJSON, patientNameText } from "../api.js";
import { CompareMenu, ScrollSync, studyLabel, viewerUrl } from "./compare.js";
import { RENDERING_ENGINE_ID, startCornerstone, startTools } from "./cornerstone.js";
import { bindShortcuts, fillHelp } from "./keyboard.js";
import { VIEWER_BROKEN, checkSession, studyErrorText } from "./messages.js";
import { Pane, stackOf } from "./pane.js";
import { Prefetcher } from "./prefetch.js";
import { applyPreset, presetMatches, presetsFor } from "./presets.js";
import { SeriesPanel } from "./series.js";
import { LEFT_BUTTON_TOOLS, Tools } from "./tools.js";

const $ = (id) => document.getElementById(id);
const root = $("viewer");
const studyUID = root.dataset.studyUid;

performance.mark("viewer:start");
// Both start at once: the study's JSON (this request takes the answer to the page's preload of the
// same URL) and Cornerstone's image bundle, with its decode worker.
const studyRequest = getJSON("/api/load_study_fast", { studyUID });
let prefetcher = null; // set once the viewer runs, so that an ended session can stop it
const bundles = {
  bundleUrl: root.dataset.cornerstoneBundle,
  wasmUrl: root.dataset.cornerstoneWasm,
  workerUrl: root.dataset.decodeWorker,
};
const cornerstone = startCornerstone(bundles, (status) => {
  if (status === 401 || status === 0) {
    // An image request was refused or unanswered: find out whether the session ended (then log in again).
    checkSession().then((answer) => {
      if (!answer && prefetcher) prefetcher.halt();
    });
  }
});
cornerstone.catch(() => {}); // reported where it is awaited; not an unhandled rejection before that

/** Show a message for the whole viewer instead of the images. */
function failViewer(text, retry = false) {
  $("viewer-error-text").textContent = text;
  $("viewer-retry").hidden = !retry;
  $("viewer-error").hidden = false;
  $("viewer-body").hidden = true;
  $("viewer-toolbar").hidden = true;
  root.dataset.state = "error";
}

/** Fill the header with the study's own patient and study values. */
function showHeader({ patient, study }) {
  const name = patientNameText(patient && patient.patientName);
  $("patient-name").textContent = name;
  $("patient-name").classList.toggle("fst-italic", !(patient && patient.patientName));
  $("patient-id").textContent = (patient && patient.patientID) || "—";
  $("patient-birth-date").textContent = (patient && patient.birthDate) || "—";
  $("patient-sex").textContent = (patient && patient.sex) || "—";
  $("study-date").textContent = [study.studyDate, (study.studyTime || "").replace(/^(\d\d)(\d\d).*/, "$1:$2")]
    .filter(Boolean).join(" ") || "—";
  $("study-description").textContent = study.description || "(no description)";
  $("study-facts").hidden = false;
  if (patient && patient.orthancId) {
    $("back-to-studies").href = appUrl("/studies?patientId=" + encodeURIComponent(patient.orthancId));
  }
  document.title = `${name} · ${study.studyDate || "study"} · pacs_lite`;
}

/** Fetch the first image into the browser's HTTP cache while the bundle still loads. */
function warmFirstImage(studyData) {
  const first = studyData.images[0];
  if (!first) return;
  const url = stackOf([first], first.seriesUID)[0].imageId.replace(/^wadouri:/, "");
  fetch(url, { credentials: "same-origin" }).then((response) => response.arrayBuffer()).catch(() => {});
}

/** The page controller: panes, tools, presets, compare; the keyboard calls its methods. */
class Viewer {
  /** Build the rendering engine, the tools, both panes and the menus for a study (load_study_fast's JSON). */
  constructor(cs, studyData) {
    this.cs = cs;
    this.engine = new cs.core.RenderingEngine(RENDERING_ENGINE_ID);
    this.tools = null; // the mouse tools, once loaded (loadTools)
    this.toolsLoading = null;
    this.toolName = "WindowLevel"; // the tool chosen for the left button, loaded or not
    this.prefetcher = new Prefetcher(cs);
    prefetcher = this.prefetcher;
    this.sync = new ScrollSync(cs);
    this.presets = [];
    this.seriesPanel = new SeriesPanel($("series-lists"), $("series-heading"), (uid, seriesUID) => this.pickSeries(uid, seriesUID));
    this.compareMenu = new CompareMenu($("compare-menu"), $("compare-status"), $("compare-list"), (study) => this.openPrior(study));
    const callbacks = {
      cs,
      engine: this.engine,
      prefetcher: this.prefetcher,
      onActivate: (pane) => this.activate(pane),
      onImage: (pane) => this.imageChanged(pane),
      onSeries: (pane) => this.seriesChanged(pane),
      onWindow: (pane) => this.windowChanged(pane),
      onLoaded: (pane) => this.seriesLoaded(pane),
    };
    this.panes = [0, 1].map((n) => new Pane($(`pane-${n}`), { ...callbacks, viewportId: `viewport-${n}` }));
    this.active = this.panes[0];
    this.mainStudy = studyData;
    this.firstImageSeen = false;
    this.wireToolbar();
    this.watchFirstImage();
    $("compare-menu").hidden = false;
    $("compare-menu").addEventListener("toggle", (event) => {
      if (event.target.open) this.compareMenu.load(studyData.patient, studyData.studyUID);
    });
    // Images the viewports fail to show, however they were asked for (keys, wheel, cine, slider).
    cs.core.eventTarget.addEventListener(cs.core.Enums.Events.IMAGE_LOAD_ERROR, (event) => this.imageFailed(event.detail));
    new ResizeObserver(() => this.engine.resize(true, true)).observe($("viewport-grid"));
  }

  /** Show the study in the first viewport. */
  async start() {
    $("viewer-body").hidden = false;
    $("viewer-toolbar").hidden = false;
    this.enablePane(this.panes[0]);
    this.activate(this.panes[0]);
    await this.panes[0].showStudy(this.mainStudy);
  }

  /** Import the mouse tools (once) and put them on the enabled viewports. */
  loadTools() {
    if (!this.toolsLoading) {
      this.toolsLoading = startTools(this.cs, root.dataset.cornerstoneTools).then(() => {
        this.tools = new Tools(this.cs);
        this.tools.choose(this.toolName);
        for (const pane of this.panes) if (pane.enabled) this.tools.adoptPane(pane);
        performance.mark("viewer:tools-ready");
        root.dataset.tools = "ready";
      }).catch((error) => {
        // The images still show and the keys still work; only the mouse tools are missing.
        console.error(error);
        root.dataset.tools = "failed";
      });
    }
    return this.toolsLoading;
  }

  /** Create a pane's viewport, with the mouse tools when they are loaded. */
  enablePane(pane) {
    if (pane.enabled) return;
    pane.enable();
    if (this.tools) this.tools.addPane(pane);
  }

  /** Remove a pane's viewport. */
  disablePane(pane) {
    if (!pane.enabled) return;
    if (this.tools) this.tools.removePane(pane);
    pane.disable();
  }

  /** Mark the moment the first image is on screen (for the benchmark), then do the low-priority work. */
  watchFirstImage() {
    const pane = this.panes[0];
    const rendered = this.cs.core.Enums.Events.IMAGE_RENDERED;
    const onRender = () => {
      if (pane.shownIndex < 0 || this.firstImageSeen) return;
      this.firstImageSeen = true;
      pane.element.removeEventListener(rendered, onRender);
      performance.mark("viewer:first-image");
      root.dataset.firstImage = "shown";
      setTimeout(() => {
        this.loadTools();
        this.seriesPanel.drawThumbnails(this.cs, this.mainStudy);
        this.compareMenu.load(this.mainStudy.patient, this.mainStudy.studyUID);
      }, 0);
    };
    pane.element.addEventListener(rendered, onRender);
  }

  // ---- panes

  /** Make a pane the one the toolbar, the keys and the series panel act on. */
  activate(pane) {
    if (!pane.enabled) return;
    const changed = this.active !== pane;
    this.active = pane;
    for (const p of this.panes) p.root.classList.toggle("is-active", p === pane && this.comparing());
    if (changed || !this.presets.length) this.seriesChanged(pane);
    this.showCineState();
  }

  /** The series of a pane changed: its series panel, presets and title follow. */
  seriesChanged(pane) {
    if (pane !== this.active || !pane.studyData) return;
    const label = this.comparing() ? studyLabel(pane.studyData.study) : "";
    this.seriesPanel.show(pane.studyData, pane.series && pane.series.seriesUID, label);
    this.fillPresets(pane);
    this.showCineState();
    this.showViewState();
  }

  /** A pane shows a new image: the other pane may follow. */
  imageChanged(pane) {
    if (this.comparing()) {
      const other = this.panes[pane === this.panes[0] ? 1 : 0];
      this.sync.follow(pane, other, pane === this.panes[0]);
    }
  }

  /** The W/L of a pane changed (drag or preset): the preset list shows which one, if any. */
  windowChanged(pane) {
    if (pane !== this.active) return;
    const viewport = pane.viewport;
    const match = viewport && this.presets.find((preset) => presetMatches(this.cs, viewport, preset));
    $("wl-preset").value = match ? match.key : "custom";
  }

  /** Tell the pane whose current image failed to load why. */
  imageFailed({ imageId, error }) {
    for (const pane of this.panes) {
      const index = pane.imageIds.indexOf(imageId);
      // The viewport's own index: the wheel moves it without going through the pane.
      if (pane.enabled && index >= 0 && index === pane.viewport.getCurrentImageIdIndex()) pane.imageFailed(index, error);
    }
  }

  /** A pane's whole series is in the cache. */
  seriesLoaded(pane) {
    if (pane === this.panes[0] && !root.dataset.seriesLoaded) {
      performance.mark("viewer:series-loaded");
      root.dataset.seriesLoaded = "true";
    }
  }

  /** The series panel picked a series of a study: show it in the pane that shows that study. */
  pickSeries(uid, seriesUID) {
    const pane = this.panes.find((p) => p.enabled && p.studyData && p.studyData.studyUID === uid && p === this.active)
      || this.panes.find((p) => p.enabled && p.studyData && p.studyData.studyUID === uid);
    if (pane) pane.showSeries(seriesUID);
  }

  // ---- presets

  /** Offer the presets that fit the active pane's image. */
  fillPresets(pane) {
    const select = $("wl-preset");
    const imageId = pane.imageIds[pane.currentIndex];
    this.presets = imageId ? presetsFor(this.cs, pane.series && pane.series.modality, imageId) : [];
    const options = this.presets.map((preset, i) => {
      const option = document.createElement("option");
      option.value = preset.key;
      option.textContent = i < 5 ? `${i + 1}  ${preset.label}` : preset.label;
      return option;
    });
    const custom = document.createElement("option");
    custom.value = "custom";
    custom.textContent = "Custom";
    custom.hidden = true;
    select.replaceChildren(...options, custom);
    this.windowChanged(pane);
  }

  /** Apply preset number n of the list (0 = the file's window). */
  preset(n) {
    const preset = this.presets[n];
    if (preset && this.active.viewport && this.active.stack.length) applyPreset(this.cs, this.active.viewport, preset);
  }

  // ---- toolbar and keyboard actions

  /** Connect the toolbar's buttons and fields. */
  wireToolbar() {
    for (const button of document.querySelectorAll("#viewer-toolbar [data-tool]")) {
      button.addEventListener("click", () => this.chooseTool(button.dataset.tool));
    }
    const actions = {
      invert: () => this.invert(),
      rotate: () => this.rotate(90),
      "flip-h": () => this.flip("horizontal"),
      "flip-v": () => this.flip("vertical"),
      reset: () => this.reset(),
      clear: () => this.clearMeasurements(),
      cine: () => this.toggleCine(),
    };
    for (const button of document.querySelectorAll("#viewer-toolbar [data-action]")) {
      button.addEventListener("click", () => actions[button.dataset.action]());
    }
    $("wl-preset").addEventListener("change", (event) => {
      this.preset(this.presets.findIndex((p) => p.key === event.target.value));
    });
    $("cine-fps").addEventListener("change", () => {
      if (this.active.playing) this.active.play(this.fps());
    });
    $("sync-scroll").addEventListener("change", (event) => this.setSync(event.target.checked));
    this.showTool();
  }

  /** Put a tool on the left mouse button (as soon as the tools are loaded) and show it pressed. */
  chooseTool(name) {
    if (!LEFT_BUTTON_TOOLS.includes(name)) return;
    this.toolName = name;
    if (this.tools) this.tools.choose(name);
    this.showTool();
  }

  /** Press the toolbar button of the chosen tool. */
  showTool() {
    for (const button of document.querySelectorAll("#viewer-toolbar [data-tool]")) {
      button.setAttribute("aria-pressed", String(button.dataset.tool === this.toolName));
    }
  }

  /** Run an action on the active pane when it shows an image. */
  onActive(action) {
    const pane = this.active;
    if (pane && pane.viewport && pane.stack.length) action(pane);
  }

  /** Invert the active pane's greyscale. */
  invert() {
    this.onActive((pane) => pane.toggleInvert());
    this.showViewState();
  }

  /** Rotate the active pane by a multiple of 90°. */
  rotate(degrees) {
    this.onActive((pane) => pane.rotate(degrees));
  }

  /** Mirror the active pane ("horizontal" or "vertical"). */
  flip(axis) {
    this.onActive((pane) => pane.flip(axis));
  }

  /** Reset the active pane's view. */
  reset() {
    this.onActive((pane) => pane.reset());
    this.showViewState();
  }

  /** Move the active pane by delta images. */
  step(delta) {
    this.onActive((pane) => pane.step(delta));
  }

  /** Go to the "first" or "last" image of the active pane. */
  jump(where) {
    this.onActive((pane) => pane.go(where === "first" ? 0 : pane.stack.length - 1));
  }

  /** Delete the selected measurements. */
  deleteSelected() {
    this.onActive((pane) => this.tools && this.tools.deleteMeasurements(pane));
  }

  /** Delete every measurement of the active pane. */
  clearMeasurements() {
    this.onActive((pane) => this.tools && this.tools.deleteMeasurements(pane, true));
  }

  /** Return the frame rate asked for in the toolbar (1–60). */
  fps() {
    const value = Math.round(Number($("cine-fps").value));
    return Number.isFinite(value) ? Math.max(1, Math.min(60, value)) : 10;
  }

  /** Play or pause the active pane. */
  toggleCine() {
    this.onActive((pane) => (pane.playing ? pane.stopCine() : pane.play(this.fps())));
    this.showCineState();
  }

  /** Change the cine frame rate by delta (and the running loop with it). */
  changeFps(delta) {
    $("cine-fps").value = String(Math.max(1, Math.min(60, this.fps() + delta)));
    if (this.active.playing) this.active.play(this.fps());
  }

  /** Press the Invert button when the active pane is inverted. */
  showViewState() {
    document.querySelector('#viewer-toolbar [data-action="invert"]')
      .setAttribute("aria-pressed", String(Boolean(this.active && this.active.inverted)));
  }

  /** Show whether the active pane plays. */
  showCineState() {
    const playing = Boolean(this.active && this.active.playing);
    const button = $("cine-play");
    button.setAttribute("aria-pressed", String(playing));
    button.textContent = playing ? "❚❚ Pause" : "▶ Play";
  }

  /** Tell whether the help overlay is open. */
  helpOpen() {
    return $("help-dialog").open;
  }

  /** Open or close the help overlay. */
  toggleHelp() {
    toggleHelp();
  }

  // ---- compare

  /** Tell whether two studies are side by side. */
  comparing() {
    return !this.panes[1].root.hidden;
  }

  /** Show another study of the patient in the second viewport, side by side. */
  async openPrior(study) {
    const clicked = performance.now();
    const pane = this.panes[1];
    this.setLayout(true);
    this.enablePane(pane);
    pane.clear();
    pane.hideMessage();
    pane.showMessage("Loading the study…", "loading");
    pane.title.querySelector(".pane-study").textContent = studyLabel(study);
    const link = pane.title.querySelector(".pane-new-tab");
    link.href = viewerUrl(study.studyUID);
    link.hidden = false;
    const token = pane.token;
    let data;
    try {
      data = await getJSON("/api/load_study_fast", { studyUID: study.studyUID });
    } catch (error) {
      if (token === pane.token) pane.showMessage(studyErrorText(error));
      return;
    }
    if (token !== pane.token) return; // another prior was picked meanwhile
    pane.hideMessage();
    const modality = this.panes[0].series && this.panes[0].series.modality;
    await pane.showStudy(data, modality, clicked);
    this.activate(pane);
    this.seriesPanel.drawThumbnails(this.cs, data);
    const sameModality = Boolean(pane.series && modality && pane.series.modality === modality);
    $("sync-scroll").checked = sameModality;
    this.setSync(sameModality);
  }

  /** Close the second viewport. */
  closePrior() {
    const pane = this.panes[1];
    this.disablePane(pane);
    this.setLayout(false);
    this.setSync(false);
    this.activate(this.panes[0]);
  }

  /** Switch between one viewport and two side by side. */
  setLayout(two) {
    const [first, second] = this.panes;
    second.root.hidden = !two;
    $("viewport-grid").dataset.layout = two ? "1x2" : "1x1";
    $("sync-group").hidden = !two;
    for (const pane of this.panes) pane.title.hidden = !two;
    first.title.querySelector(".pane-study").textContent = studyLabel(this.mainStudy.study);
    if (!second.closeWired) {
      second.root.querySelector(".pane-close").addEventListener("click", () => this.closePrior());
      second.closeWired = true;
    }
    this.engine.resize(true, true);
    for (const pane of this.panes) pane.root.classList.toggle("is-active", two && pane === this.active);
  }

  /** Turn synchronised scrolling on or off (only while comparing). */
  setSync(on) {
    this.sync.set(on && this.comparing(), this.panes);
    $("sync-scroll").checked = this.sync.enabled;
  }

  /** Flip synchronised scrolling. */
  toggleSync() {
    if (this.comparing()) this.setSync(!this.sync.enabled);
  }

  /** Make the other viewport the active one. */
  otherPane() {
    const other = this.panes[this.active === this.panes[0] ? 1 : 0];
    if (other.enabled) {
      this.activate(other);
      other.element.focus();
    }
  }
}

/** Open or close the help overlay. */
function toggleHelp() {
  const dialog = $("help-dialog");
  if (dialog.open) dialog.close();
  else dialog.showModal();
}

/** Load the study and start the viewer, or say why it cannot be shown. */
async function main() {
  // These work even when the study cannot be shown.
  fillHelp($("help-keys"));
  $("help-button").addEventListener("click", toggleHelp);
  $("help-close").addEventListener("click", () => $("help-dialog").close());
  $("viewer-retry").addEventListener("click", () => window.location.reload());
  let studyData;
  try {
    studyData = await studyRequest;
  } catch (error) {
    $("patient-name").textContent = "The study cannot be shown";
    failViewer(studyErrorText(error), error.status === 502 || error.status === 504 || !error.status);
    return;
  }
  performance.mark("viewer:study-loaded");
  showHeader(studyData);
  if (!studyData.images.length) {
    failViewer("This study has no images in the PACS.");
    return;
  }
  warmFirstImage(studyData);
  let cs;
  try {
    cs = await cornerstone;
    performance.mark("viewer:cornerstone-ready");
  } catch (error) {
    console.error(error);
    failViewer(VIEWER_BROKEN, true);
    return;
  }
  const viewer = new Viewer(cs, studyData);
  bindShortcuts(viewer);
  await viewer.start();
  // The tools come after the first frame is drawn, and also when the first image could not be drawn.
  requestAnimationFrame(() => setTimeout(() => viewer.loadTools(), 0));
}

main();
