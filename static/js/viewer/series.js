// The series panel: one list per open study (the active viewport's is shown),
// each series with its number, modality, description, image count and a small
// picture of its middle image, drawn once the first image is on screen.

import { el } from "../api.js";
import { stackOf } from "./pane.js";

const THUMBNAIL_SIZE = 72;

export class SeriesPanel {
  /** @param container the element that holds the lists; onPick(studyUID, seriesUID) */
  constructor(container, heading, onPick) {
    this.container = container;
    this.heading = heading;
    this.onPick = onPick;
    this.lists = new Map(); // studyUID -> {list, studyData, thumbnailsDone}
  }

  /** Build (once) and show the list of one study, marking the active series. */
  show(studyData, activeSeriesUID, label = "") {
    let entry = this.lists.get(studyData.studyUID);
    if (!entry) {
      const list = el("ol", { className: "series-list", attrs: { "data-study-uid": studyData.studyUID } });
      for (const series of studyData.series) list.append(this.item(studyData, series));
      this.container.append(list);
      entry = { list, studyData, thumbnails: null };
      this.lists.set(studyData.studyUID, entry);
    }
    for (const other of this.lists.values()) other.list.hidden = other !== entry;
    this.heading.textContent = label ? `Series · ${label}` : "Series";
    for (const button of entry.list.querySelectorAll("button.series-item")) {
      const active = button.dataset.seriesUid === activeSeriesUID;
      button.classList.toggle("is-active", active);
      button.setAttribute("aria-current", active ? "true" : "false");
    }
  }

  /** Return the button of one series. */
  item(studyData, series) {
    const canvas = el("canvas", {
      className: "series-thumb",
      attrs: { width: THUMBNAIL_SIZE, height: THUMBNAIL_SIZE, "aria-hidden": "true" },
    });
    const count = series.imageCount === 1 ? "1 image" : `${series.imageCount} images`;
    const button = el("button", {
      className: "series-item",
      attrs: { type: "button", "data-series-uid": series.seriesUID },
    },
    canvas,
    el("span", { className: "series-text" },
      el("span", { className: "series-number", text: `${series.seriesNumber ?? "–"} · ${series.modality || "?"}` }),
      el("span", { className: "series-description", text: series.seriesDescription || "(no description)" }),
      el("span", { className: "series-count", text: count })));
    button.addEventListener("click", () => this.onPick(studyData.studyUID, series.seriesUID));
    return el("li", {}, button);
  }

  /** Draw the thumbnails of a study's series one after the other, in the background. */
  drawThumbnails(cs, studyData) {
    const entry = this.lists.get(studyData.studyUID);
    if (!entry || entry.thumbnails) return;
    entry.thumbnails = (async () => {
      for (const series of studyData.series) {
        const stack = stackOf(studyData.images, series.seriesUID);
        const middle = stack[Math.floor(stack.length / 2)];
        const canvas = entry.list.querySelector(`button[data-series-uid="${CSS.escape(series.seriesUID)}"] canvas`);
        if (!middle || !canvas) continue;
        try {
          await cs.core.utilities.loadImageToCanvas({
            canvas,
            imageId: middle.imageId,
            useCPURendering: true,
            thumbnail: true,
            requestType: cs.core.Enums.RequestType.Thumbnail,
          });
          canvas.classList.add("is-drawn");
        } catch {
          canvas.classList.add("is-broken"); // the viewport says why when the series is opened
        }
      }
    })();
  }
}
