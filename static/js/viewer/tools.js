// The mouse tools: one Cornerstone tool group for every viewport. The left
// button runs the chosen tool (window/level at first); the right button zooms,
// the middle one pans, the wheel scrolls and Ctrl + wheel zooms, whatever is chosen.

import { TOOL_GROUP_ID } from "./cornerstone.js";

// The tools the left button can run, by their Cornerstone names (the toolbar's data-tool values).
export const LEFT_BUTTON_TOOLS = ["WindowLevel", "Zoom", "Pan", "Length", "Angle", "RectangleROI", "EllipticalROI", "Probe"];
const MEASUREMENTS = ["Length", "Angle", "RectangleROI", "EllipticalROI", "Probe"];

export class Tools {
  /** Create the tool group with the fixed bindings, window/level on the left button (cs.tools must be loaded). */
  constructor(cs) {
    this.cs = cs;
    const { tools } = cs;
    const { MouseBindings, KeyboardBindings } = tools.Enums;
    this.primary = [{ mouseButton: MouseBindings.Primary }];
    this.group = tools.ToolGroupManager.createToolGroup(TOOL_GROUP_ID);
    for (const name of LEFT_BUTTON_TOOLS) this.group.addTool(name);
    this.group.addTool("StackScroll");
    this.group.setToolActive("StackScroll", { bindings: [{ mouseButton: MouseBindings.Wheel }] });
    this.group.setToolActive("Zoom", {
      bindings: [
        { mouseButton: MouseBindings.Secondary },
        { mouseButton: MouseBindings.Wheel, modifierKey: KeyboardBindings.Ctrl },
      ],
    });
    this.group.setToolActive("Pan", { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
    // Measurements already drawn stay movable and editable whichever tool is chosen.
    for (const name of MEASUREMENTS) this.group.setToolPassive(name);
    this.active = null;
    this.choose("WindowLevel");
  }

  /** Let the tools act on a pane's viewport. */
  addPane(pane) {
    this.group.addViewport(pane.viewportId, pane.engine.id);
  }

  /**
   * Let the tools act on a viewport created before they were loaded. The tools hook the mouse and
   * keyboard of a viewport when Cornerstone announces it (ELEMENT_ENABLED); one announced before
   * they listened is handed over the same way.
   */
  adoptPane(pane) {
    const { element, viewportId } = pane;
    this.cs.tools.store.addEnabledElement({ detail: { element, viewportId, renderingEngineId: pane.engine.id } });
    this.addPane(pane);
  }

  /** Stop the tools acting on a pane's viewport (before it is disabled). */
  removePane(pane) {
    this.group.removeViewports(pane.engine.id, pane.viewportId);
  }

  /** Put a tool on the left mouse button. */
  choose(name) {
    if (!LEFT_BUTTON_TOOLS.includes(name) || name === this.active) return;
    if (this.active) this.group.setToolPassive(this.active);
    this.group.setToolActive(name, { bindings: this.primary });
    this.active = name;
  }

  /** Delete the selected measurements, or every measurement of a viewport when `all`. */
  deleteMeasurements(pane, all = false) {
    const { annotation } = this.cs.tools;
    const uids = all
      ? (annotation.state.getAllAnnotations() || [])
        .filter((a) => pane.imageIds.includes(a.metadata && a.metadata.referencedImageId))
        .map((a) => a.annotationUID)
      : annotation.selection.getAnnotationsSelected() || [];
    for (const uid of uids) annotation.state.removeAnnotation(uid);
    if (pane.viewport) pane.viewport.render();
    return uids.length;
  }
}
