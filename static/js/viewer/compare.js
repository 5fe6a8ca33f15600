// Compare with a prior: the menu of the patient's other studies (study_list_api),
// and scrolling two same-modality viewports together by slice position.

import { appUrl, el, errorText, getJSON } from "../api.js";

/** Return the viewer URL of a study. */
export function viewerUrl(studyUID) {
  return appUrl("/viewer?studyUID=" + encodeURIComponent(studyUID));
}

/** Return "2021-03-04 · CT HEAD" for a study. */
export function studyLabel(study) {
  return [study.studyDate || "(no date)", study.description || "(no description)"].join(" · ");
}

export class CompareMenu {
  /** @param onPick(study) is called with a study_list_api study when the user asks for it side by side */
  constructor(details, status, list, onPick) {
    this.details = details;
    this.status = status;
    this.list = list;
    this.onPick = onPick;
    this.loading = null;
  }

  /** Load the patient's other studies once; newest first. */
  load(patient, currentStudyUID) {
    if (!this.loading) this.loading = this.fill(patient, currentStudyUID);
    return this.loading;
  }

  /** Do the work of load. */
  async fill(patient, currentStudyUID) {
    if (!patient || !patient.orthancId) {
      this.status.textContent = "The patient of this study is not known.";
      return;
    }
    let data;
    try {
      data = await getJSON("/api/study_list_api", { patientId: patient.orthancId });
    } catch (error) {
      this.status.textContent = `The other studies could not be listed: ${errorText(error)}`;
      this.loading = null; // try again at the next opening
      return;
    }
    const others = data.studies
      .filter((study) => study.studyUID !== currentStudyUID)
      .sort((a, b) => `${b.studyDate} ${b.studyTime}`.localeCompare(`${a.studyDate} ${a.studyTime}`));
    this.status.textContent = others.length
      ? `${others.length} other ${others.length === 1 ? "study" : "studies"} of this patient:`
      : "This patient has no other study you may see.";
    this.list.replaceChildren(...others.map((study) => this.item(study)));
  }

  /** Return the menu entry of one study. */
  item(study) {
    const pick = el("button", {
      className: "btn btn-sm btn-primary compare-pick",
      text: "Side by side",
      attrs: { type: "button", "data-study-uid": study.studyUID },
    });
    pick.addEventListener("click", () => {
      this.details.open = false;
      this.onPick(study);
    });
    const tab = el("a", {
      className: "btn btn-sm btn-outline-light",
      text: "New tab ↗",
      attrs: { href: viewerUrl(study.studyUID), target: "_blank", rel: "noopener" },
    });
    const facts = `${(study.modalities || []).join(", ") || "?"} · ${study.instanceCount} images`;
    return el("li", { className: "compare-item" },
      el("span", { className: "compare-study" },
        el("strong", { text: studyLabel(study) }),
        el("span", { className: "compare-facts", text: facts })),
      el("span", { className: "compare-actions" }, pick, tab));
  }
}

/** Return where an image lies along its plane's normal (mm), or null when its geometry is unknown. */
function slicePosition(cs, imageId) {
  const plane = cs.core.metaData.get("imagePlaneModule", imageId);
  if (!plane || !plane.imagePositionPatient || !plane.rowCosines || !plane.columnCosines) return null;
  const [r, c, p] = [plane.rowCosines, plane.columnCosines, plane.imagePositionPatient];
  const normal = [r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0]];
  return p[0] * normal[0] + p[1] * normal[1] + p[2] * normal[2];
}

/**
 * Scroll the other viewport along: to the slice at the same position relative to where both were
 * when syncing started (so a prior with another table height still lines up), or, while the
 * positions are not loaded yet, to the same fraction of its series.
 */
export class ScrollSync {
  /** Start switched off. */
  constructor(cs) {
    this.cs = cs;
    this.enabled = false;
    this.offset = null;
    this.driven = new Map(); // pane -> the index this sync sent it to
  }

  /** Turn syncing on or off for two panes; remember how their current slices line up. */
  set(on, panes) {
    this.enabled = on;
    this.offset = null;
    this.driven.clear();
    if (on) {
      const [a, b] = panes.map((pane) => slicePosition(this.cs, pane.imageIds[pane.currentIndex]));
      if (a !== null && b !== null) this.offset = b - a;
    }
  }

  /** Move `target` after `source` showed a new image, unless this sync moved source itself. */
  follow(source, target, sourceIsFirst) {
    if (!this.enabled || !target.stack.length || !source.stack.length) return;
    if (this.driven.get(source) === source.currentIndex) {
      this.driven.delete(source);
      return;
    }
    const index = this.matchIndex(source, target, sourceIsFirst);
    if (index === null || index === target.currentIndex) return;
    this.driven.set(target, index);
    target.go(index);
  }

  /** Return the index of target's image matching source's current one. */
  matchIndex(source, target, sourceIsFirst) {
    const position = slicePosition(this.cs, source.imageIds[source.currentIndex]);
    if (position !== null && this.offset !== null) {
      const wanted = position + (sourceIsFirst ? this.offset : -this.offset);
      let best = null;
      let bestDistance = Infinity;
      target.imageIds.forEach((imageId, i) => {
        const p = slicePosition(this.cs, imageId);
        if (p !== null && Math.abs(p - wanted) < bestDistance) {
          best = i;
          bestDistance = Math.abs(p - wanted);
        }
      });
      if (best !== null) return best;
    }
    if (source.stack.length < 2) return 0;
    return Math.round((source.currentIndex / (source.stack.length - 1)) * (target.stack.length - 1));
  }
}
