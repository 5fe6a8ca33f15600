// One viewport of the viewer: a Cornerstone stack viewport showing one series
// of one study, with its slider, corner overlays, loading progress, error
// message and cine loop.

import { appUrl } from "../api.js";
import { imageErrorText } from "./messages.js";
import { overlayLines, renderOverlays } from "./overlays.js";

/** Return a loader image id whose URL keeps the prefix the app is served under. */
function withAppRoot(imageId) {
  const url = imageId.replace(/^wadouri:/, "");
  const root = appUrl("");
  if (!url.startsWith("/") || !root || url.startsWith(root + "/")) return imageId;
  return "wadouri:" + root + url;
}

/** Return the stack of one series: one entry per image, one per frame for multi-frame instances. */
export function stackOf(images, seriesUID) {
  const stack = [];
  for (const image of images) {
    if (image.seriesUID !== seriesUID) continue;
    const imageId = withAppRoot(image.imageId);
    const frames = Math.max(1, Number(image.numberOfFrames) || 1);
    for (let frame = 1; frame <= frames; frame += 1) {
      stack.push({
        imageId: frames === 1 ? imageId : `${imageId}&frame=${frame}`,
        frame,
        frames,
        instanceNumber: image.instanceNumber,
      });
    }
  }
  return stack;
}

export class Pane {
  /**
   * @param root the pane's <section>
   * @param context {cs, engine, viewportId, prefetcher} and the callbacks onActivate, onImage (a new image
   *   is shown), onSeries (the series changed), onWindow (W/L changed), onLoaded (whole series cached), each (pane)
   */
  constructor(root, context) {
    Object.assign(this, context);
    this.root = root;
    this.element = root.querySelector(".pane-viewport");
    this.overlayElements = {
      tl: root.querySelector(".overlay-tl"),
      tr: root.querySelector(".overlay-tr"),
      bl: root.querySelector(".overlay-bl"),
      br: root.querySelector(".overlay-br"),
    };
    this.progress = root.querySelector(".pane-progress");
    this.message = root.querySelector(".pane-message");
    this.slider = root.querySelector(".pane-slider");
    this.title = root.querySelector(".pane-title");
    this.seriesSelect = root.querySelector(".pane-series");
    this.studyData = null;
    this.series = null;
    this.stack = [];
    this.currentIndex = 0;
    this.shownIndex = -1; // the index last drawn; differs from currentIndex while an image loads
    this.defaultInvert = false; // whether the series shows inverted as it comes (MONOCHROME1)
    this.invertOn = false; // whether it shows inverted now
    this.token = 0;
    this.cine = null;
    this.enabled = false;
    this.listening = false;
    this.overlayQueued = false;
    this.seriesStarted = null;
    this.seriesAsked = 0;
  }

  /** Create the Cornerstone viewport on the pane's element and listen to it. */
  enable() {
    if (this.enabled) return;
    const { core } = this.cs;
    this.engine.enableElement({
      viewportId: this.viewportId,
      type: core.Enums.ViewportType.STACK,
      element: this.element,
      defaultOptions: { background: [0, 0, 0] },
    });
    this.enabled = true;
    if (!this.listening) this.listen();
  }

  /** Listen to the viewport element and the pane's controls (once; they outlive a disable). */
  listen() {
    this.listening = true;
    const events = this.cs.core.Enums.Events;
    this.element.addEventListener(events.STACK_NEW_IMAGE, (event) => this.imageShown(event.detail));
    this.element.addEventListener(events.IMAGE_RENDERED, () => {
      this.queueOverlay();
      if (this.seriesStarted !== null && this.shownIndex >= 0) {
        // How long the series took from the click to its first image on screen (shown to tests and benchmarks).
        this.root.dataset.firstImageMs = String(Math.round(performance.now() - this.seriesStarted));
        this.seriesStarted = null;
      }
    });
    this.element.addEventListener(events.VOI_MODIFIED, () => {
      this.queueOverlay();
      this.onWindow(this);
    });
    this.element.addEventListener(events.CAMERA_MODIFIED, () => this.queueOverlay());
    this.element.addEventListener("contextmenu", (event) => event.preventDefault());
    this.root.addEventListener("pointerdown", () => this.onActivate(this), true);
    this.root.addEventListener("focusin", () => this.onActivate(this));
    this.slider.addEventListener("input", () => this.go(Number(this.slider.value) - 1));
    this.seriesSelect.addEventListener("change", () => this.showSeries(this.seriesSelect.value));
  }

  /** Remove the Cornerstone viewport (the comparison closed); enable() brings it back. */
  disable() {
    if (!this.enabled) return;
    this.clear();
    this.engine.disableElement(this.viewportId);
    this.enabled = false;
  }

  /** The Cornerstone stack viewport, or null while the pane is disabled. */
  get viewport() {
    return this.enabled ? this.engine.getViewport(this.viewportId) : null;
  }

  /** The image ids of the stack, in order. */
  get imageIds() {
    return this.stack.map((entry) => entry.imageId);
  }

  /**
   * Show a study (load_study_fast's JSON): its first series, or the first one of a preferred modality.
   * `startedAt` (performance.now()) is when the user asked for it, for the first-image timing.
   */
  showStudy(studyData, preferModality = "", startedAt = performance.now()) {
    this.studyData = studyData;
    this.seriesSelect.replaceChildren(...studyData.series.map((series) => {
      const option = document.createElement("option");
      option.value = series.seriesUID;
      option.textContent = `${series.seriesNumber ?? "–"} · ${series.modality} · ${series.seriesDescription || "(no description)"}`;
      return option;
    }));
    const series = studyData.series.find((s) => preferModality && s.modality === preferModality) || studyData.series[0];
    if (!series) {
      this.showMessage("This study has no images.");
      return Promise.resolve();
    }
    return this.showSeries(series.seriesUID, startedAt);
  }

  /** Show one series of the current study from its first image; then load the rest in the background. */
  async showSeries(seriesUID, startedAt = performance.now()) {
    const token = ++this.token;
    this.stopCine();
    this.prefetcher.stop(this);
    this.series = this.studyData.series.find((s) => s.seriesUID === seriesUID) || null;
    this.stack = stackOf(this.studyData.images, seriesUID);
    this.seriesSelect.value = seriesUID;
    this.currentIndex = 0;
    this.shownIndex = -1;
    this.seriesStarted = startedAt;
    this.seriesAsked = startedAt;
    delete this.root.dataset.firstImageMs;
    delete this.root.dataset.seriesMs;
    this.hideMessage();
    this.slider.max = String(Math.max(1, this.stack.length));
    this.slider.value = "1";
    this.slider.disabled = this.stack.length < 2;
    this.showProgress({ loaded: 0, failed: 0, total: this.stack.length });
    this.onSeries(this);
    if (!this.stack.length) {
      this.showMessage("This series has no images.");
      return;
    }
    try {
      await this.viewport.setStack(this.imageIds, 0);
    } catch (error) {
      if (token === this.token) this.imageFailed(0, error);
    }
    if (token !== this.token) return;
    // The viewport draws the image in the next animation frame; the prefetch's answers and the panel
    // updates below would only delay that frame, so they wait for it.
    await new Promise((resolve) => requestAnimationFrame(resolve));
    if (token !== this.token) return;
    // MONOCHROME1 images come inverted (image.invert); the CPU path does not report it in getProperties().
    const image = this.viewport.getCornerstoneImage();
    this.defaultInvert = Boolean(image && image.invert);
    this.invertOn = this.defaultInvert;
    this.onSeries(this);
    this.prefetcher.start(this, this.imageIds, 0, (progress) => {
      if (token === this.token) this.showProgress(progress);
    });
  }

  /** React to a new image drawn in the viewport (by a key, the wheel, the slider or cine). */
  imageShown({ imageIdIndex, imageId }) {
    this.currentIndex = imageIdIndex;
    this.shownIndex = imageIdIndex;
    this.slider.value = String(imageIdIndex + 1);
    if (this.message.dataset.kind === "image") this.hideMessage();
    this.prefetcher.noteLoaded(this, imageId);
    this.prefetcher.refocus(this, imageIdIndex);
    this.queueOverlay();
    this.onImage(this);
  }

  /** Show why image `index` could not be shown (its neighbours stay reachable). */
  imageFailed(index, error) {
    const imageId = this.stack[index] ? this.stack[index].imageId : "";
    this.currentIndex = index;
    this.shownIndex = index;
    this.slider.value = String(index + 1);
    this.showMessage(`Image ${index + 1} of ${this.stack.length} could not be shown. ${imageErrorText(this.cs, error, imageId)}`,
      "image");
    this.queueOverlay();
  }

  /** Go to image `index` of the stack (clamped). */
  go(index) {
    if (!this.stack.length || !this.viewport) return;
    const target = Math.max(0, Math.min(this.stack.length - 1, index));
    if (target === this.viewport.getCurrentImageIdIndex() && this.shownIndex === target) return;
    this.currentIndex = target;
    this.slider.value = String(target + 1);
    this.prefetcher.refocus(this, target);
    this.viewport.setImageIdIndex(target).catch((error) => {
      if (this.viewport.getCurrentImageIdIndex() === target) this.imageFailed(target, error);
    });
    this.queueOverlay();
  }

  /** Move by delta images. */
  step(delta) {
    this.go(this.currentIndex + delta);
  }

  /** Redraw the overlays once per frame at most. */
  queueOverlay() {
    if (this.overlayQueued) return;
    this.overlayQueued = true;
    requestAnimationFrame(() => {
      this.overlayQueued = false;
      if (this.studyData) renderOverlays(this.overlayElements, overlayLines(this.cs, this));
    });
  }

  /** Show how many images of the series are loaded ("37 / 200"); hide it once all are. */
  showProgress({ loaded, failed, total }) {
    const { dataset } = this.root;
    dataset.loaded = String(loaded);
    dataset.failed = String(failed);
    dataset.total = String(total);
    const complete = total > 0 && loaded + failed >= total;
    this.progress.querySelector(".pane-progress-text").textContent =
      `${loaded} / ${total}${failed ? ` · ${failed} failed` : ""}`;
    this.progress.querySelector(".pane-progress-bar").style.width = `${total ? (100 * loaded) / total : 0}%`;
    this.progress.classList.toggle("is-complete", complete && !failed);
    this.progress.hidden = total === 0;
    if (complete) {
      dataset.complete = "true";
      if (!dataset.seriesMs) dataset.seriesMs = String(Math.round(performance.now() - this.seriesAsked));
      this.onLoaded(this);
    } else {
      delete dataset.complete;
    }
  }

  /** Show a message over the image; kind "image" messages go away with the next good image. */
  showMessage(text, kind = "pane") {
    this.message.textContent = text;
    this.message.dataset.kind = kind;
    this.message.hidden = false;
  }

  /** Hide the message over the image. */
  hideMessage() {
    this.message.hidden = true;
    this.message.textContent = "";
    delete this.message.dataset.kind;
  }

  // ---- view changes the toolbar and the keys ask for

  /** Redraw after a change of the view. */
  redraw() {
    this.viewport.render();
    this.queueOverlay();
  }

  /** Invert the greyscale (relative to how the image is shown now). */
  toggleInvert() {
    this.invertOn = !this.invertOn;
    this.viewport.setProperties({ invert: this.invertOn });
    this.redraw();
  }

  /** Tell whether the user inverted the image (against how its photometric interpretation shows it). */
  get inverted() {
    return this.invertOn !== this.defaultInvert;
  }

  /** Rotate by a multiple of 90°. */
  rotate(degrees) {
    const viewport = this.viewport;
    const { rotation = 0 } = viewport.getViewPresentation({ rotation: true });
    viewport.setViewPresentation({ rotation: (((rotation + degrees) % 360) + 360) % 360 });
    this.redraw();
  }

  /** Mirror left-right ("horizontal") or top-bottom ("vertical"). */
  flip(axis) {
    const viewport = this.viewport;
    const key = axis === "horizontal" ? "flipHorizontal" : "flipVertical";
    // Through the camera: Viewport.flip() works on WebGL actors only, and does nothing in CPU rendering.
    viewport.setCamera({ [key]: !viewport.getCamera()[key] });
    this.redraw();
  }

  /** Back to the image as first shown: window, invert, rotation, flips, zoom and pan. */
  reset() {
    const viewport = this.viewport;
    viewport.resetProperties();
    // resetProperties shows every image uninverted; MONOCHROME1 must come back inverted.
    this.invertOn = this.defaultInvert;
    viewport.setProperties({ invert: this.invertOn });
    viewport.setViewPresentation({ rotation: 0 });
    viewport.setCamera({ flipHorizontal: false, flipVertical: false });
    viewport.resetCamera();
    this.redraw();
  }

  // ---- cine

  /** Play the series in a loop at fps frames per second. */
  play(fps) {
    this.stopCine();
    if (this.stack.length < 2) return;
    const interval = 1000 / Math.max(1, Math.min(60, fps));
    this.cine = { fps, timer: setInterval(() => {
      // Skip a beat rather than queue requests when an image is slower than the frame rate.
      if (this.shownIndex !== this.currentIndex) return;
      this.go((this.currentIndex + 1) % this.stack.length);
    }, interval) };
    this.root.dataset.cine = "playing";
  }

  /** Stop the cine loop. */
  stopCine() {
    if (this.cine) clearInterval(this.cine.timer);
    this.cine = null;
    delete this.root.dataset.cine;
  }

  /** Tell whether cine plays. */
  get playing() {
    return Boolean(this.cine);
  }

  /** Forget the viewport's series (when the comparison closes). */
  clear() {
    this.token += 1;
    this.stopCine();
    this.prefetcher.stop(this);
    this.studyData = null;
    this.series = null;
    this.stack = [];
  }
}
